//! `enigm release rollout …`: a release's rollout plan, its steps (validate, start, advance,
//! promote, pause, resume, withdraw) and its status, live with `--watch`; and the version pins
//! of device groups (`enigm release pin`, `unpin`, `pins`).
//!
//! The steps are critical operations (the PIN); promotion to stable and a security rollout's
//! start open an approval request that another administrator decides. Each step says in words
//! what it did; a refused step ends with Command's stable code (`soak_not_elapsed`, …).

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use enigm_api::paths;
use enigm_api::releases::ReleaseView;
use enigm_api::rollouts::{
    HaltRuleSpec, RolloutAction, RolloutActionRequest, RolloutPlanRequest, RolloutView,
    VersionPinRequest, VersionPinView, WaveCountsView, WaveSpec,
};
use enigm_types::{
    GroupName, ReasonCategory, ReleaseId, ReleaseStage, RolloutModel, RolloutStatus,
};

use crate::client::CommandClient;
use crate::output;
use crate::secrets::PinSource;

/// The shortest `--interval` of `--watch`: each redraw is one request to Command.
const MIN_WATCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Set the release's rollout plan (allowed until its rollout starts): a model's preset
    /// waves, or waves of its own with `--wave`.
    Plan(PlanArgs),
    /// `registered` → `validated`: Command checks the artifact, the signatures and the plan;
    /// the plan's validation groups are offered the release (needs the PIN).
    Validate(StepArgs),
    /// `validated` → `controlled-rollout`, opening the first wave (needs the PIN; a security
    /// rollout also another administrator's approval).
    Start(StepArgs),
    /// Open the next wave once the current one has soaked (needs the PIN).
    Advance(StepArgs),
    /// `controlled-rollout` → `stable`: every eligible device (needs the PIN and another
    /// administrator's approval).
    Promote(StepArgs),
    /// Stop new offers and waves until resumed (needs the PIN).
    Pause(StepArgs),
    /// Resume a paused or halted rollout (needs the PIN).
    Resume(StepArgs),
    /// No new offers, for good; devices that installed the release keep it (needs the PIN).
    Withdraw(StepArgs),
    /// The release's stage, rollout status and each wave's counts (`--json`: the API's
    /// rollout view).
    Status(WatchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The release id, or a unique prefix of it (at least 4 characters).
    id: String,
    /// The rollout model: its preset waves unless `--wave` is given; `draft` is never offered.
    #[arg(long, value_parser = crate::parse::rollout_model())]
    model: RolloutModel,
    /// A wave of its own, `PERCENT:SOAK` (e.g. `10:24h`, `100:0s`): the share of the fleet it
    /// reaches (cumulative, growing from wave to wave) and how long it runs before the next
    /// may open (s, m, h or d). Repeat in order.
    #[arg(long = "wave", value_name = "PERCENT:SOAK", value_parser = parse_wave)]
    waves: Vec<WaveSpec>,
    /// Device groups offered the release from `validated` on, before any wave (repeat or
    /// separate with commas).
    #[arg(long = "validation-group", value_name = "GROUP", value_delimiter = ',',
        value_parser = crate::policy::parse_group)]
    validation_groups: Vec<GroupName>,
    /// Halt the rollout when more than this percent of the current wave's install reports are
    /// failures or rollbacks (default 5).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    halt_above: Option<u8>,
    /// The fewest install reports in a wave before it may halt (default 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    halt_min_reports: Option<u32>,
    /// Why, for the audit log.
    #[arg(long)]
    justification: String,
}

#[derive(Debug, Args)]
pub(crate) struct StepArgs {
    /// The release id, or a unique prefix of it (at least 4 characters).
    id: String,
    /// Why, for the audit log (and the approvers, where the step needs an approval).
    #[arg(long)]
    justification: String,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// The release id, or a unique prefix of it (at least 4 characters).
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) watch: Watch,
}

/// `--watch [--interval 2s]`, shared with `enigm release status`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Watch {
    /// Redraw every `--interval` until Ctrl-C (in place on a terminal; with `--json`, one
    /// JSON object per line).
    #[arg(long)]
    pub(crate) watch: bool,
    /// How often `--watch` asks Command (at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval,
        requires = "watch")]
    pub(crate) interval: Duration,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = crate::parse::duration(text)?;
    if interval < MIN_WATCH_INTERVAL {
        return Err("the interval is at least 1s".to_owned());
    }
    Ok(interval)
}

/// `PERCENT:SOAK`, e.g. `10:24h`.
fn parse_wave(text: &str) -> Result<WaveSpec, String> {
    let expected = || format!("`{text}` is not PERCENT:SOAK (e.g. `10:24h`, `100:0s`)");
    let (percent, soak) = text.split_once(':').ok_or_else(expected)?;
    let percent = percent
        .parse::<u8>()
        .ok()
        .filter(|percent| (1..=100).contains(percent))
        .ok_or_else(|| format!("the percent of `{text}` is not a number from 1 to 100"))?;
    let soak = crate::parse::duration(soak)?;
    Ok(WaveSpec {
        percent,
        soak_seconds: soak.as_secs(),
    })
}

pub(crate) async fn run(
    client: &CommandClient,
    pins: &PinSource,
    command: RolloutCommand,
    json: bool,
) -> anyhow::Result<()> {
    let (action, step) = match command {
        RolloutCommand::Plan(plan) => return set_plan(client, plan, json).await,
        RolloutCommand::Status(status) => {
            let id = crate::admin::resolve::release(client, &status.id).await?;
            return show(client, id, status.watch, json, Show::Rollout).await;
        }
        RolloutCommand::Validate(step) => (RolloutAction::Validate, step),
        RolloutCommand::Start(step) => (RolloutAction::Start, step),
        RolloutCommand::Advance(step) => (RolloutAction::Advance, step),
        RolloutCommand::Promote(step) => (RolloutAction::Promote, step),
        RolloutCommand::Pause(step) => (RolloutAction::Pause, step),
        RolloutCommand::Resume(step) => (RolloutAction::Resume, step),
        RolloutCommand::Withdraw(step) => (RolloutAction::Withdraw, step),
    };
    let id = crate::admin::resolve::release(client, &step.id).await?;
    let pin = pins.obtain()?;
    let request = RolloutActionRequest {
        action,
        justification: step.justification,
    };
    let reply = match client
        .post::<_, RolloutView>(
            &path(paths::RELEASE_ROLLOUT_ACTIONS, id),
            &request,
            Some(&pin),
        )
        .await
    {
        Ok(reply) => reply,
        Err(error) => {
            if error
                .api()
                .is_some_and(|api| api.code == "soak_not_elapsed")
            {
                say_when_the_soak_ends(client, id).await;
            }
            return Err(error.into());
        }
    };
    if json {
        return output::print_json(&reply.raw);
    }
    println!("{}", step_outcome(action, &reply.value));
    Ok(())
}

/// After a refused `advance`: when the current wave's soak ends (on stderr, before the error).
async fn say_when_the_soak_ends(client: &CommandClient, id: ReleaseId) {
    let Ok(reply) = client
        .get::<RolloutView>(&path(paths::RELEASE_ROLLOUT, id))
        .await
    else {
        return;
    };
    let view = reply.value;
    let current = usize::try_from(view.open_waves)
        .ok()
        .and_then(|open| open.checked_sub(1))
        .and_then(|at| view.waves.get(at));
    if let Some(at) = current.and_then(|wave| wave.soak_ends_at.as_deref()) {
        eprintln!(
            "wave {} of {} soaks until {}",
            view.open_waves,
            view.waves.len(),
            output::clean(at)
        );
    }
}

async fn set_plan(client: &CommandClient, args: PlanArgs, json: bool) -> anyhow::Result<()> {
    let id = crate::admin::resolve::release(client, &args.id).await?;
    let halt = match (args.halt_above, args.halt_min_reports) {
        (None, None) => None,
        (above, min_reports) => {
            let default = enigm_ota::rollout::HaltRule::default();
            Some(HaltRuleSpec {
                max_failure_percent: above.unwrap_or(default.max_failure_percent),
                min_reports: min_reports.unwrap_or(default.min_reports),
            })
        }
    };
    let request = RolloutPlanRequest {
        model: args.model,
        waves: (!args.waves.is_empty()).then_some(args.waves),
        validation_groups: args.validation_groups,
        halt,
        justification: args.justification,
    };
    let reply = client
        .put::<_, RolloutView>(&path(paths::RELEASE_ROLLOUT_PLAN, id), &request, None)
        .await?;
    if json {
        return output::print_json(&reply.raw);
    }
    let view = &reply.value;
    println!(
        "planned a {} rollout of {} in {}; validate it with `enigm release rollout validate {}`",
        view.model.map_or("draft", RolloutModel::as_str),
        output::clean(&view.release_version),
        waves_summary(view),
        view.release
    );
    Ok(())
}

/// What `status` shows: the rollout alone, or the release's table above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    Rollout,
    ReleaseAndRollout,
}

/// Prints the status once, or with `--watch` again every interval until interrupted. With
/// `--json` the body of the rollout (or, for `release status`, of the release) once, or one
/// per line when watching.
pub(crate) async fn show(
    client: &CommandClient,
    id: ReleaseId,
    watch: Watch,
    json: bool,
    what: Show,
) -> anyhow::Result<()> {
    let in_place = watch.watch && !json && std::io::stdout().is_terminal();
    loop {
        let release = match what {
            Show::Rollout => None,
            Show::ReleaseAndRollout => Some(
                client
                    .get::<ReleaseView>(&crate::release::release_path(paths::RELEASE, id))
                    .await?,
            ),
        };
        if json {
            // `release status ID --json` stays the release's body; the rollout has its own.
            let raw = match release {
                Some(release) => release.raw,
                None => {
                    client
                        .get::<RolloutView>(&path(paths::RELEASE_ROLLOUT, id))
                        .await?
                        .raw
                }
            };
            if watch.watch {
                output::print_json_line(&raw)?;
            } else {
                output::print_json(&raw)?;
            }
        } else {
            let rollout = client
                .get::<RolloutView>(&path(paths::RELEASE_ROLLOUT, id))
                .await?;
            let mut text = String::new();
            if let Some(release) = &release {
                text.push_str(&crate::release::release_table(&release.value).to_string());
                text.push('\n');
            }
            text.push_str(&rollout_text(&rollout.value));
            if in_place {
                // Cursor home and clear the screen, then draw: the block replaces the last.
                print!("\x1b[H\x1b[2J{text}\n");
            } else {
                println!("{text}");
            }
        }
        if !watch.watch {
            return Ok(());
        }
        tokio::time::sleep(watch.interval).await;
        if !in_place && !json {
            // Not a terminal: blocks one after another, each under a blank line.
            println!();
        }
    }
}

fn path(template: &str, id: ReleaseId) -> String {
    crate::release::release_path(template, id)
}

/// What a step did, in words.
pub(crate) fn step_outcome(action: RolloutAction, view: &RolloutView) -> String {
    let id = view.release;
    let approval = |what: &str| {
        view.pending_approval.map(|approval| {
            format!(
                "{what} waits for approval {approval}: another administrator approves it with \
                 `enigm admin approvals approve {approval}`"
            )
        })
    };
    match action {
        RolloutAction::Validate if view.validation_groups.is_empty() => {
            format!("validated; start the rollout with `enigm release rollout start {id}`")
        }
        RolloutAction::Validate => format!(
            "validated: offered to the validation groups {}; start the rollout with `enigm \
             release rollout start {id}`",
            groups_text(&view.validation_groups)
        ),
        RolloutAction::Start => approval("the start of the security rollout")
            .unwrap_or_else(|| format!("rollout started: {}", wave_text(view))),
        RolloutAction::Advance => wave_text(view),
        RolloutAction::Promote => approval("promotion to stable").unwrap_or_else(|| {
            "stable: the release is offered to every eligible device".to_owned()
        }),
        RolloutAction::Pause => format!(
            "paused: no new offers and no next wave until `enigm release rollout resume {id}`"
        ),
        RolloutAction::Resume if view.stage == ReleaseStage::ControlledRollout => {
            format!("resumed: {}", wave_text(view))
        }
        RolloutAction::Resume => format!("resumed: the release is {} again", view.stage),
        RolloutAction::Withdraw => "withdrawn: no new offers, for good; devices that installed \
                                    it keep it"
            .to_owned(),
    }
}

/// `wave 2 of 3 open: 50 % of the fleet`, and when the next may open.
fn wave_text(view: &RolloutView) -> String {
    let total = view.waves.len();
    let open = usize::try_from(view.open_waves).unwrap_or(usize::MAX);
    let Some(current) = open.checked_sub(1).and_then(|at| view.waves.get(at)) else {
        return format!("no wave open yet (of {total})");
    };
    let mut text = format!(
        "wave {open} of {total} open: {} % of the fleet",
        current.percent
    );
    if open < total {
        match current
            .soak_ends_at
            .as_ref()
            .filter(|_| current.soak_seconds > 0)
        {
            Some(at) => text.push_str(&format!(
                "; the next may open at {} (`enigm release rollout advance {}`)",
                output::clean(at),
                view.release
            )),
            None => text.push_str(&format!(
                "; open the next with `enigm release rollout advance {}`",
                view.release
            )),
        }
    } else {
        text.push_str(&format!(
            "; promote it to stable with `enigm release rollout promote {}`",
            view.release
        ));
    }
    text
}

/// `2 waves: 10 % (soak 1h), 100 %`.
fn waves_summary(view: &RolloutView) -> String {
    let waves: Vec<String> = view
        .waves
        .iter()
        .map(|wave| format!("{} % (soak {})", wave.percent, soak_text(wave.soak_seconds)))
        .collect();
    match waves.len() {
        0 => "no waves".to_owned(),
        1 => format!("1 wave: {}", waves.join(", ")),
        count => format!("{count} waves: {}", waves.join(", ")),
    }
}

/// Seconds in the largest unit that divides them: `24h`, `30m`, `0s`.
fn soak_text(seconds: u64) -> String {
    for (unit, per) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds > 0 && seconds.is_multiple_of(per) {
            return format!("{}{unit}", seconds / per);
        }
    }
    format!("{seconds}s")
}

fn groups_text(groups: &[GroupName]) -> String {
    groups
        .iter()
        .map(|group| output::clean(group.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why Command halted a rollout, in words.
fn halt_reason_text(reason: ReasonCategory) -> String {
    match reason {
        ReasonCategory::RolloutFailureThreshold => "failed and rolled-back installs in the \
                                                    current wave passed the plan's threshold"
            .to_owned(),
        other => other.as_str().replace('_', " "),
    }
}

/// The status block: stage, status, model, halt rule, then the waves' table.
pub(crate) fn rollout_text(view: &RolloutView) -> String {
    let mut lines = vec![
        format!(
            "release {} ({})",
            view.release,
            output::clean(&view.release_version)
        ),
        format!("stage: {}", view.stage),
    ];
    let status = match (view.status, view.status_reason) {
        (RolloutStatus::Halted, Some(reason)) => format!(
            "halted by Command: {} ({}); resume with `enigm release rollout resume {}`",
            halt_reason_text(reason),
            reason.as_str(),
            view.release
        ),
        (RolloutStatus::Halted, None) => format!(
            "halted by Command; resume with `enigm release rollout resume {}`",
            view.release
        ),
        (RolloutStatus::Withdrawn, _) => {
            "withdrawn: no new offers; devices that installed it keep it".to_owned()
        }
        (status, _) => status.as_str().to_owned(),
    };
    lines.push(format!("status: {status}"));
    match view.model {
        Some(model) => lines.push(format!(
            "model: {model}, {} open of {}",
            view.open_waves,
            waves_summary(view)
        )),
        None => lines.push(format!(
            "model: none (a draft, never offered); set a plan with `enigm release rollout plan {} \
             --model MODEL`",
            view.release
        )),
    }
    if let Some(halt) = view.halt {
        lines.push(format!(
            "halts above: {} % failed or rolled back, from {} reports in a wave",
            halt.max_failure_percent, halt.min_reports
        ));
    }
    if !view.validation_groups.is_empty() {
        lines.push(format!(
            "validation groups: {}",
            groups_text(&view.validation_groups)
        ));
    }
    if let Some(approval) = view.pending_approval {
        lines.push(format!(
            "waits for approval {approval}: `enigm admin approvals show {approval}`"
        ));
    }
    if let Some(at) = &view.updated_at {
        lines.push(format!("updated: {}", output::clean(at)));
    }
    let mut table = output::new_table(&[
        "WAVE",
        "PERCENT",
        "OPENED",
        "SOAK ENDS",
        "OFFERED",
        "DOWNLOADING",
        "INSTALLED",
        "FAILED",
        "ROLLED BACK",
        "REFUSED",
    ]);
    let optional = |text: &Option<String>| text.as_deref().map_or("-".to_owned(), output::clean);
    for wave in &view.waves {
        let mut row = vec![
            wave.number.to_string(),
            format!("{} %", wave.percent),
            optional(&wave.opened_at),
            optional(&wave.soak_ends_at),
        ];
        row.extend(counts_cells(&wave.counts));
        table.add_row(row);
    }
    let mut outside = vec![
        "outside waves".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
    ];
    outside.extend(counts_cells(&view.outside_waves));
    table.add_row(outside);
    lines.push(table.to_string());
    lines.join("\n")
}

fn counts_cells(counts: &WaveCountsView) -> [String; 6] {
    [
        counts.offered.to_string(),
        counts.downloading.to_string(),
        counts.installed.to_string(),
        counts.failed.to_string(),
        counts.rolled_back.to_string(),
        counts.refused.to_string(),
    ]
}

/// `enigm release pin GROUP RELEASE`.
pub(crate) async fn pin(
    client: &CommandClient,
    group: GroupName,
    release: &str,
    justification: String,
    json: bool,
) -> anyhow::Result<()> {
    let release = crate::admin::resolve::release(client, release).await?;
    let request = VersionPinRequest {
        group,
        release,
        justification,
    };
    let reply = client
        .post::<_, VersionPinView>(paths::OTA_PINS, &request, None)
        .await?;
    if json {
        return output::print_json(&reply.raw);
    }
    println!(
        "pinned group {} to {} ({}): its devices are offered that version only, until `enigm \
         release unpin {}`",
        output::clean(reply.value.group.as_str()),
        output::clean(&reply.value.release_version),
        reply.value.release,
        output::clean(reply.value.group.as_str())
    );
    Ok(())
}

/// `enigm release unpin GROUP`.
pub(crate) async fn unpin(
    client: &CommandClient,
    group: GroupName,
    json: bool,
) -> anyhow::Result<()> {
    client
        .delete::<()>(&paths::fill(paths::OTA_PIN, &[group.as_str()]), None)
        .await?;
    if !json {
        println!(
            "unpinned group {}: its devices follow the rollouts again",
            output::clean(group.as_str())
        );
    }
    Ok(())
}

/// `enigm release pins`.
pub(crate) async fn pins(client: &CommandClient, json: bool) -> anyhow::Result<()> {
    let reply = client.get::<Vec<VersionPinView>>(paths::OTA_PINS).await?;
    if json {
        return output::print_json_list(&reply.raw, None);
    }
    let mut table = output::new_table(&["GROUP", "VERSION", "RELEASE", "PINNED BY", "SINCE"]);
    for pin in &reply.value {
        table.add_row(vec![
            output::clean(pin.group.as_str()),
            output::clean(&pin.release_version),
            output::short_id(pin.release),
            output::short_id(pin.pinned_by),
            output::clean(&pin.pinned_at),
        ]);
    }
    output::print_list(&table, reply.value.len(), "No version pins.");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    #[test]
    fn waves_are_percent_and_soak() {
        assert_eq!(
            parse_wave("10:24h").unwrap(),
            WaveSpec {
                percent: 10,
                soak_seconds: 86_400
            }
        );
        assert_eq!(parse_wave("100:0s").unwrap().soak_seconds, 0);
        for bad in [
            "10", "0:1h", "101:1h", "10:", "10:1w", ":1h", "ten:1h", "10:1h:2h",
        ] {
            assert!(parse_wave(bad).is_err(), "{bad}");
        }
        assert_eq!(soak_text(86_400), "1d");
        assert_eq!(soak_text(7200), "2h");
        assert_eq!(soak_text(90), "90s");
        assert_eq!(soak_text(0), "0s");
    }

    fn view() -> RolloutView {
        let wave = |number: u32, percent: u8, opened: Option<&str>| enigm_api::rollouts::WaveView {
            number,
            percent,
            soak_seconds: 3600,
            opened_at: opened.map(str::to_owned),
            soak_ends_at: None,
            counts: WaveCountsView::default(),
        };
        RolloutView {
            release: "0193a8f2-1111-7000-8000-000000000001".parse().unwrap(),
            release_version: "2026.12.1".to_owned(),
            stage: ReleaseStage::ControlledRollout,
            status: RolloutStatus::Halted,
            status_reason: Some(ReasonCategory::RolloutFailureThreshold),
            model: Some(RolloutModel::StableRollout),
            validation_groups: Vec::new(),
            halt: Some(HaltRuleSpec {
                max_failure_percent: 5,
                min_reports: 10,
            }),
            open_waves: 2,
            waves: vec![
                wave(1, 10, Some("2026-12-01T00:00:00.000Z")),
                enigm_api::rollouts::WaveView {
                    soak_ends_at: Some("2026-12-02T01:00:00.000Z".to_owned()),
                    counts: WaveCountsView {
                        offered: 7,
                        downloading: 6,
                        installed: 5,
                        failed: 4,
                        rolled_back: 3,
                        refused: 2,
                    },
                    ..wave(2, 50, Some("2026-12-02T00:00:00.000Z"))
                },
                wave(3, 100, None),
            ],
            outside_waves: WaveCountsView {
                offered: 1,
                ..WaveCountsView::default()
            },
            pending_approval: None,
            updated_at: None,
        }
    }

    #[test]
    fn a_halted_rollout_says_why_and_how_to_resume() {
        let text = rollout_text(&view());
        assert!(
            text.contains(
                "status: halted by Command: failed and rolled-back installs in the current wave \
                 passed the plan's threshold (rollout_failure_threshold); resume with `enigm \
                 release rollout resume 0193a8f2-1111-7000-8000-000000000001`"
            ),
            "{text}"
        );
        assert!(
            text.contains("model: stable-rollout, 2 open of 3 waves"),
            "{text}"
        );
        let row = text
            .lines()
            .find(|line| line.contains("2026-12-02T01:00"))
            .unwrap();
        let cells: Vec<&str> = row
            .split(['│', '┆'])
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .collect();
        assert_eq!(
            cells,
            [
                "2",
                "50 %",
                "2026-12-02T00:00:00.000Z",
                "2026-12-02T01:00:00.000Z",
                "7",
                "6",
                "5",
                "4",
                "3",
                "2"
            ]
        );
        assert!(
            text.lines()
                .any(|line| line.contains("outside waves") && line.contains("┆ 1 ")),
            "{text}"
        );
    }

    #[test]
    fn steps_say_what_happened() {
        let mut view = view();
        view.status = RolloutStatus::Active;
        assert_eq!(
            step_outcome(RolloutAction::Advance, &view),
            "wave 2 of 3 open: 50 % of the fleet; the next may open at 2026-12-02T01:00:00.000Z \
             (`enigm release rollout advance 0193a8f2-1111-7000-8000-000000000001`)"
        );
        let approval: enigm_types::ApprovalId =
            "0193a8f2-2222-7000-8000-000000000002".parse().unwrap();
        view.pending_approval = Some(approval);
        assert_eq!(
            step_outcome(RolloutAction::Promote, &view),
            format!(
                "promotion to stable waits for approval {approval}: another administrator \
                 approves it with `enigm admin approvals approve {approval}`"
            )
        );
    }

    #[test]
    fn the_watch_interval_is_at_least_a_second() {
        assert_eq!(parse_interval("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_interval("0s").is_err());
    }
}

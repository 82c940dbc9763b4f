//! Output of the `enigm` client: human tables (comfy-table) and `--json` bodies.
//!
//! Table builders are pure functions of API values so that their rendering is snapshot-tested;
//! every server-provided string passes through [`clean`] because it ends up on a terminal.

use std::collections::HashMap;
use std::fmt::Display;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ColumnConstraint, ContentArrangement, Table};
use enigm_api::{
    AccountView, ApprovalRuleView, ApprovalSubject, ApprovalView, AuditEventView, DeviceView,
    FindingView, GateView, RouteView, SessionView,
};
use enigm_types::{
    AdminId, GateEvidence, GateResult, GuardedDeviceChange, PatchLevelCheck, Role, SignalCheck,
};

/// Usernames known to the client, used to show names next to administrator ids.
pub(crate) type Names = HashMap<AdminId, String>;

/// How results are printed: tables for people, the response body for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
}

impl Format {
    pub(crate) fn from_flag(json: bool) -> Self {
        if json { Format::Json } else { Format::Human }
    }

    pub(crate) fn is_json(self) -> bool {
        self == Format::Json
    }
}

/// Writes to stdout; what `println!` and `print!` do in this crate. When the reader has gone
/// (`enigm … | head` closed the pipe) the rest of the output has nobody to read it: the process
/// exits at once, quietly, with status 1 (the output was not all delivered), where std's
/// macros would panic. Any other write error is reported the same way, with a message.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {error}");
        }
        std::process::exit(1);
    }
}

/// Prints a JSON body, pretty.
pub(crate) fn print_json(raw: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(raw)?);
    Ok(())
}

/// Prints a list answer in the one envelope every list command uses with `--json`:
/// `{"items": [...], "next_cursor": <string|null>}`, the cursor being what the command takes
/// back (e.g. `--after`) for the next page, `null` at the end.
pub(crate) fn print_json_list(
    items: &serde_json::Value,
    next_cursor: Option<String>,
) -> anyhow::Result<()> {
    print_json(&list_envelope(items, next_cursor))
}

/// The list envelope of [`print_json_list`]; a body that is not an array becomes one item.
pub(crate) fn list_envelope(
    items: &serde_json::Value,
    next_cursor: Option<String>,
) -> serde_json::Value {
    let items = match items {
        serde_json::Value::Array(_) => items.clone(),
        other => serde_json::Value::Array(vec![other.clone()]),
    };
    serde_json::json!({ "items": items, "next_cursor": next_cursor })
}

/// How often `--follow` asks the server for what is new.
pub(crate) const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Prints one JSON value on one line: what `--follow --json` prints per item (JSON Lines), as
/// a stream has no end at which an envelope could close.
pub(crate) fn print_json_line(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// One request on one line, for `approvals list --follow`.
pub(crate) fn approval_line(approval: &ApprovalView, names: &Names) -> String {
    format!(
        "{}  {}  {}  {}  by {}  {}/{}",
        clean(&approval.created_at),
        short_id(approval.id),
        approval.state.as_str(),
        action_summary(&approval.subject, names),
        short_name(approval.requester, names),
        approval.approvals.len(),
        approval.required_approvals
    )
}

/// One event on one line, for `audit events --follow`.
pub(crate) fn audit_line(event: &AuditEventView) -> String {
    let target = match &event.target_ref {
        Some(reference) => format!(
            "{}:{}",
            clean(&event.target_category),
            shorten_ids(&clean(reference))
        ),
        None => clean(&event.target_category),
    };
    let mut line = format!(
        "{}  {}  {}  {}  {}  {}",
        event.seq,
        clean(&event.time),
        shorten_ids(&clean(&event.actor)),
        event.action.as_str(),
        target,
        event.outcome.as_str()
    );
    if let Some(reason) = event.reason {
        line.push_str(&format!("  {}", reason.as_str()));
    }
    line
}

/// Prints a list table, or `empty` when it has no rows.
pub(crate) fn print_list(table: &Table, rows: usize, empty: &str) {
    if rows == 0 {
        println!("{empty}");
    } else {
        println!("{table}");
    }
}

pub(crate) fn print_table(table: &Table) {
    println!("{table}");
}

/// The first 8 characters of an id: enough to tell apart the rows of a list, and accepted back
/// by commands as a unique prefix.
pub(crate) fn short_id(id: impl Display) -> String {
    id.to_string().chars().take(8).collect()
}

/// Replaces control characters, so that text from the server cannot move the cursor or
/// change the terminal. Line breaks are kept: justifications may span lines.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

pub(crate) fn account_table(accounts: &[AccountView]) -> Table {
    let mut table = new_table(&["ID", "USERNAME", "ROLES", "FLAGS", "CREATED"]);
    for account in accounts {
        table.add_row(vec![
            short_id(account.id),
            clean(&account.username),
            roles_text(&account.roles),
            flags_text(account),
            clean(&account.created_at),
        ]);
    }
    keep_whole(table, &[0, 4])
}

pub(crate) fn account_detail(account: &AccountView) -> Table {
    let mut table = new_table(&["FIELD", "VALUE"]);
    table.add_row(vec!["id".to_owned(), account.id.to_string()]);
    table.add_row(vec!["username".to_owned(), clean(&account.username)]);
    table.add_row(vec!["roles".to_owned(), roles_text(&account.roles)]);
    table.add_row(vec!["disabled".to_owned(), yes_no(account.disabled)]);
    table.add_row(vec![
        "totp".to_owned(),
        if account.totp_enabled {
            "enabled"
        } else {
            "not enrolled"
        }
        .to_owned(),
    ]);
    let pin = match (account.pin_set, account.pin_locked) {
        (_, true) => "locked",
        (true, false) => "set",
        (false, false) => "not set",
    };
    table.add_row(vec!["pin".to_owned(), pin.to_owned()]);
    if let Some(raised) = &account.risk_raised_at {
        table.add_row(vec![
            "risk".to_owned(),
            format!("raised {raised} (5 wrong PINs or the duress PIN; a correct PIN clears it)"),
        ]);
    }
    if account.password_change_required {
        table.add_row(vec![
            "password".to_owned(),
            "change required: run `enigm admin password change`".to_owned(),
        ]);
    }
    table.add_row(vec!["created".to_owned(), clean(&account.created_at)]);
    table
}

pub(crate) fn session_table(sessions: &[SessionView]) -> Table {
    let mut table = new_table(&["ID", "ADMIN", "CREATED", "LAST SEEN", "EXPIRES", "CURRENT"]);
    for session in sessions {
        table.add_row(vec![
            short_id(session.id),
            short_id(session.admin),
            clean(&session.created_at),
            clean(&session.last_seen_at),
            clean(&session.expires_at),
            if session.current { "*" } else { "" }.to_owned(),
        ]);
    }
    keep_whole(table, &[0, 1, 2, 3, 4])
}

pub(crate) fn approval_table(approvals: &[ApprovalView], names: &Names) -> Table {
    let mut table = new_table(&[
        "ID",
        "KIND",
        "STATE",
        "REQUESTER",
        "APPROVALS",
        "ACTION",
        "EXPIRES",
    ]);
    for approval in approvals {
        table.add_row(vec![
            short_id(approval.id),
            approval.kind.as_str().to_owned(),
            approval.state.as_str().to_owned(),
            short_name(approval.requester, names),
            format!(
                "{}/{}",
                approval.approvals.len(),
                approval.required_approvals
            ),
            action_summary(&approval.subject, names),
            clean(&approval.expires_at),
        ]);
    }
    keep_whole(table, &[0, 2, 4, 6])
}

pub(crate) fn approval_detail(approval: &ApprovalView, names: &Names) -> Table {
    let mut table = new_table(&["FIELD", "VALUE"]);
    let approvers: Vec<String> = approval
        .approvals
        .iter()
        .map(|id| full_name(*id, names))
        .collect();
    table.add_row(vec!["id".to_owned(), approval.id.to_string()]);
    table.add_row(vec!["kind".to_owned(), approval.kind.as_str().to_owned()]);
    table.add_row(vec![
        "action".to_owned(),
        action_summary(&approval.subject, names),
    ]);
    for (field, value) in subject_rows(&approval.subject, names) {
        table.add_row(vec![field.to_owned(), value]);
    }
    table.add_row(vec!["state".to_owned(), approval.state.as_str().to_owned()]);
    table.add_row(vec![
        "requester".to_owned(),
        full_name(approval.requester, names),
    ]);
    table.add_row(vec![
        "justification".to_owned(),
        clean(&approval.justification),
    ]);
    table.add_row(vec![
        "approvals".to_owned(),
        format!(
            "{} of {} required",
            approval.approvals.len(),
            approval.required_approvals
        ),
    ]);
    table.add_row(vec![
        "approved by".to_owned(),
        if approvers.is_empty() {
            "-".to_owned()
        } else {
            approvers.join("\n")
        },
    ]);
    table.add_row(vec![
        "approver roles".to_owned(),
        roles_text(&approval.approver_roles),
    ]);
    if let Some(rejected_by) = approval.rejected_by {
        table.add_row(vec![
            "rejected by".to_owned(),
            full_name(rejected_by, names),
        ]);
    }
    table.add_row(vec!["created".to_owned(), clean(&approval.created_at)]);
    table.add_row(vec!["expires".to_owned(), clean(&approval.expires_at)]);
    table
}

pub(crate) fn rule_table(rules: &[ApprovalRuleView]) -> Table {
    let mut table = new_table(&["KIND", "REQUIRED", "APPROVER ROLES"]);
    for rule in rules {
        table.add_row(vec![
            rule.kind.as_str().to_owned(),
            rule.required_approvals.to_string(),
            roles_text(&rule.approver_roles),
        ]);
    }
    table
}

pub(crate) fn audit_table(events: &[AuditEventView]) -> Table {
    let mut table = new_table(&[
        "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON", "CHANGE",
    ]);
    for event in events {
        let target = match &event.target_ref {
            Some(reference) => format!(
                "{}:{}",
                clean(&event.target_category),
                shorten_ids(&clean(reference))
            ),
            None => clean(&event.target_category),
        };
        table.add_row(vec![
            event.seq.to_string(),
            clean(&event.time),
            shorten_ids(&clean(&event.actor)),
            event.action.as_str().to_owned(),
            target,
            event.outcome.as_str().to_owned(),
            event
                .reason
                .map_or_else(String::new, |reason| reason.as_str().to_owned()),
            event.change_ref.map_or_else(String::new, short_id),
        ]);
    }
    keep_whole(table, &[0, 1, 2, 3, 5, 7])
}

pub(crate) fn route_table(routes: &[RouteView]) -> Table {
    let mut table = new_table(&["METHOD", "PATH", "PERMISSION", "CRITICAL"]);
    for route in routes {
        table.add_row(vec![
            clean(&route.method),
            clean(&route.path),
            route.permission.map_or_else(
                || "(public)".to_owned(),
                |permission| permission.as_str().to_owned(),
            ),
            if route.critical { "pin" } else { "" }.to_owned(),
        ]);
    }
    table
}

pub(crate) fn finding_table(findings: &[FindingView]) -> Table {
    let mut table = new_table(&["SEVERITY", "DESCRIPTION", "RECOMMENDATION", "SOURCE"]);
    for finding in findings {
        let about = finding
            .signal
            .map_or_else(String::new, |signal| format!("{signal}: "));
        table.add_row(vec![
            kebab(&finding.severity),
            format!("{about}{}", clean(&finding.description)),
            clean(&finding.recommendation),
            finding_source(finding),
        ]);
    }
    keep_whole(table, &[0, 3])
}

/// A finding's source, with the other source it names: `attested vs declared` for a
/// contradiction, `declared (needs attested)` for a source below the policy's minimum.
fn finding_source(finding: &FindingView) -> String {
    let source = kebab(&finding.source);
    match (finding.reported_source, finding.required_source) {
        (Some(reported), _) => format!("{source} vs {}", kebab(&reported)),
        (None, Some(required)) => format!("{source} (needs {})", kebab(&required)),
        (None, None) => source,
    }
}

pub(crate) fn device_table(devices: &[DeviceView]) -> Table {
    let mut table = new_table(&["HANDLE", "STATE", "TRUST STATE", "GROUP", "LAST SEEN"]);
    for device in devices {
        table.add_row(vec![
            device.handle.to_string(),
            device.state.as_str().to_owned(),
            device.trust.state.as_str().to_owned(),
            clean(&device.group),
            clean(&device.last_seen_at),
        ]);
    }
    keep_whole(table, &[0, 1, 2, 4])
}

/// `ready`, or what keeps the device from being ready.
fn setup_text(setup: &enigm_api::SetupView) -> String {
    if setup.ready {
        return "ready".to_owned();
    }
    let missing: Vec<&str> = setup.missing.iter().map(|step| step.as_str()).collect();
    format!("not ready: {} not done", missing.join(", "))
}

/// Which policy of each kind a device is evaluated under and where it comes from.
pub(crate) fn device_policy_table(policies: &[enigm_api::policies::DevicePolicyView]) -> Table {
    let mut table = new_table(&["POLICY KIND", "IN FORCE", "FROM"]);
    for policy in policies {
        let in_force = match (&policy.name, policy.version) {
            (Some(name), Some(version)) => format!("{} version {version}", clean(name)),
            _ => match policy.source {
                enigm_types::PolicySource::Enrollment => "the enrollment token's".to_owned(),
                _ => "baseline".to_owned(),
            },
        };
        table.add_row(vec![
            policy.kind.as_str().to_owned(),
            in_force,
            policy.source.as_str().to_owned(),
        ]);
    }
    table
}

pub(crate) fn device_detail(device: &DeviceView) -> Table {
    let mut table = new_table(&["FIELD", "VALUE"]);
    let rows = [
        ("handle", device.handle.to_string()),
        ("state", device.state.as_str().to_owned()),
        ("trust state", device.trust.state.as_str().to_owned()),
        (
            "launcher summary",
            device.trust.launcher_summary.label().to_owned(),
        ),
        ("group", clean(&device.group)),
        ("managed opt-in", yes_no(device.managed_opt_in)),
        ("wipe opt-in", yes_no(device.wipe_opt_in)),
        ("enrolled", clean(&device.enrolled_at)),
        ("last seen", clean(&device.last_seen_at)),
        ("evaluated", clean(&device.trust.evaluated_at)),
        ("setup", setup_text(&device.setup)),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_owned(), value]);
    }
    let lifecycle = &device.lifecycle;
    let optional = [
        (
            "requested state",
            lifecycle
                .requested_state
                .map(|state| state.as_str().to_owned()),
        ),
        (
            "pending command",
            lifecycle
                .pending_command
                .as_ref()
                .map(|command| format!("{} (issued {})", command.command, clean(&command.at))),
        ),
        (
            "acknowledged command",
            lifecycle.acknowledged_command.as_ref().map(|command| {
                format!("{} (acknowledged {})", command.command, clean(&command.at))
            }),
        ),
        (
            "replaced by",
            lifecycle.replaced_by.map(|handle| handle.to_string()),
        ),
        (
            "replaces",
            lifecycle.replaces.map(|handle| handle.to_string()),
        ),
        (
            "attestation",
            device.attestation.as_ref().map(|attestation| {
                format!(
                    "{} ({}, {})",
                    clean(&attestation.verdict),
                    clean(&attestation.format),
                    clean(&attestation.attested_at)
                )
            }),
        ),
        (
            "attested build",
            device.attestation.as_ref().map(|attestation| {
                let claims = &attestation.claims;
                let text = |value: &Option<String>| clean(value.as_deref().unwrap_or("-"));
                let number =
                    |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
                format!(
                    "{} boot, {}, {}, OS {} patch {}",
                    text(&claims.verified_boot_state),
                    match claims.device_locked {
                        Some(true) => "locked",
                        Some(false) => "unlocked",
                        None => "lock unknown",
                    },
                    text(&claims.security_level),
                    number(claims.os_version),
                    number(claims.os_patch_level),
                )
            }),
        ),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            table.add_row(vec![field.to_owned(), value]);
        }
    }
    table
}

pub(crate) fn gate_table(gates: &[GateView]) -> Table {
    let mut table = new_table(&["PRODUCTION GATE", "RESULT", "WHY"]);
    for gate in gates {
        table.add_row(vec![
            kebab(&gate.gate),
            kebab(&gate.result),
            gate_reason(gate),
        ]);
    }
    keep_whole(table, &[0, 1])
}

/// Why a gate has its result, in a line: for a pass the evidence it rests on with each source
/// (`firewall (measured), …`); for a fail only what is wrong, grouped by what is wrong
/// (`missing: disk-encryption, screen-lock; degraded: firewall (declared)`); for not applicable
/// the reason.
fn gate_reason(gate: &GateView) -> String {
    if gate.because.is_empty() {
        // Postures evaluated before gates kept their explanation.
        return "not recorded yet: evaluated before gates kept their reasons".to_owned();
    }
    if gate.because.contains(&GateEvidence::NotManaged) {
        return "the device is not in managed-device mode".to_owned();
    }
    let show_ok = gate.result == GateResult::Pass;
    // Groups in a fixed order, each entry once: "<heading>: a, b".
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |heading: String, item: String| {
        if let Some((_, items)) = groups.iter_mut().find(|(name, _)| *name == heading) {
            items.push(item);
        } else {
            groups.push((heading, vec![item]));
        }
    };
    for entry in &gate.because {
        match *entry {
            GateEvidence::Signal {
                signal,
                check,
                value,
                source,
            } => {
                let sourced = match source {
                    Some(source) => format!("{signal} ({source})"),
                    None => signal.to_string(),
                };
                match check {
                    SignalCheck::Ok if show_ok => add(String::new(), sourced),
                    SignalCheck::Ok => {}
                    SignalCheck::Missing => add("missing".to_owned(), signal.to_string()),
                    SignalCheck::Stale => add("stale".to_owned(), sourced),
                    SignalCheck::FromFuture => add("from the future".to_owned(), sourced),
                    SignalCheck::NotOk => add(
                        value.map_or_else(|| "not ok".to_owned(), |value| value.to_string()),
                        sourced,
                    ),
                }
            }
            GateEvidence::PatchLevel { check } => match check {
                PatchLevelCheck::Met if show_ok => {
                    add(String::new(), "patch level at minimum or newer".to_owned());
                }
                PatchLevelCheck::Met => {}
                PatchLevelCheck::BelowMinimum => add(
                    "patch level".to_owned(),
                    "below the policy's minimum".to_owned(),
                ),
                PatchLevelCheck::Unknown => {
                    add("patch level".to_owned(), "not reported".to_owned())
                }
            },
            GateEvidence::NotManaged => {}
        }
    }
    groups
        .into_iter()
        .map(|(heading, items)| {
            if heading.is_empty() {
                items.join(", ")
            } else {
                format!("{heading}: {}", items.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The wire spelling of an enum in lower case (`high`, `not-applicable`), so that the table
/// uses the words of `--json`.
fn kebab<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => clean(&text).to_lowercase(),
        _ => "?".to_owned(),
    }
}

/// Keeps the given columns unwrapped (ids, times, states), so that narrow terminals wrap the
/// free-form columns instead of cutting timestamps in half.
fn keep_whole(mut table: Table, columns: &[usize]) -> Table {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    table
}

pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

fn roles_text(roles: &[Role]) -> String {
    if roles.is_empty() {
        "-".to_owned()
    } else {
        roles
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn flags_text(account: &AccountView) -> String {
    let flags: Vec<&str> = [
        (account.disabled, "disabled"),
        (account.totp_enabled, "totp"),
        (account.pin_set, "pin"),
        (account.pin_locked, "pin-locked"),
        (account.at_risk, "at-risk"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    flags.join(", ")
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// `alice (1f0c…-full-id)` when the username is known, the full id otherwise.
fn full_name(id: AdminId, names: &Names) -> String {
    match names.get(&id) {
        Some(name) => format!("{} ({id})", clean(name)),
        None => id.to_string(),
    }
}

/// The username when known, else the short id: for one-line summaries.
fn short_name(id: AdminId, names: &Names) -> String {
    names
        .get(&id)
        .map_or_else(|| short_id(id), |name| clean(name))
}

/// One line saying what a request would do, with enough of its subject to tell requests apart.
fn action_summary(subject: &ApprovalSubject, names: &Names) -> String {
    match subject {
        ApprovalSubject::RoleGrant {
            admin,
            username,
            role,
        } => format!(
            "grant {role} to {}",
            user_name(*admin, username.as_deref(), names)
        ),
        ApprovalSubject::ApprovalRuleChange {
            target_kind,
            required_approvals,
            approver_roles,
        } => format!(
            "set {target_kind} rule: {required_approvals} of {}",
            roles_text(approver_roles)
        ),
        ApprovalSubject::DeviceLifecycle { device, change } => {
            format!("{} device {device}", change_verb(*change))
        }
        ApprovalSubject::ReleaseSigning { release, details } => match details {
            Some(details) => format!(
                "sign release {} {} (sha256 {}…) for {}: {}",
                clean(&details.kind),
                clean(&details.release_version),
                clean(&details.sha256.chars().take(12).collect::<String>()),
                clean(&details.channel),
                details
                    .compatible_models
                    .iter()
                    .map(|model| clean(model))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => format!("sign release {} (no longer stored)", short_id(release)),
        },
        ApprovalSubject::TotpReset { admin, username } => format!(
            "reset the totp of {}",
            user_name(*admin, username.as_deref(), names)
        ),
        ApprovalSubject::PolicyVersionCreate {
            policy,
            name,
            policy_kind,
            digest,
            latest_version,
        } => format!(
            "new version {} of {policy_kind} policy {} (sha256 {}…)",
            latest_version.map_or(1, |latest| latest.saturating_add(1)),
            policy_name(*policy, name.as_deref()),
            clean(&digest.chars().take(12).collect::<String>()),
        ),
        ApprovalSubject::PolicyAssign {
            policy,
            name,
            policy_kind,
            version,
            groups,
        } => format!(
            "assign {policy_kind} policy {} version {version} to {}",
            policy_name(*policy, name.as_deref()),
            groups_text(groups),
        ),
        ApprovalSubject::PolicyUnassign {
            policy,
            name,
            policy_kind,
            groups,
        } => format!(
            "unassign {policy_kind} policy {} from {}",
            policy_name(*policy, name.as_deref()),
            groups_text(groups),
        ),
        ApprovalSubject::ReleaseStage {
            release,
            to,
            release_version,
            model,
        } => format!(
            "take release {} to {}{}",
            release_version
                .as_deref()
                .map_or_else(|| short_id(release), clean),
            stage_step(*to),
            model.map_or(String::new(), |model| format!(" ({model})")),
        ),
    }
}

/// What moving a release to `to` means, for approvers.
fn stage_step(to: enigm_types::ReleaseStage) -> String {
    match to {
        enigm_types::ReleaseStage::Stable => "stable: every eligible device".to_owned(),
        enigm_types::ReleaseStage::ControlledRollout => "its rollout".to_owned(),
        other => other.as_str().to_owned(),
    }
}

fn policy_name(policy: enigm_types::PolicyId, name: Option<&str>) -> String {
    name.map_or_else(|| short_id(policy), clean)
}

fn groups_text(groups: &[enigm_types::GroupName]) -> String {
    groups
        .iter()
        .map(enigm_types::GroupName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The subject in full, one field a row, for `approvals show` and before a decision.
fn subject_rows(subject: &ApprovalSubject, names: &Names) -> Vec<(&'static str, String)> {
    match subject {
        ApprovalSubject::RoleGrant {
            admin,
            username,
            role,
        } => vec![
            ("role", role.as_str().to_owned()),
            ("user", full_user_name(*admin, username.as_deref(), names)),
        ],
        ApprovalSubject::ApprovalRuleChange {
            target_kind,
            required_approvals,
            approver_roles,
        } => vec![
            ("rule for", target_kind.as_str().to_owned()),
            ("new rule", format!("{required_approvals} approval(s)")),
            ("new approver roles", roles_text(approver_roles)),
        ],
        ApprovalSubject::DeviceLifecycle { device, change } => vec![
            ("device", device.to_string()),
            ("change", change_verb(*change).to_owned()),
        ],
        ApprovalSubject::ReleaseSigning { release, details } => {
            let mut rows = vec![("release", release.to_string())];
            if let Some(details) = details {
                rows.extend([
                    ("target", clean(&details.target_name)),
                    ("release kind", clean(&details.kind)),
                    ("version", clean(&details.release_version)),
                    ("rollback index", details.rollback_index.to_string()),
                    ("channel", clean(&details.channel)),
                    (
                        "models",
                        details
                            .compatible_models
                            .iter()
                            .map(|model| clean(model))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    ("payload sha256", clean(&details.sha256)),
                    ("payload length", format!("{} bytes", details.length)),
                ]);
            } else {
                rows.push(("version", "(the release is no longer stored)".to_owned()));
            }
            rows
        }
        ApprovalSubject::TotpReset { admin, username } => {
            vec![("user", full_user_name(*admin, username.as_deref(), names))]
        }
        ApprovalSubject::PolicyVersionCreate {
            policy,
            name,
            policy_kind,
            digest,
            latest_version,
        } => vec![
            (
                "policy",
                format!("{} ({policy})", policy_name(*policy, name.as_deref())),
            ),
            ("policy kind", policy_kind.as_str().to_owned()),
            (
                "new version",
                latest_version
                    .map_or(1, |latest| latest.saturating_add(1))
                    .to_string(),
            ),
            ("content sha256", clean(digest)),
        ],
        ApprovalSubject::PolicyAssign {
            policy,
            name,
            policy_kind,
            version,
            groups,
        } => vec![
            (
                "policy",
                format!("{} ({policy})", policy_name(*policy, name.as_deref())),
            ),
            ("policy kind", policy_kind.as_str().to_owned()),
            ("version", version.to_string()),
            ("groups", groups_text(groups)),
        ],
        ApprovalSubject::PolicyUnassign {
            policy,
            name,
            policy_kind,
            groups,
        } => vec![
            (
                "policy",
                format!("{} ({policy})", policy_name(*policy, name.as_deref())),
            ),
            ("policy kind", policy_kind.as_str().to_owned()),
            ("unassign from", groups_text(groups)),
        ],
        ApprovalSubject::ReleaseStage {
            release,
            to,
            release_version,
            model,
        } => vec![
            ("release", release.to_string()),
            (
                "version",
                release_version
                    .as_deref()
                    .map_or_else(|| "(no longer stored)".to_owned(), clean),
            ),
            ("to stage", to.as_str().to_owned()),
            (
                "plan",
                model.map_or("(none)", |model| model.as_str()).to_owned(),
            ),
        ],
    }
}

fn change_verb(change: GuardedDeviceChange) -> &'static str {
    match change {
        GuardedDeviceChange::Revoke => "revoke",
        GuardedDeviceChange::Reactivate => "reactivate",
        GuardedDeviceChange::Wipe => "wipe",
    }
}

/// The username the server resolved, else one the client knows, else the short id.
fn user_name(id: AdminId, resolved: Option<&str>, names: &Names) -> String {
    resolved.map_or_else(|| short_name(id, names), clean)
}

/// `alice (full-id)` from the username the server resolved, else as [`full_name`].
fn full_user_name(id: AdminId, resolved: Option<&str>, names: &Names) -> String {
    match resolved {
        Some(name) => format!("{} ({id})", clean(name)),
        None => full_name(id, names),
    }
}

/// Replaces every canonical UUID in `text` by its first 8 characters (`admin:1f0c2d3e`).
pub(crate) fn shorten_ids(text: &str) -> String {
    const UUID_LEN: usize = 36;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let candidate = rest
            .get(..UUID_LEN)
            .filter(|slice| slice.parse::<AdminId>().is_ok());
        match candidate {
            Some(uuid) => {
                out.push_str(&short_id(uuid));
                rest = rest.get(UUID_LEN..).unwrap_or_default();
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    out.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

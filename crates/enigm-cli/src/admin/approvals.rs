//! `enigm admin approvals`: list, inspect, approve and reject multi-admin approval requests.

use std::collections::HashSet;

use clap::Subcommand;
use enigm_api::{AccountView, ApprovalListQuery, ApprovalView, paths};
use enigm_types::{AdminId, ApprovalId, ApprovalKind, ApprovalState};

use super::{Ctx, resolve};
use crate::output::{self, Names};
use crate::parse;

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List approval requests, newest first, with what each would do.
    List {
        /// Only requests in this state.
        #[arg(long, value_parser = parse::approval_state())]
        state: Option<ApprovalState>,
        /// Only requests opened since this time: RFC 3339 (2026-11-22T04:25:00Z) or a duration
        /// back from now (90s, 10m, 2h, 7d).
        #[arg(long, value_parser = parse::since, value_name = "TIME|DURATION")]
        since: Option<String>,
        /// After the list, keep watching: print each new request as it is opened, until
        /// interrupted (Ctrl-C). With --json, one JSON object per line.
        #[arg(long)]
        follow: bool,
    },
    /// Show one request in full.
    Show {
        /// Approval id (a unique prefix is enough).
        id: String,
    },
    /// Approve a request (critical: needs the PIN). It executes once enough approvers agree.
    Approve {
        /// Approval id (a unique prefix is enough).
        id: String,
    },
    /// Reject a request (critical: needs the PIN).
    Reject {
        /// Approval id (a unique prefix is enough).
        id: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum Decision {
    Approve,
    Reject,
}

pub(crate) async fn run(ctx: &Ctx, command: ApprovalsCommand) -> anyhow::Result<()> {
    match command {
        ApprovalsCommand::List {
            state,
            since,
            follow,
        } => {
            let query = ApprovalListQuery { state, since };
            let reply = ctx
                .client
                .get_query::<_, Vec<ApprovalView>>(paths::APPROVALS, &query)
                .await?;
            let names = known_names(ctx).await;
            if follow {
                return follow_approvals(ctx, query, reply.value, &names).await;
            }
            if ctx.json() {
                // All requests in one answer: there is no further page.
                return output::print_json_list(&reply.raw, None);
            }
            output::print_list(
                &output::approval_table(&reply.value, &names),
                reply.value.len(),
                "no approval requests",
            );
            Ok(())
        }
        ApprovalsCommand::Show { id } => {
            let id = resolve::approval(&ctx.client, &id).await?;
            let reply = ctx
                .client
                .get::<ApprovalView>(&paths::fill(paths::APPROVAL, &[&id.to_string()]))
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            let names = known_names(ctx).await;
            output::print_table(&output::approval_detail(&reply.value, &names));
            Ok(())
        }
        ApprovalsCommand::Approve { id } => decide(ctx, &id, Decision::Approve).await,
        ApprovalsCommand::Reject { id } => decide(ctx, &id, Decision::Reject).await,
    }
}

async fn decide(ctx: &Ctx, input: &str, decision: Decision) -> anyhow::Result<()> {
    let id = resolve::approval(&ctx.client, input).await?;
    let id_text = id.to_string();
    let current = ctx
        .client
        .get::<ApprovalView>(&paths::fill(paths::APPROVAL, &[&id_text]))
        .await?
        .value;
    // Refuse a decision the server is sure to refuse before the PIN is typed (the server
    // checks again, whatever this says).
    let me = ctx.client.get::<AccountView>(paths::WHOAMI).await?.value;
    if let Some(reason) = self_decision(&current, me.id, decision) {
        anyhow::bail!(SelfDecision(reason));
    }
    if !ctx.json() {
        // Show what is being decided before the PIN is asked for: an approver should never
        // approve an id without seeing the action behind it.
        let names = known_names(ctx).await;
        output::print_table(&output::approval_detail(&current, &names));
    }
    let pin = ctx.pin()?;
    let template = match decision {
        Decision::Approve => paths::APPROVAL_APPROVE,
        Decision::Reject => paths::APPROVAL_REJECT,
    };
    let reply = ctx
        .client
        .post_empty::<ApprovalView>(&paths::fill(template, &[&id_text]), Some(&pin))
        .await?;
    if ctx.json() {
        return output::print_json(&reply.raw);
    }
    let approval = reply.value;
    match approval.state {
        ApprovalState::Pending => {
            println!("approved {}", approval.id);
            print_waiting(&approval);
        }
        ApprovalState::Executed => println!("approved {}: the change is executed", approval.id),
        ApprovalState::Rejected => println!("rejected {}", approval.id),
        ApprovalState::Expired => println!("{} has expired", approval.id),
    }
    Ok(())
}

/// `list --follow`: prints what is there (oldest first, like `tail -f`), then every request
/// opened afterwards, one line (or one JSON object) each, polling until interrupted.
async fn follow_approvals(
    ctx: &Ctx,
    query: ApprovalListQuery,
    first: Vec<ApprovalView>,
    names: &Names,
) -> anyhow::Result<()> {
    let mut seen: HashSet<ApprovalId> = HashSet::new();
    let mut pending = first;
    loop {
        // The server answers newest first; print in the order they were opened.
        for approval in pending.iter().rev() {
            if seen.insert(approval.id) {
                if ctx.json() {
                    output::print_json_line(&serde_json::to_value(approval)?)?;
                } else {
                    println!("{}", output::approval_line(approval, names));
                }
            }
        }
        tokio::time::sleep(output::FOLLOW_INTERVAL).await;
        pending = ctx
            .client
            .get_query::<_, Vec<ApprovalView>>(paths::APPROVALS, &query)
            .await?
            .value;
    }
}

/// A decision refused before the PIN is asked for: separation of duties.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SelfDecision(&'static str);

/// Why `me` may not decide on `approval`, when the server is sure to refuse (403
/// `self_approval`). A role grant one requested oneself is left to the server: on a fresh
/// installation the sole owner approves their own grants until a second approver exists.
fn self_decision(approval: &ApprovalView, me: AdminId, decision: Decision) -> Option<&'static str> {
    if approval.action.subject() == Some(me) {
        return Some(
            "you cannot decide on a request that concerns you (self_approval): another \
             approver must decide it",
        );
    }
    let bootstrap_window_possible =
        matches!(decision, Decision::Approve) && approval.kind == ApprovalKind::RoleGrant;
    if approval.requester == me && !bootstrap_window_possible {
        return Some(
            "you cannot decide on a request you made (self_approval): another approver must \
             decide it",
        );
    }
    None
}

/// Says what a pending request still needs.
pub(crate) fn print_waiting(approval: &ApprovalView) {
    if approval.state != ApprovalState::Pending {
        println!("state: {}", approval.state.as_str());
        return;
    }
    let roles: Vec<&str> = approval
        .approver_roles
        .iter()
        .map(|role| role.as_str())
        .collect();
    let missing = usize::from(approval.required_approvals).saturating_sub(approval.approvals.len());
    println!(
        "waiting for approval: {missing} more from {} (expires at {})",
        roles.join(" or "),
        output::clean(&approval.expires_at)
    );
}

/// Usernames for the ids in a request, when the caller may list users; ids alone otherwise.
async fn known_names(ctx: &Ctx) -> Names {
    match ctx.client.get::<Vec<AccountView>>(paths::USERS).await {
        Ok(reply) => reply
            .value
            .into_iter()
            .map(|account| (account.id, account.username))
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "usernames unavailable; showing ids");
            Names::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use enigm_types::{ApprovalAction, ApprovalId, ReleaseId, Role};

    use super::*;

    fn request(requester: AdminId, action: ApprovalAction) -> ApprovalView {
        ApprovalView {
            id: ApprovalId::random(),
            kind: action.kind(),
            action,
            // The pre-PIN check reads the action alone; the subject only describes it.
            subject: enigm_api::ApprovalSubject::TotpReset {
                admin: requester,
                username: None,
            },
            state: ApprovalState::Pending,
            requester,
            justification: "why".to_owned(),
            required_approvals: 1,
            approver_roles: vec![Role::Owner],
            approvals: vec![],
            rejected_by: None,
            created_at: "2026-11-22T00:00:00.000Z".to_owned(),
            expires_at: "2026-11-23T00:00:00.000Z".to_owned(),
        }
    }

    #[test]
    fn own_requests_and_requests_about_oneself_are_refused_before_the_pin() {
        let (me, other) = (AdminId::random(), AdminId::random());
        let release = ApprovalAction::ReleaseSigning {
            release: ReleaseId::random(),
        };
        let grant_to = |admin| ApprovalAction::RoleGrant {
            admin,
            role: Role::Auditor,
        };
        // Another's request about someone else: for the server to decide.
        assert_eq!(
            self_decision(&request(other, release.clone()), me, Decision::Approve),
            None
        );
        // One's own request: refused, unless it is a role grant one approves (a fresh
        // installation's sole owner may, until a second approver exists).
        for decision in [Decision::Approve, Decision::Reject] {
            let refused = self_decision(&request(me, release.clone()), me, decision).unwrap();
            assert!(
                refused.contains("a request you made (self_approval)"),
                "{refused}"
            );
        }
        assert_eq!(
            self_decision(&request(me, grant_to(other)), me, Decision::Approve),
            None
        );
        assert!(self_decision(&request(me, grant_to(other)), me, Decision::Reject).is_some());
        // A request about oneself: always refused.
        for decision in [Decision::Approve, Decision::Reject] {
            let refused = self_decision(&request(other, grant_to(me)), me, decision).unwrap();
            assert!(refused.contains("concerns you"), "{refused}");
        }
    }
}

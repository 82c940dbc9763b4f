//! `enigm admin approval-rules`: read the rules, and request a change (itself approved by others).

use clap::Subcommand;
use enigm_api::{ApprovalRuleChangeRequest, ApprovalRuleView, ApprovalView, paths};
use enigm_types::{ApprovalKind, ApprovalRule, Justification, Role};

use super::Ctx;
use crate::output;
use crate::parse;

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalRulesCommand {
    /// List the rule of every kind of request.
    List,
    /// Request a rule change; it takes effect once approved.
    Set {
        #[arg(value_parser = parse::approval_kind())]
        kind: ApprovalKind,
        /// How many distinct approvers a request of this kind needs (1 to 5).
        #[arg(long, value_name = "N")]
        required: u8,
        /// Roles whose holders may approve, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 1.., required = true, value_parser = parse::role())]
        approver_roles: Vec<Role>,
        /// Why the rule should change, for the approvers.
        #[arg(long)]
        justification: String,
    },
}

pub(crate) async fn run(ctx: &Ctx, command: ApprovalRulesCommand) -> anyhow::Result<()> {
    match command {
        ApprovalRulesCommand::List => {
            let reply = ctx
                .client
                .get::<Vec<ApprovalRuleView>>(paths::APPROVAL_RULES)
                .await?;
            if ctx.json() {
                return output::print_json_list(&reply.raw, None);
            }
            output::print_list(
                &output::rule_table(&reply.value),
                reply.value.len(),
                "no approval rules",
            );
            Ok(())
        }
        ApprovalRulesCommand::Set {
            kind,
            required,
            approver_roles,
            justification,
        } => {
            // The same checks the server makes, so that a typo fails before a request exists.
            let rule = ApprovalRule::new(required, approver_roles)?;
            let justification = Justification::parse(&justification)?;
            let request = ApprovalRuleChangeRequest {
                required_approvals: rule.required_approvals(),
                approver_roles: rule.approver_roles().to_vec(),
                justification: justification.as_str().to_owned(),
            };
            let path = paths::fill(paths::APPROVAL_RULE, &[kind.as_str()]);
            let reply = ctx
                .client
                .put::<_, ApprovalView>(&path, &request, None)
                .await?;
            if ctx.json() {
                return output::print_json(&reply.raw);
            }
            println!(
                "requested a change of the {kind} rule: approval {}",
                reply.value.id
            );
            super::approvals::print_waiting(&reply.value);
            Ok(())
        }
    }
}

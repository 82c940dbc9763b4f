//! Command-line value parsers for the domain enums, so that `--help` lists the accepted values
//! and a typo fails before any request is made.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use enigm_types::{ApprovalKind, ApprovalState, AuditAction, DeviceState, Outcome, Role};

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Denied, Outcome::Failed];

pub(crate) fn role() -> impl TypedValueParser<Value = Role> {
    one_of(&Role::ALL, Role::as_str)
}

pub(crate) fn approval_kind() -> impl TypedValueParser<Value = ApprovalKind> {
    one_of(&ApprovalKind::ALL, ApprovalKind::as_str)
}

pub(crate) fn approval_state() -> impl TypedValueParser<Value = ApprovalState> {
    one_of(&ApprovalState::ALL, ApprovalState::as_str)
}

pub(crate) fn device_state() -> impl TypedValueParser<Value = DeviceState> {
    one_of(&DeviceState::ALL, DeviceState::as_str)
}

pub(crate) fn outcome() -> impl TypedValueParser<Value = Outcome> {
    one_of(&OUTCOMES, Outcome::as_str)
}

pub(crate) fn audit_action() -> impl TypedValueParser<Value = AuditAction> {
    one_of(AuditAction::ALL, AuditAction::as_str)
}

/// Accepts exactly the stable names of `all`.
fn one_of<T>(all: &'static [T], name: fn(T) -> &'static str) -> impl TypedValueParser<Value = T>
where
    T: Copy + Send + Sync + 'static,
{
    PossibleValuesParser::new(all.iter().map(|value| name(*value))).try_map(move |input| {
        all.iter()
            .copied()
            .find(|value| name(*value) == input)
            .ok_or_else(|| format!("unknown value `{input}`"))
    })
}

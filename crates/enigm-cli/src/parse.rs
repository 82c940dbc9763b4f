//! Command-line value parsers for the domain enums, so that `--help` lists the accepted values
//! and a typo fails before any request is made.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use enigm_types::{
    ApprovalKind, ApprovalState, AuditAction, DeviceHandle, DeviceState, Outcome, Role,
    RolloutModel, TrustState,
};

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

pub(crate) fn rollout_model() -> impl TypedValueParser<Value = RolloutModel> {
    one_of(&RolloutModel::ALL, RolloutModel::as_str)
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

/// `--since`: an RFC 3339 time (`2026-11-22T04:25:00Z`) or a duration back from now (`90s`,
/// `10m`, `2h`, `7d`), answered as the RFC 3339 time the server filters on.
pub(crate) fn since(input: &str) -> Result<String, String> {
    if let Some(at) = enigm_types::Timestamp::parse_rfc3339(input) {
        return Ok(at.to_rfc3339());
    }
    let back = duration_in_units(input).ok_or_else(|| since_error(input))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_owned())?;
    let now = enigm_types::Timestamp::from_unix_millis(
        i64::try_from(now.as_millis()).map_err(|_| "the system clock is out of range")?,
    );
    Ok(now.saturating_sub(back).to_rfc3339())
}

/// A duration as a whole number and one unit: `0s`, `90s`, `10m`, `2h`, `7d`.
pub(crate) fn duration(input: &str) -> Result<std::time::Duration, String> {
    duration_in_units(input)
        .ok_or_else(|| format!("`{input}` is not a duration (0s, 90s, 10m, 2h, 7d)"))
}

fn duration_in_units(input: &str) -> Option<std::time::Duration> {
    let unit_at = input
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&at| at > 0)?;
    let (number, unit) = input.split_at(unit_at);
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .map(std::time::Duration::from_secs)
}

fn since_error(input: &str) -> String {
    format!(
        "`{input}` is neither an RFC 3339 time (2026-11-22T04:25:00Z) nor a duration \
         (90s, 10m, 2h, 7d)"
    )
}

/// A trust state, in any case and with `-` or `_` (`protected`, `review-required`).
pub(crate) fn trust_state(text: &str) -> Result<TrustState, String> {
    text.to_ascii_uppercase()
        .replace('-', "_")
        .parse()
        .map_err(|_| {
            format!("unknown trust state `{text}` (PROTECTED, REVIEW_REQUIRED or INACTIVE)")
        })
}

/// A device handle (`dev_…`).
pub(crate) fn device_handle(text: &str) -> Result<DeviceHandle, String> {
    text.parse().map_err(|error| format!("{error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use enigm_types::Timestamp;

    #[test]
    fn since_takes_a_time_or_a_duration_back_from_now() {
        assert_eq!(
            super::since("2026-11-22T05:25:00+01:00").unwrap(),
            "2026-11-22T04:25:00.000Z"
        );
        let ten_minutes_ago = Timestamp::parse_rfc3339(&super::since("10m").unwrap()).unwrap();
        let an_hour_ago = Timestamp::parse_rfc3339(&super::since("1h").unwrap()).unwrap();
        assert!(an_hour_ago < ten_minutes_ago);
        for bad in [
            "",
            "10",
            "m",
            "10y",
            "-5m",
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            let error = super::since(bad).unwrap_err();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }

    #[test]
    fn durations_are_a_number_and_one_unit() {
        use std::time::Duration;
        assert_eq!(super::duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(super::duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(super::duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(super::duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in [
            "",
            "10",
            "h",
            "1.5h",
            "-1h",
            "1w",
            "1h30m",
            "99999999999999999999d",
        ] {
            assert!(super::duration(bad).is_err(), "{bad}");
        }
    }
}

//! TUF's time format, `YYYY-MM-DDTHH:MM:SSZ` (UTC, no fractions), to and from
//! [`enigm_types::Timestamp`].

use enigm_types::Timestamp;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The instant an `expires` field names; `None` when it is not RFC 3339 in UTC.
pub fn parse_expiry(text: &str) -> Option<Timestamp> {
    if !text.ends_with('Z') {
        return None;
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let millis = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(Timestamp::from_unix_millis(millis))
}

/// `at` as TUF writes times (whole seconds, UTC).
pub fn format_expiry(at: Timestamp) -> String {
    let Ok(time) = OffsetDateTime::from_unix_timestamp(at.unix_seconds()) else {
        return "1970-01-01T00:00:00Z".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// Whether metadata expiring at `expires` is expired at `now` (expiry is exclusive: metadata
/// is valid strictly before it).
pub fn is_expired(expires: &str, now: Timestamp) -> bool {
    parse_expiry(expires).is_none_or(|expires| now >= expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let at = parse_expiry("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(format_expiry(at), "2030-01-02T03:04:05Z");
        assert!(parse_expiry("2030-01-02T03:04:05+01:00").is_none());
        assert!(parse_expiry("yesterday").is_none());
        assert!(is_expired("2030-01-02T03:04:05Z", at));
        assert!(!is_expired(
            "2030-01-02T03:04:05Z",
            Timestamp::from_unix_millis(at.unix_millis() - 1)
        ));
    }
}

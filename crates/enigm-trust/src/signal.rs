//! Normalised security signals: what EnigmSecurityService reports about a device.
//!
//! Every signal is of a known [`SignalKind`]. Normalising to a closed vocabulary is the service's
//! job (enigm-docs §6: "collect + normalise"): a policy can then name exactly which signals are
//! critical, a report cannot smuggle free text, and the engine works on bit sets instead of
//! strings.

use std::fmt;
use std::str::FromStr;

use enigm_types::Timestamp;
use serde::{Deserialize, Serialize};

/// The six security layers of Enigm OS (enigm-docs §5.1). Defined in `enigm-types`, where the
/// audit log names them as the sources of a trust-state change.
pub use enigm_types::SecurityLayer as Layer;
/// The names of signals, their values and sources are vocabulary of `enigm-types`.
pub use enigm_types::{SignalKind, SignalSource, SignalValue};

/// One bit of a [`SignalSet`] per kind.
const fn bit(kind: SignalKind) -> u64 {
    1 << kind.index()
}

// Every kind is one bit of a `SignalSet`.
const _: () = assert!(SignalKind::COUNT < 64);

/// A set of signal kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignalSet(u64);

impl SignalSet {
    pub const EMPTY: SignalSet = SignalSet(0);

    pub fn contains(self, kind: SignalKind) -> bool {
        self.0 & bit(kind) != 0
    }

    pub fn insert(&mut self, kind: SignalKind) -> bool {
        let fresh = !self.contains(kind);
        self.0 |= bit(kind);
        fresh
    }

    pub fn remove(&mut self, kind: SignalKind) {
        self.0 &= !bit(kind);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn iter(self) -> impl Iterator<Item = SignalKind> {
        SignalKind::ALL
            .iter()
            .copied()
            .filter(move |kind| self.contains(*kind))
    }
}

impl FromIterator<SignalKind> for SignalSet {
    fn from_iter<I: IntoIterator<Item = SignalKind>>(iter: I) -> Self {
        let mut set = SignalSet::EMPTY;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl Serialize for SignalSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for SignalSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kinds = Vec::<SignalKind>::deserialize(deserializer)?;
        let mut set = SignalSet::EMPTY;
        for kind in kinds {
            if !set.insert(kind) {
                return Err(serde::de::Error::custom(format!(
                    "signal `{kind}` listed twice"
                )));
            }
        }
        Ok(set)
    }
}

/// One normalised signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub kind: SignalKind,
    pub value: SignalValue,
    #[schema(value_type = i64)]
    pub observed_at: Timestamp,
    pub source: SignalSource,
}

/// A security patch level, `YYYY-MM-DD` (as Android reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatchLevel {
    year: u16,
    month: u8,
    day: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("patch level must be a date YYYY-MM-DD")]
pub struct PatchLevelError;

impl PatchLevel {
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, PatchLevelError> {
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(PatchLevelError),
        };
        if !(2000..=9999).contains(&year) || !(1..=days_in_month).contains(&day) {
            return Err(PatchLevelError);
        }
        Ok(PatchLevel { year, month, day })
    }
}

impl FromStr for PatchLevel {
    type Err = PatchLevelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes.get(4) == Some(&b'-')
            && bytes.get(7) == Some(&b'-')
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shaped {
            return Err(PatchLevelError);
        }
        let part = |range: std::ops::Range<usize>| {
            text.get(range)
                .and_then(|digits| digits.parse::<u16>().ok())
                .ok_or(PatchLevelError)
        };
        let month = u8::try_from(part(5..7)?).map_err(|_| PatchLevelError)?;
        let day = u8::try_from(part(8..10)?).map_err(|_| PatchLevelError)?;
        PatchLevel::new(part(0..4)?, month, day)
    }
}

impl fmt::Display for PatchLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for PatchLevel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PatchLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("signal `{0}` is reported twice")]
    Duplicate(SignalKind),
    /// Only Command derives attested signals, and only the engine speaks as the engine: a
    /// report that claims either would raise its own provenance.
    #[error("signal `{kind}` claims the source `{claimed}`, which a device cannot report")]
    SourceNotReportable {
        kind: SignalKind,
        claimed: SignalSource,
    },
}

/// A device's signals at one time: at most one signal of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawReport", into = "RawReport")]
pub struct SignalReport {
    signals: Vec<Signal>,
    patch_level: Option<PatchLevel>,
    present: SignalSet,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    signals: Vec<Signal>,
    #[serde(default)]
    patch_level: Option<PatchLevel>,
}

impl SignalReport {
    pub fn new(signals: Vec<Signal>, patch_level: Option<PatchLevel>) -> Result<Self, ReportError> {
        let mut present = SignalSet::EMPTY;
        for signal in &signals {
            if !present.insert(signal.kind) {
                return Err(ReportError::Duplicate(signal.kind));
            }
            if matches!(signal.source, SignalSource::Attested | SignalSource::Engine) {
                return Err(ReportError::SourceNotReportable {
                    kind: signal.kind,
                    claimed: signal.source,
                });
            }
        }
        Ok(SignalReport {
            signals,
            patch_level,
            present,
        })
    }

    /// A report assembled by the merge of attested signals: `present` holds exactly the kinds
    /// of `signals`, one each.
    pub(crate) fn merged(
        signals: Vec<Signal>,
        patch_level: Option<PatchLevel>,
        present: SignalSet,
    ) -> Self {
        SignalReport {
            signals,
            patch_level,
            present,
        }
    }

    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }

    pub fn signal(&self, kind: SignalKind) -> Option<&Signal> {
        if !self.present.contains(kind) {
            return None;
        }
        self.signals.iter().find(|signal| signal.kind == kind)
    }

    pub fn patch_level(&self) -> Option<PatchLevel> {
        self.patch_level
    }

    /// The kinds reported.
    pub fn kinds(&self) -> SignalSet {
        self.present
    }
}

impl TryFrom<RawReport> for SignalReport {
    type Error = ReportError;

    fn try_from(raw: RawReport) -> Result<Self, Self::Error> {
        SignalReport::new(raw.signals, raw.patch_level)
    }
}

impl From<SignalReport> for RawReport {
    fn from(report: SignalReport) -> Self {
        RawReport {
            signals: report.signals,
            patch_level: report.patch_level,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in &SignalKind::ALL {
            assert_eq!(kind.as_str().parse::<SignalKind>(), Ok(*kind));
            let json = serde_json::to_string(kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!("Secure-Boot".parse::<SignalKind>().is_err());
    }

    #[test]
    fn patch_levels_parse_strictly_and_order_by_date() {
        let parsed: Result<PatchLevel, _> = "2026-09-05".parse();
        assert_eq!(parsed, PatchLevel::new(2026, 9, 5));
        for bad in [
            "2026-9-05",
            "2026-13-01",
            "2026-00-10",
            "20260905",
            "2026-09-05 ",
            "１９９９-01-01",
            "",
        ] {
            assert_eq!(bad.parse::<PatchLevel>(), Err(PatchLevelError), "{bad}");
        }
        assert!(PatchLevel::new(2026, 1, 31).ok() < PatchLevel::new(2026, 2, 1).ok());
    }

    #[test]
    fn reports_refuse_duplicate_kinds_and_unknown_fields() {
        let at = Timestamp::from_unix_millis(1);
        let signal = Signal {
            kind: SignalKind::Firewall,
            value: SignalValue::Ok,
            observed_at: at,
            source: SignalSource::Measured,
        };
        assert_eq!(
            SignalReport::new(vec![signal, signal], None),
            Err(ReportError::Duplicate(SignalKind::Firewall))
        );
        let twice = r#"{"signals":[
            {"kind":"tpm","value":"ok","observed_at":1,"source":"collector"},
            {"kind":"tpm","value":"failed","observed_at":1,"source":"collector"}]}"#;
        assert!(serde_json::from_str::<SignalReport>(twice).is_err());
        for claimed in ["attested", "engine"] {
            let forged = format!(
                r#"{{"signals":[{{"kind":"secure-boot","value":"ok","observed_at":1,"source":"{claimed}"}}]}}"#
            );
            assert!(
                serde_json::from_str::<SignalReport>(&forged).is_err(),
                "{claimed}"
            );
        }
        let extra = r#"{"signals":[],"score":99}"#;
        assert!(serde_json::from_str::<SignalReport>(extra).is_err());
        let fine = r#"{"signals":[{"kind":"tpm","value":"not-measurable","observed_at":1,"source":"profile"}],"patch_level":"2026-10-01"}"#;
        let report: SignalReport = serde_json::from_str(fine).unwrap_or_else(|_| SignalReport {
            signals: Vec::new(),
            patch_level: None,
            present: SignalSet::EMPTY,
        });
        assert!(report.kinds().contains(SignalKind::Tpm));
        assert_eq!(report.patch_level(), PatchLevel::new(2026, 10, 1).ok());
    }
}

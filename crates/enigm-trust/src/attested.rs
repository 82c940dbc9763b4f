//! Signals Command derives from a device's attestation, and how they are merged with what the
//! device reports (provenance, `docs/security.md`).
//!
//! Which evidence counts ([`AttestedSignals::from_evidence`]): the claims of the last accepted
//! attestation, all of them; and, when a later attestation of a genuine chain was rejected as an
//! ineligible build, only what its claims say is wrong (a rejected attestation may lower trust,
//! never raise it). How long ([`merge`]): a value that is not `ok` counts until newer evidence
//! replaces it; an `ok` value and the attested patch level outrank the report only while the
//! attestation is younger than the policy's `max_attestation_age` (then the report is judged
//! on its own again: an old attestation stops outranking, it never makes a device INACTIVE).
//!
//! Merging ([`merge`]), per signal kind with an attested value that counts:
//! - the attested value replaces the reported one, with source `attested`, unless the report
//!   is fresh and says worse (`degraded` or `failed` where the attestation says better): a
//!   device that admits a weakness is believed;
//! - a fresh report that says `ok` where the attestation says otherwise is a contradiction: a
//!   Critical `source-contradiction` finding naming both sources, and the device is INACTIVE
//!   (its report is shown false, so nothing else it says can be believed);
//! - a reported patch level later than the attested month is a contradiction too, and the
//!   attested month's first day is used instead.

use std::borrow::Cow;

use enigm_types::Timestamp;

use crate::engine::{Finding, FindingKind, Severity};
use crate::policy::TrustPolicy;
use crate::signal::{
    PatchLevel, Signal, SignalKind, SignalReport, SignalSet, SignalSource, SignalValue,
};

/// One attested value and when its attestation was appraised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestedSignal {
    pub kind: SignalKind,
    pub value: SignalValue,
    pub attested_at: Timestamp,
}

/// What one attestation says, as `enigm-attest` maps its claims: values per kind and the OS
/// patch month (`YYYYMM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence<'a> {
    pub values: &'a [(SignalKind, SignalValue)],
    pub os_patch_month: Option<i64>,
    pub attested_at: Timestamp,
}

/// The attested signals of one device: at most one per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestedSignals {
    signals: Vec<AttestedSignal>,
    present: SignalSet,
    /// The attested OS patch month, as (year, month), and when.
    patch_month: Option<((u16, u8), Timestamp)>,
}

impl AttestedSignals {
    /// No attestation: the report is judged on its own.
    pub const NONE: AttestedSignals = AttestedSignals {
        signals: Vec::new(),
        present: SignalSet::EMPTY,
        patch_month: None,
    };

    /// The signals of the last accepted attestation (`accepted`), overridden by what a later
    /// ineligible-build rejection (`rejected`) says is wrong. A rejection older than the
    /// acceptance is superseded by it and ignored.
    pub fn from_evidence(accepted: Option<Evidence<'_>>, rejected: Option<Evidence<'_>>) -> Self {
        let mut out = AttestedSignals::NONE;
        if let Some(accepted) = accepted {
            for (kind, value) in accepted.values {
                out.put(*kind, *value, accepted.attested_at);
            }
            out.patch_month = accepted
                .os_patch_month
                .and_then(year_month)
                .map(|month| (month, accepted.attested_at));
        }
        let superseded = |rejected: &Evidence<'_>| {
            accepted.is_some_and(|accepted| accepted.attested_at >= rejected.attested_at)
        };
        if let Some(rejected) = rejected.filter(|rejected| !superseded(rejected)) {
            for (kind, value) in rejected.values {
                if *value != SignalValue::Ok {
                    out.put(*kind, *value, rejected.attested_at);
                }
            }
            // A lower patch month is adverse evidence; a higher one from a rejection is not.
            if let Some(month) = rejected.os_patch_month.and_then(year_month)
                && out.patch_month.is_none_or(|(current, _)| month < current)
            {
                out.patch_month = Some((month, rejected.attested_at));
            }
        }
        out
    }

    pub fn signals(&self) -> &[AttestedSignal] {
        &self.signals
    }

    pub fn is_empty(&self) -> bool {
        self.signals.is_empty() && self.patch_month.is_none()
    }

    fn put(&mut self, kind: SignalKind, value: SignalValue, attested_at: Timestamp) {
        let signal = AttestedSignal {
            kind,
            value,
            attested_at,
        };
        if self.present.insert(kind) {
            self.signals.push(signal);
        } else if let Some(slot) = self.signals.iter_mut().find(|s| s.kind == kind) {
            *slot = signal;
        }
    }
}

/// A report with the attested signals merged in: what the engine and the gates judge.
#[derive(Debug, Clone)]
pub struct Merged<'r> {
    report: Cow<'r, SignalReport>,
    /// The kinds whose best source is `attested` (even where the report's worse value is used).
    attested: SignalSet,
    /// The contradictions found while merging.
    contradictions: Vec<Finding>,
}

impl Merged<'_> {
    /// The report as judged: attested values in place of reported ones.
    pub fn report(&self) -> &SignalReport {
        &self.report
    }

    /// The best source available for `kind`'s value in `signal`.
    pub fn best_source(&self, signal: &Signal) -> SignalSource {
        if self.attested.contains(signal.kind) {
            SignalSource::Attested
        } else {
            signal.source
        }
    }

    pub fn contradictions(&self) -> &[Finding] {
        &self.contradictions
    }
}

/// Merges the attested signals that count at `now` into `report` (see the module
/// documentation). Without attested signals the report is borrowed as it is.
pub fn merge<'r>(
    report: &'r SignalReport,
    attested: &AttestedSignals,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Merged<'r> {
    if attested.is_empty() {
        return Merged {
            report: Cow::Borrowed(report),
            attested: SignalSet::EMPTY,
            contradictions: Vec::new(),
        };
    }
    let fresh_attestation =
        |at: Timestamp| at <= now && now.duration_since(at) <= policy.max_attestation_age();
    let fresh_report = |signal: &Signal| {
        signal.observed_at <= now.saturating_add(policy.max_clock_skew())
            && now.duration_since(signal.observed_at) <= policy.max_signal_age()
    };
    let mut signals: Vec<Signal> = report.signals().to_vec();
    let mut present = report.kinds();
    let mut attested_kinds = SignalSet::EMPTY;
    let mut contradictions = Vec::new();
    for attested_signal in attested.signals() {
        let counts = attested_signal.value != SignalValue::Ok
            || fresh_attestation(attested_signal.attested_at);
        if !counts {
            continue;
        }
        let kind = attested_signal.kind;
        attested_kinds.insert(kind);
        // An attested value's freshness is its attestation's (checked above), not the report's
        // signal age: it is placed at `now`.
        let as_attested = Signal {
            kind,
            value: attested_signal.value,
            observed_at: now,
            source: SignalSource::Attested,
        };
        match signals.iter_mut().find(|signal| signal.kind == kind) {
            None => {
                present.insert(kind);
                signals.push(as_attested);
            }
            Some(reported) => {
                let believed = fresh_report(reported);
                if believed
                    && reported.value == SignalValue::Ok
                    && attested_signal.value != SignalValue::Ok
                {
                    contradictions.push(Finding {
                        kind: FindingKind::SourceContradiction,
                        severity: Severity::Critical,
                        signal: Some(kind),
                        critical: policy.is_critical(kind),
                        source: SignalSource::Attested,
                        reported_source: Some(reported.source),
                        required_source: None,
                    });
                }
                let admits_worse = believed
                    && weakness(reported.value) > weakness(attested_signal.value)
                    && weakness(reported.value) <= weakness(SignalValue::Failed);
                if !admits_worse {
                    *reported = as_attested;
                }
            }
        }
    }
    let mut patch_level = report.patch_level();
    if let Some(((year, month), at)) = attested.patch_month
        && fresh_attestation(at)
        && let Ok(first_day) = PatchLevel::new(year, month, 1)
    {
        let next_month = if month == 12 {
            PatchLevel::new(year.saturating_add(1), 1, 1)
        } else {
            PatchLevel::new(year, month.saturating_add(1), 1)
        };
        if let (Some(reported), Ok(next_month)) = (patch_level, next_month)
            && reported >= next_month
        {
            contradictions.push(Finding {
                kind: FindingKind::SourceContradiction,
                severity: Severity::Critical,
                signal: None,
                critical: true,
                source: SignalSource::Attested,
                reported_source: None,
                required_source: None,
            });
            patch_level = Some(first_day);
        }
    }
    Merged {
        report: Cow::Owned(SignalReport::merged(signals, patch_level, present)),
        attested: attested_kinds,
        contradictions,
    }
}

/// How bad a value is, for "the report admits worse than the attestation": ok < degraded <
/// failed; a report that cannot measure or run a protection says nothing about it.
fn weakness(value: SignalValue) -> u8 {
    match value {
        SignalValue::Ok => 0,
        SignalValue::Degraded => 1,
        SignalValue::Failed => 2,
        SignalValue::Unavailable | SignalValue::NotMeasurable => 3,
    }
}

/// `YYYYMM` as (year, month), if it is one.
fn year_month(level: i64) -> Option<(u16, u8)> {
    let year = u16::try_from(level / 100).ok()?;
    let month = u8::try_from(level % 100).ok()?;
    PatchLevel::new(year, month, 1).ok().map(|_| (year, month))
}

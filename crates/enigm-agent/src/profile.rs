//! `--profile FILE`: a TOML file that declares the signals of a simulated device.
//!
//! ```toml
//! [device]
//! name = "field-laptop"      # a free label, never transmitted
//! patch_level = "2026-10-05"
//! collect = true             # also run the real collectors; declared signals win
//!
//! [signals]
//! secure-boot = "ok"
//! disk-encryption = "degraded"
//!
//! [setup]                    # the setup steps done (strong PIN, terms, network readiness)
//! completed = ["strong-pin", "terms", "network-readiness"]
//!
//! [hardware]                 # what the OS knows of its hardware: never transmitted
//! serial = "SN-123"
//! imei = "356938035643809"
//! mac = "02:00:00:00:00:01"
//! ```
//!
//! Parsing is strict: unknown tables, keys, signal names and values are refused with the
//! line of the offending key, and a file over [`MAX_PROFILE_BYTES`] is refused before parsing.
//! The `[hardware]` table becomes [`HardwareIdentifiers`], which redacts its values in `Debug`
//! and has no `Serialize`, so it cannot end up in a report or any wire type by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::Path;

use enigm_trust::{PatchLevel, Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::{SetupStep, Timestamp};
use serde::Deserialize;

use crate::collect;

/// The largest profile accepted.
pub const MAX_PROFILE_BYTES: u64 = 64 * 1024;

/// A parsed device profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: Option<String>,
    patch_level: Option<PatchLevel>,
    collect: bool,
    signals: BTreeMap<SignalKind, SignalValue>,
    /// The setup steps the simulated device declares done; none when the profile has no
    /// `[setup]` table (the device is then not "ready").
    setup: Vec<SetupStep>,
    hardware: HardwareIdentifiers,
}

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("could not read profile `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("profile is larger than {} KiB", MAX_PROFILE_BYTES / 1024)]
    TooLarge,
    #[error("profile is not UTF-8 text")]
    NotUtf8,
    #[error("invalid profile: {0}")]
    Invalid(String),
}

impl Profile {
    /// Reads and parses the profile at `path`, refusing files over [`MAX_PROFILE_BYTES`].
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let read_error = |source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut bytes = Vec::new();
        file.take(MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge);
        }
        let text = String::from_utf8(bytes).map_err(|_| ProfileError::NotUtf8)?;
        Profile::parse(&text)
    }

    /// Parses profile text.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge);
        }
        let raw: RawProfile = toml::from_str(text).map_err(|error| syntax_error(text, &error))?;
        let device = raw.device.unwrap_or_default();
        let patch_level = device
            .patch_level
            .map(|level| {
                level.parse::<PatchLevel>().map_err(|_| {
                    ProfileError::Invalid(format!(
                        "`device.patch_level` must be a date YYYY-MM-DD, not `{level}`"
                    ))
                })
            })
            .transpose()?;
        Ok(Profile {
            name: device.name,
            patch_level,
            collect: device.collect,
            signals: raw.signals,
            setup: raw.setup.map(|setup| setup.completed).unwrap_or_default(),
            hardware: raw
                .hardware
                .map(HardwareIdentifiers::from)
                .unwrap_or_default(),
        })
    }

    /// The free label of the device; local only.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the real collectors run too.
    pub fn collects(&self) -> bool {
        self.collect
    }

    pub fn hardware(&self) -> &HardwareIdentifiers {
        &self.hardware
    }

    /// The setup steps the profile declares done.
    pub fn setup(&self) -> &[SetupStep] {
        &self.setup
    }

    /// The report of the simulated device at `now`: the declared signals with source `profile`
    /// and the declared patch level. Nothing of `[device]` but the patch level, and nothing of
    /// `[hardware]`, is in it.
    pub fn report(&self, now: Timestamp) -> SignalReport {
        collect::report_from(self.declared(now), self.patch_level)
    }

    /// Like [`Profile::report`], with the real collectors run against `root` for the kinds the
    /// profile does not declare when it says `collect = true`.
    pub fn report_with_collectors(&self, root: &Path, now: Timestamp) -> SignalReport {
        let mut signals = self.declared(now);
        if self.collect {
            // `report_from` keeps the first signal of a kind: declared signals win.
            signals.extend(collect::collect_signals(root, now));
        }
        collect::report_from(signals, self.patch_level)
    }

    fn declared(&self, now: Timestamp) -> Vec<Signal> {
        self.signals
            .iter()
            .map(|(&kind, &value)| Signal {
                kind,
                value,
                observed_at: now,
                source: SignalSource::Declared,
            })
            .collect()
    }
}

/// What the OS knows of its hardware. These identifiers never leave the device: the type has no
/// `Serialize`, and `Debug` and `Display` show only which identifiers are present.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HardwareIdentifiers {
    serial: Option<String>,
    imei: Option<String>,
    mac: Option<String>,
}

impl HardwareIdentifiers {
    /// The names of the identifiers the profile declares, e.g. `["serial", "imei"]`.
    pub fn declared(&self) -> Vec<&'static str> {
        [
            ("serial", &self.serial),
            ("imei", &self.imei),
            ("mac", &self.mac),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name)
        .collect()
    }
}

impl fmt::Debug for HardwareIdentifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("HardwareIdentifiers")
            .field("serial", &redacted(&self.serial))
            .field("imei", &redacted(&self.imei))
            .field("mac", &redacted(&self.mac))
            .finish()
    }
}

impl fmt::Display for HardwareIdentifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let declared = self.declared();
        if declared.is_empty() {
            f.write_str("no hardware identifiers")
        } else {
            write!(f, "hardware identifiers {} (redacted)", declared.join(", "))
        }
    }
}

// `HardwareIdentifiers` must never implement `Serialize`: if it did, the two impls below would
// both apply and the constant would not compile (the "ambiguous impl" trick of
// static_assertions' `assert_not_impl_any!`).
trait AmbiguousIfSerialize<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSerialize<()> for T {}
impl<T: ?Sized + serde::Serialize> AmbiguousIfSerialize<u8> for T {}
const _: fn() = || <HardwareIdentifiers as AmbiguousIfSerialize<_>>::check();

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    device: Option<RawDevice>,
    #[serde(default)]
    signals: BTreeMap<SignalKind, SignalValue>,
    setup: Option<RawSetup>,
    hardware: Option<RawHardware>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    completed: Vec<SetupStep>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<String>,
    patch_level: Option<String>,
    #[serde(default)]
    collect: bool,
}

/// The error's line and message. toml's own `Display` quotes the offending line, which could
/// be a hardware identifier; the message alone names only keys, tables and signal values.
fn syntax_error(text: &str, error: &toml::de::Error) -> ProfileError {
    let message = error.message().trim_end();
    match error.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            ProfileError::Invalid(format!("line {line}: {message}"))
        }
        None => ProfileError::Invalid(message.to_owned()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHardware {
    serial: Option<HardwareValue>,
    imei: Option<HardwareValue>,
    mac: Option<HardwareValue>,
}

/// A hardware identifier as text. Anything else is refused with a message that does not
/// repeat the value (serde's usual "invalid type: integer `356938035643809`" would).
struct HardwareValue(String);

impl<'de> Deserialize<'de> for HardwareValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        const MUST_BE_TEXT: &str = "hardware identifiers must be quoted strings";
        impl serde::de::Visitor<'_> for Text {
            type Value = HardwareValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(HardwareValue(text.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(E::custom(MUST_BE_TEXT))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(MUST_BE_TEXT))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(MUST_BE_TEXT))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(MUST_BE_TEXT))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl From<RawHardware> for HardwareIdentifiers {
    fn from(raw: RawHardware) -> Self {
        HardwareIdentifiers {
            serial: raw.serial.map(|value| value.0),
            imei: raw.imei.map(|value| value.0),
            mac: raw.mac.map(|value| value.0),
        }
    }
}

#[cfg(test)]
mod tests;

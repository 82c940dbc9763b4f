//! Opaque identifiers. Each kind of record has its own type so that a session id can never be
//! passed where an administrator id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind} id")]
pub struct IdParseError {
    kind: &'static str,
    input: String,
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh identifier from 122 random bits.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        // Serde goes through `FromStr`, so JSON bodies, query strings and URL paths accept the
        // one canonical spelling only (`Uuid`'s own deserializer is lenient).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                // Only the canonical hyphenated form is accepted, so that every id has exactly
                // one spelling in URLs, logs and the database.
                match Uuid::try_parse(input) {
                    Ok(uuid) if uuid.hyphenated().to_string() == input => Ok($name(uuid)),
                    _ => Err(IdParseError { kind: $kind, input: input.chars().take(64).collect() }),
                }
            }
        }
    };
}

opaque_id!(
    /// An administrator account of Enigm Command.
    AdminId,
    "administrator"
);
opaque_id!(
    /// One bearer session of an administrator.
    SessionId,
    "session"
);
opaque_id!(
    /// A multi-admin approval request.
    ApprovalId,
    "approval"
);
opaque_id!(
    /// One audit event.
    AuditEventId,
    "audit event"
);
opaque_id!(
    /// A device enrollment token (the id, never the secret token itself).
    EnrollmentTokenId,
    "enrollment token"
);
opaque_id!(
    /// An OTA release: one artifact (OS image, policy or configuration bundle) on its way from
    /// creation through signing approval and signing to publication.
    ReleaseId,
    "release"
);
opaque_id!(
    /// A named policy of one kind (trust, attestation, ...) held by Command, with its versions.
    PolicyId,
    "policy"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = AdminId::random();
        assert_eq!(id.to_string().parse::<AdminId>(), Ok(id));
    }

    #[test]
    fn serde_accepts_only_the_canonical_spelling() {
        let id = ApprovalId::random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ApprovalId>(&json).unwrap(), id);
        let simple = format!("\"{}\"", id.as_uuid().simple());
        assert!(serde_json::from_str::<ApprovalId>(&simple).is_err());
        assert!(serde_json::from_str::<ApprovalId>("42").is_err());
    }

    #[test]
    fn rejects_non_canonical_spellings() {
        let id = AdminId::random();
        let upper = id.to_string().to_uppercase();
        assert!(upper.parse::<AdminId>().is_err());
        assert!(
            id.as_uuid()
                .simple()
                .to_string()
                .parse::<AdminId>()
                .is_err()
        );
        assert!("../../etc/passwd".parse::<AdminId>().is_err());
        assert!("".parse::<SessionId>().is_err());
    }
}

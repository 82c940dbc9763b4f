//! Policies as Command objects: the kinds of policy, the names of device groups they are
//! assigned to, and where the policy a device is evaluated under comes from.

use crate::inline::{InlineText, inline_name_impls};
use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a policy governs. Each device has at most one effective policy of each kind.
    pub enum PolicyKind ("policy kind") {
        /// The Trust State Engine's policy (`enigm_trust::TrustPolicy`).
        Trust => "trust",
        /// The attestation policy (`enigm_attest::policy::AttestationPolicy`).
        Attestation => "attestation",
        /// The network routing policy (`enigm_netpolicy::PolicyDocument`).
        Network => "network",
        /// Reserved for device configuration (not yet supported).
        Configuration => "configuration",
    }
}

impl PolicyKind {
    /// Whether Command can hold versions of this kind today.
    pub const fn is_supported(self) -> bool {
        matches!(
            self,
            PolicyKind::Trust | PolicyKind::Attestation | PolicyKind::Network
        )
    }
}

vocabulary! {
    /// Where the policy of one kind that a device is evaluated under comes from, in order of
    /// precedence: its group's assignment, else the policy it enrolled with, else the baseline.
    pub enum PolicySource ("policy source") {
        GroupAssignment => "group-assignment",
        Enrollment => "enrollment",
        Baseline => "baseline",
    }
}

/// The precedence rule, as one function: a group assignment wins over the policy a device
/// enrolled with, which wins over the baseline.
pub fn policy_source(group_assigned: bool, enrolled_with_own: bool) -> PolicySource {
    if group_assigned {
        PolicySource::GroupAssignment
    } else if enrolled_with_own {
        PolicySource::Enrollment
    } else {
        PolicySource::Baseline
    }
}

/// A device group's name: 1 to 64 of `a-z 0-9 - _ .`, so that it is never free text and can be
/// named in an audit event. Held inline so that it is `Copy` like the rest of an audit target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(InlineText<{ GroupName::MAX_LEN }>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a group is 1 to 64 of `a-z 0-9 - _ .`")]
pub struct GroupNameError;

impl GroupName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<Self, GroupNameError> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
            });
        match InlineText::new(text) {
            Some(inline) if valid => Ok(GroupName(inline)),
            _ => Err(GroupNameError),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

inline_name_impls!(GroupName, GroupNameError);

impl utoipa::PartialSchema for GroupName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(GroupName::MAX_LEN))
            .pattern(Some(r"^[a-z0-9._-]{1,64}$"))
            .into()
    }
}

impl utoipa::ToSchema for GroupName {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn group_names_are_checked() {
        for good in ["a", "fleet-1", "eu.west_2", &"x".repeat(64)] {
            assert_eq!(
                GroupName::parse(good).map(|g| g.to_string()),
                Ok(good.to_owned())
            );
        }
        for bad in ["", "Fleet", "a b", "a/b", &"x".repeat(65), "é"] {
            assert_eq!(GroupName::parse(bad), Err(GroupNameError), "{bad:?}");
        }
    }

    proptest! {
        /// The precedence model: whatever else is present, a group assignment decides; without
        /// one, the enrollment policy; without either, the baseline.
        #[test]
        fn precedence_is_assignment_then_enrollment_then_baseline(
            assigned in any::<bool>(), enrolled in any::<bool>()
        ) {
            let source = policy_source(assigned, enrolled);
            let expected = match (assigned, enrolled) {
                (true, _) => PolicySource::GroupAssignment,
                (false, true) => PolicySource::Enrollment,
                (false, false) => PolicySource::Baseline,
            };
            prop_assert_eq!(source, expected);
        }

        #[test]
        fn group_names_round_trip(text in "[a-z0-9._-]{1,64}") {
            let group = GroupName::parse(&text).unwrap();
            prop_assert_eq!(group.as_str(), text.as_str());
            let json = serde_json::to_string(&group).unwrap();
            prop_assert_eq!(serde_json::from_str::<GroupName>(&json).unwrap(), group);
        }
    }
}

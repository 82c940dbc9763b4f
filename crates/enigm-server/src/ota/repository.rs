//! What Command checks before it stores handed-in metadata, and the snapshot and timestamp it
//! signs with its online keys. Every decision is `enigm-ota`'s.

use std::collections::BTreeSet;

use enigm_ota::client::TrustedMetadata;
use enigm_ota::director::{DIRECTOR_FIELD, director_keys};
use enigm_ota::metadata::{MetadataError, Root, Targets, verify_role};
use enigm_ota::release::{ReleaseRejection, release_fields, release_signing, verify_payload};
use enigm_ota::repository::{build_snapshot_with_delegated, build_timestamp};
use enigm_ota::{FailureCategory, MetadataSigner, sign_metadata};
use enigm_store::{MetadataRole, ReleaseRecord, StoredMetadata, WriteTx};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, Outcome, ReasonCategory, Timestamp,
};

use super::{Accepted, OtaRefusal, OtaService, SNAPSHOT_LIFETIME, TIMESTAMP_LIFETIME};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What a publish produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub targets_version: u64,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
}

/// The audit reason of a metadata failure.
pub fn reason_of(category: FailureCategory) -> ReasonCategory {
    category.reason()
}

/// The audit reason of a release rejection.
pub fn release_reason(rejection: ReleaseRejection) -> ReasonCategory {
    rejection.category().reason()
}

fn refusal(error: &MetadataError) -> OtaRefusal {
    OtaRefusal::new(reason_of(error.category()), error.to_string())
}

impl OtaService {
    /// Checks a new root: the first must carry its own root threshold, later ones the current
    /// and the new threshold with the version one higher; it must not be expired; its snapshot
    /// and timestamp roles must be exactly Command's online keys; its release keys must be
    /// valid and apart from every metadata key; its director pin, when it has one, must be
    /// Command's director key alone.
    pub fn accept_root(
        &self,
        current: Option<&[u8]>,
        new: &[u8],
        now: Timestamp,
    ) -> Result<Accepted, OtaRefusal> {
        let trusted = match current {
            None => {
                let trusted = TrustedMetadata::new(new).map_err(|error| refusal(&error))?;
                if trusted.root().version != 1 {
                    return Err(OtaRefusal::new(
                        ReasonCategory::UpdateMixAndMatch,
                        "the first root must be version 1",
                    ));
                }
                trusted
            }
            Some(current) => {
                let mut trusted = TrustedMetadata::new(current).map_err(|error| refusal(&error))?;
                trusted.update_root(new).map_err(|error| refusal(&error))?;
                trusted
            }
        };
        trusted.check_root(now).map_err(|error| refusal(&error))?;
        let root = trusted.root();
        self.check_online_keys_named(root)?;
        self.check_director_pinned(root)?;
        release_signing(root).map_err(|rejection| {
            OtaRefusal::new(release_reason(rejection), rejection.to_string())
        })?;
        Ok(Accepted {
            version: root.version,
        })
    }

    /// Whether `root` names Command's online keys, alone, for snapshot and timestamp: what
    /// Command signs is worthless to devices otherwise.
    pub fn check_online_keys_named(&self, root: &Root) -> Result<(), OtaRefusal> {
        let online = self.online();
        for (role, key) in [
            ("snapshot", &online.snapshot),
            ("timestamp", &online.timestamp),
        ] {
            let expected = key.key().key_id();
            let keys = root.role(role).map_err(|error| refusal(&error))?;
            if keys.keyids != [expected] || keys.threshold != 1 {
                return Err(OtaRefusal::new(
                    ReasonCategory::UpdateBadSignature,
                    format!(
                        "the {role} role must be Command's online key alone (GET /api/v1/ota/online-keys)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the director pin of `root`, when it has one, is Command's director key alone.
    /// A root without the pin is accepted: its devices update as in OTA I. A pin that does not
    /// parse, or names a root, targets or release key, would make every device refuse every
    /// answer; one naming another key would make them refuse what Command's director signs.
    pub fn check_director_pinned(&self, root: &Root) -> Result<(), OtaRefusal> {
        let pinned = director_keys(root)
            .map_err(|error| OtaRefusal::new(error.reason(), error.to_string()))?;
        let Some(pinned) = pinned else {
            return Ok(());
        };
        let expected = self.online().director.key().key_id();
        if pinned.threshold() != 1 || pinned.keys().keys().ne([&expected]) {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateBadSignature,
                format!(
                    "the `{DIRECTOR_FIELD}` pin must be Command's director key alone, threshold 1 \
                     (GET /api/v1/ota/online-keys)"
                ),
            ));
        }
        Ok(())
    }

    /// [`Self::check_online_keys_named`] for the root Command stored (none yet: nothing to
    /// disagree with). A stored root that does not parse is Command's own fault: internal.
    fn stored_root_names_online_keys(
        &self,
        root: Option<&StoredMetadata>,
    ) -> ApiResult<Result<(), OtaRefusal>> {
        let Some(root) = root else {
            return Ok(Ok(()));
        };
        let (_, root) = enigm_ota::metadata::parse::<Root>(&root.body)
            .map_err(|error| ApiError::internal(&error))?;
        Ok(self.check_online_keys_named(&root))
    }

    /// Checks the targets metadata handed in for `release`: signed by the trusted root's
    /// targets threshold, the next version, not expired; it lists the release exactly as
    /// declared (length, digest, fields) with a payload signature that verifies under the
    /// root's release keys; every other target is as it was.
    pub fn accept_targets(
        &self,
        root: &[u8],
        current: Option<&[u8]>,
        new: &[u8],
        release: &ReleaseRecord,
        now: Timestamp,
    ) -> Result<Accepted, OtaRefusal> {
        let trusted = TrustedMetadata::new(root).map_err(|error| refusal(&error))?;
        let root: &Root = trusted.root();
        let targets_role = root.role("targets").map_err(|error| refusal(&error))?;
        let verified = verify_role::<Targets>(new, &root.keys, targets_role).map_err(|error| {
            let mut refused = refusal(&error);
            if refused.reason == ReasonCategory::UpdateBadSignature {
                // Most often a key the root no longer names (after a rotation): say which.
                refused.message = format!(
                    "{}: sign with the targets key of root version {} (`enigm ota keys show` \
                     lists its key id; `enigm release sign` finds it on the token by key id \
                     when --targets-key-label is left out)",
                    refused.message, root.version
                );
            }
            refused
        })?;
        let targets = verified.signed();
        let previous: Option<Targets> = current
            .map(|bytes| {
                verify_role::<Targets>(bytes, &root.keys, targets_role)
                    .map(enigm_ota::metadata::Verified::into_signed)
                    // Targets signed under an older root: only its content matters here.
                    .or_else(|_| {
                        enigm_ota::metadata::parse::<Targets>(bytes).map(|(_, signed)| signed)
                    })
            })
            .transpose()
            .map_err(|error| refusal(&error))?;
        let expected_version = previous.as_ref().map_or(1, |p| p.version.saturating_add(1));
        if targets.version != expected_version {
            return Err(OtaRefusal::new(
                if targets.version < expected_version {
                    ReasonCategory::UpdateRollback
                } else {
                    ReasonCategory::UpdateMixAndMatch
                },
                format!(
                    "targets version {} is not the next version {expected_version}",
                    targets.version
                ),
            ));
        }
        if enigm_ota::time::is_expired(&targets.expires, now) {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateFreeze,
                "the targets metadata is already expired",
            ));
        }
        let declared = &release.release;
        let name = declared.target_name.as_str();
        let mismatch = |what: &str| {
            OtaRefusal::new(
                ReasonCategory::UpdateMixAndMatch,
                format!("the targets metadata does not list the release as declared: {what}"),
            )
        };
        // Only this release may be added, and only the targets it supersedes removed (the
        // rule the workstation's `next_targets` follows); nothing else may change.
        let mut others: BTreeSet<&String> = targets.targets.keys().collect();
        others.remove(&declared.target_name);
        let target = enigm_ota::client::target_of(&verified, name)
            .ok_or_else(|| mismatch("it is missing"))?;
        let fields = release_fields(&target).map_err(|rejection| {
            OtaRefusal::new(release_reason(rejection), rejection.to_string())
        })?;
        let before: BTreeSet<&String> = previous
            .as_ref()
            .map(|p| {
                let superseded: BTreeSet<&String> =
                    enigm_ota::release::superseded_by(&p.targets, name, &fields)
                        .into_iter()
                        .collect();
                p.targets
                    .keys()
                    .filter(|n| *n != name && !superseded.contains(n))
                    .collect()
            })
            .unwrap_or_default();
        if others != before {
            return Err(mismatch(
                "other targets were added or removed (only superseded releases may go)",
            ));
        }
        // A release never changes who is delegated what.
        match &previous {
            Some(previous) if previous.delegations != targets.delegations => {
                return Err(mismatch("its delegations changed"));
            }
            Some(_) => {}
            None => self.check_delegations(targets)?,
        }
        if let Some(previous) = &previous {
            for other in &others {
                if previous.targets.get(*other) != targets.targets.get(*other) {
                    return Err(mismatch("another target changed"));
                }
            }
        }
        if target.length() != declared.length || target.sha256() != Some(declared.sha256.as_str()) {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateArtifactMismatch,
                "the listed length or SHA-256 is not the uploaded artifact's",
            ));
        }
        let models: Vec<String> = serde_json::from_str(&declared.models).unwrap_or_default();
        if fields.kind != declared.kind
            || fields.release_version != declared.release_version
            || fields.rollback_index != declared.rollback_index
            || fields.channel != declared.channel
            || fields.hardware != models
            || fields.expires != enigm_ota::time::format_expiry(declared.expires_at)
        {
            return Err(mismatch("its release fields differ"));
        }
        verify_payload(root, &target, &fields).map_err(|rejection| {
            OtaRefusal::new(release_reason(rejection), rejection.to_string())
        })?;
        Ok(Accepted {
            version: targets.version,
        })
    }
}

impl OtaService {
    /// Checks targets metadata re-signed after a key rotation or to delegate the policy
    /// bundles: signed by the trusted root's targets threshold, one version higher than the
    /// current one (version 1 and no target when there is none yet), not expired, listing
    /// exactly what the current one lists, and delegating nothing or the policy bundles to
    /// Command's online snapshot key alone ([`Self::check_delegations`]).
    pub fn accept_resigned_targets(
        &self,
        root: &[u8],
        current: Option<&[u8]>,
        new: &[u8],
        now: Timestamp,
    ) -> Result<Accepted, OtaRefusal> {
        let trusted = TrustedMetadata::new(root).map_err(|error| refusal(&error))?;
        let root = trusted.root();
        let role = root.role("targets").map_err(|error| refusal(&error))?;
        let verified =
            verify_role::<Targets>(new, &root.keys, role).map_err(|error| refusal(&error))?;
        let targets = verified.signed();
        let previous = current
            .map(|current| {
                enigm_ota::metadata::parse::<Targets>(current)
                    .map(|(_, previous)| previous)
                    .map_err(|error| refusal(&error))
            })
            .transpose()?;
        let expected = previous.as_ref().map_or(1, |p| p.version.saturating_add(1));
        if targets.version != expected {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateRollback,
                "the re-signed targets must be the next version",
            ));
        }
        let listed = previous
            .as_ref()
            .map(|p| p.targets.clone())
            .unwrap_or_default();
        if targets.targets != listed {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateMixAndMatch,
                "re-signing may not change what the targets metadata lists",
            ));
        }
        if targets.delegations != previous.as_ref().and_then(|p| p.delegations.clone()) {
            self.check_delegations(targets)?;
        }
        if enigm_ota::time::is_expired(&targets.expires, now) {
            return Err(OtaRefusal::new(
                ReasonCategory::UpdateFreeze,
                "the targets metadata is already expired",
            ));
        }
        Ok(Accepted {
            version: targets.version,
        })
    }
}

impl OtaService {
    /// The only delegation top-level targets may carry: the policy bundles' paths to Command's
    /// online snapshot key alone, which signs them (or none). Anything else would let a key
    /// Command does not know vouch for targets devices install.
    pub fn check_delegations(&self, targets: &Targets) -> Result<(), OtaRefusal> {
        let Some(delegations) = &targets.delegations else {
            return Ok(());
        };
        let online = self.online().snapshot.key();
        if *delegations == enigm_ota::policy_bundle::bundle_delegation(&[&online]) {
            Ok(())
        } else {
            Err(OtaRefusal::new(
                ReasonCategory::UpdateMixAndMatch,
                "the targets metadata may delegate only the policy bundles, to Command's online \
                 snapshot key (GET /api/v1/ota/online-keys); `enigm ota keys delegate-bundles` \
                 writes that delegation",
            ))
        }
    }
}

/// Signs a new snapshot (listing the newest targets and policy bundles' role) and timestamp with the online keys and
/// stores them in `tx`.
pub async fn publish_latest(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    now: Timestamp,
) -> ApiResult<Published> {
    // When the online keys moved (between files and a token) the current root names others,
    // and devices would refuse everything signed now: say so instead of publishing it.
    let root = tx.latest_ota_metadata(MetadataRole::Root).await?;
    if let Err(refusal) = state.ota().stored_root_names_online_keys(root.as_ref())? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            refusal.reason.as_str(),
            format!(
                "the current root does not name Command's online snapshot and timestamp keys: \
                 on the signing workstation, with its token, run: {}",
                super::NAME_ONLINE_KEYS_COMMAND
            ),
        ));
    }
    let targets = tx
        .latest_ota_metadata(MetadataRole::Targets)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                ReasonCategory::RepositoryNotInitialised,
                "no targets metadata",
            )
        })?;
    let snapshot_version = tx
        .latest_ota_metadata(MetadataRole::Snapshot)
        .await?
        .map_or(1, |snapshot| snapshot.version.saturating_add(1));
    let online = state.ota().online();
    // The policy bundles' role, which Command signs, is listed whenever it exists.
    let bundles = tx.latest_ota_metadata(MetadataRole::PolicyBundles).await?;
    let delegated: Vec<(&str, u64, &[u8])> = bundles
        .iter()
        .map(|role| {
            (
                enigm_ota::policy_bundle::POLICY_BUNDLE_ROLE,
                role.version,
                role.body.as_slice(),
            )
        })
        .collect();
    let snapshot = build_snapshot_with_delegated(
        targets.version,
        &targets.body,
        &delegated,
        snapshot_version,
        now.saturating_add(SNAPSHOT_LIFETIME),
    );
    let snapshot_bytes = sign_metadata(&snapshot, &[&online.snapshot])
        .map_err(|error| ApiError::internal(&error))?;
    tx.insert_ota_metadata(
        MetadataRole::Snapshot,
        snapshot_version,
        &snapshot_bytes,
        now,
    )
    .await?;
    let timestamp_version =
        sign_timestamp(state, tx, snapshot_version, &snapshot_bytes, now).await?;
    Ok(Published {
        targets_version: targets.version,
        snapshot_version,
        timestamp_version,
    })
}

async fn sign_timestamp(
    state: &AppState,
    tx: &mut WriteTx<'_>,
    snapshot_version: u64,
    snapshot_bytes: &[u8],
    now: Timestamp,
) -> ApiResult<u64> {
    let version = tx
        .latest_ota_metadata(MetadataRole::Timestamp)
        .await?
        .map_or(1, |timestamp| timestamp.version.saturating_add(1));
    let timestamp = build_timestamp(
        snapshot_version,
        snapshot_bytes,
        version,
        now.saturating_add(TIMESTAMP_LIFETIME),
    );
    let bytes = sign_metadata(&timestamp, &[&state.ota().online().timestamp])
        .map_err(|error| ApiError::internal(&error))?;
    tx.insert_ota_metadata(MetadataRole::Timestamp, version, &bytes, now)
        .await?;
    Ok(version)
}

/// Whether the current root (if any) names Command's online keys; `enigm up` warns at start
/// when it does not (the keys moved between files and a token).
pub async fn current_root_names_online_keys(state: &AppState) -> ApiResult<bool> {
    let root = state
        .store()
        .latest_ota_metadata(MetadataRole::Root)
        .await?;
    Ok(state
        .ota()
        .stored_root_names_online_keys(root.as_ref())?
        .is_ok())
}

/// Re-signs the timestamp when less than [`super::TIMESTAMP_REFRESH_BEFORE`] of it is left, so
/// that devices never see a frozen repository while Command runs. Audited.
pub async fn refresh_timestamp_if_due(state: &AppState) -> ApiResult<bool> {
    let now = state.now();
    let Some(current) = state
        .store()
        .latest_ota_metadata(MetadataRole::Timestamp)
        .await?
    else {
        return Ok(false);
    };
    let due = expires_at(&current.body)
        .is_none_or(|expires| now.saturating_add(super::TIMESTAMP_REFRESH_BEFORE) >= expires);
    if !due {
        return Ok(false);
    }
    let mut tx = state.store().begin().await?;
    let Some(snapshot) = tx.latest_ota_metadata(MetadataRole::Snapshot).await? else {
        return Ok(false);
    };
    sign_timestamp(state, &mut tx, snapshot.version, &snapshot.body, now).await?;
    tx.append_audit(&AuditEvent::new(
        now,
        Actor::System,
        AuditAction::OtaTimestampRefresh,
        AuditTarget::OtaRepository,
        Outcome::Success,
    ))
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Runs [`refresh_timestamp_if_due`] every ten minutes while this process holds `lease`.
pub async fn refresh_timestamps(state: AppState, lease: std::sync::Arc<crate::lease::Lease>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(600));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !lease.is_held() {
            continue;
        }
        if let Err(error) = refresh_timestamp_if_due(&state).await {
            tracing::warn!(code = error.code(), "could not refresh the OTA timestamp");
        }
    }
}

fn expires_at(body: &[u8]) -> Option<Timestamp> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    enigm_ota::time::parse_expiry(value.get("signed")?.get("expires")?.as_str()?)
}

/// The expiry of a stored document, RFC 3339.
pub fn expires_of(body: &[u8]) -> Option<String> {
    expires_at(body).map(Timestamp::to_rfc3339)
}

//! Policy bundles (issue 15, item 3): Command compiles each device group's assigned policies
//! into a bundle (`enigm_ota::policy_bundle`), lists the newest bundle of every group in the
//! delegated targets role `policy-bundles`, which it signs with its online snapshot key, and
//! publishes a snapshot and timestamp that name that role.
//!
//! **When.** A change of what a group's devices are under (an approved assignment or
//! unassignment; a group's first enrollment token) marks the group in its own transaction
//! (`policy_bundle_groups.wanted`). [`run`], under the `ota-timestamps` lease, publishes the
//! marked groups every second in one transaction ([`publish_wanted`]) and re-signs the role
//! before it expires. One code path: a crash before the commit leaves the marks, a second
//! process publishing at once fails on the unique (group, sequence) and metadata version.
//!
//! **Authority.** Command publishes only while the current top-level targets delegates the
//! role to its online snapshot key alone ([`delegation_status`]); otherwise it publishes
//! nothing and says what to run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use enigm_api::policy_bundles::{PolicyBundleList, PolicyBundleSummary};
use enigm_ota::metadata::Targets;
use enigm_ota::policy_bundle::{
    AgentSettings, BUNDLE_TYPE, BundleFields, BundledPolicy, POLICY_BUNDLE_KIND, PolicyBundle,
    bundle_target_name, delegated_bundle_keys,
};
use enigm_ota::repository::{build_targets, target_file};
use enigm_ota::{MetadataSigner, sign_metadata};
use enigm_store::{BundledVersion, MetadataRole, PolicyBundleRecord, WantedBundle};
use enigm_trust::TrustPolicy;
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, GroupName, Outcome, PolicyKind, ProductionGate,
    SignalKind, Timestamp,
};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long the delegated role's metadata Command signs stays valid.
pub const ROLE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Re-sign the role once less than this is left.
pub const ROLE_REFRESH_BEFORE: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// The bounds of the check-in interval a bundle sets.
pub const MIN_CHECKIN_SECONDS: u64 = 10;
pub const MAX_CHECKIN_SECONDS: u64 = 3600;

/// What makes the top-level targets delegate the bundles to Command's online snapshot key, run
/// on the signing workstation with its targets key.
pub const DELEGATE_COMMAND: &str = "enigm ota keys delegate-bundles --pkcs11-module MODULE \
    --token-label LABEL --token-pin-file FILE";

/// Whether Command may publish bundles under the current targets metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationStatus {
    /// No targets metadata yet: nothing to publish into.
    NoRepository,
    /// The targets delegates the bundle role to Command's online snapshot key alone.
    Delegated,
    /// The targets does not delegate the bundle role.
    Missing,
    /// The targets delegates it to other keys (the online keys moved since).
    OtherKey,
}

impl DelegationStatus {
    /// The warning an operator sees, with what to run (none when Command can publish).
    pub fn warning(&self) -> Option<String> {
        let what = match self {
            DelegationStatus::NoRepository | DelegationStatus::Delegated => return None,
            DelegationStatus::Missing => {
                "the OTA targets metadata does not delegate policy bundles"
            }
            DelegationStatus::OtherKey => {
                "the OTA targets metadata delegates policy bundles to another key than Command's \
                 online snapshot key"
            }
        };
        Some(format!(
            "{what}, so Command publishes no policy bundles: on the signing workstation, with \
             its token, run: {DELEGATE_COMMAND}"
        ))
    }
}

/// The delegation status of `targets` (the stored envelope) for `online` (Command's snapshot
/// key).
pub fn status_of(targets: &[u8], online: &dyn MetadataSigner) -> ApiResult<DelegationStatus> {
    let (_, targets) = enigm_ota::metadata::parse::<Targets>(targets)
        .map_err(|error| ApiError::internal(&error))?;
    Ok(match delegated_bundle_keys(&targets) {
        None => DelegationStatus::Missing,
        Some(keys) if keys == [online.key().key_id()] => DelegationStatus::Delegated,
        Some(_) => DelegationStatus::OtherKey,
    })
}

/// [`status_of`] the stored current targets.
pub async fn delegation_status(state: &AppState) -> ApiResult<DelegationStatus> {
    match state
        .store()
        .latest_ota_metadata(MetadataRole::Targets)
        .await?
    {
        None => Ok(DelegationStatus::NoRepository),
        Some(targets) => status_of(&targets.body, &state.ota().online().snapshot),
    }
}

/// The signal kinds every bundle asks the agent to collect: what the production gates read.
fn gate_signals() -> BTreeSet<SignalKind> {
    ProductionGate::ALL
        .iter()
        .flat_map(|gate| gate.evidence().iter().copied())
        .collect()
}

/// Compiles `group`'s bundle number `sequence` from the versions it is assigned (kinds it is
/// not assigned are absent: its devices keep their enrollment policy or the baseline). The
/// agent settings follow the assigned trust policy, else the baseline one.
pub fn compile(
    group: &str,
    sequence: u64,
    issued_at: Timestamp,
    assigned: &[BundledVersion],
) -> ApiResult<PolicyBundle> {
    let mut policies = BTreeMap::new();
    let mut trust = TrustPolicy::baseline();
    for version in assigned {
        let content: serde_json::Value =
            serde_json::from_str(&version.content).map_err(|error| ApiError::internal(&error))?;
        if version.kind == PolicyKind::Trust {
            trust = serde_json::from_value(content.clone())
                .map_err(|error| ApiError::internal(&error))?;
        }
        policies.insert(
            version.kind.as_str().to_owned(),
            BundledPolicy {
                policy_id: version.policy.to_string(),
                name: version.policy_name.clone(),
                version: u64::from(version.version),
                sha256: version.digest.clone(),
                content,
            },
        );
    }
    let mut collect: BTreeSet<SignalKind> = gate_signals();
    collect.extend(trust.critical().iter());
    let mut collect: Vec<String> = collect
        .iter()
        .map(|kind| kind.as_str().to_owned())
        .collect();
    collect.sort();
    Ok(PolicyBundle {
        kind_tag: BUNDLE_TYPE.to_owned(),
        group: group.to_owned(),
        sequence,
        issued_at: issued_at.to_rfc3339(),
        policies,
        agent: AgentSettings {
            checkin_interval_seconds: (trust.max_signal_age().as_secs() / 2)
                .clamp(MIN_CHECKIN_SECONDS, MAX_CHECKIN_SECONDS),
            collect,
        },
    })
}

/// The stored form of a compiled bundle: its canonical bytes, digest and target name.
pub fn record_of(bundle: &PolicyBundle, at: Timestamp) -> ApiResult<PolicyBundleRecord> {
    let body = bundle
        .to_bytes()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(PolicyBundleRecord {
        group: bundle.group.clone(),
        sequence: bundle.sequence,
        target_name: bundle_target_name(&bundle.group, bundle.sequence),
        sha256: hex::encode(enigm_crypto::sha256(&body)),
        length: body.len() as u64,
        body,
        created_at: at,
    })
}

/// The delegated role's metadata at `version`, listing `bundles` (the newest of each group).
pub fn bundle_role(bundles: &[PolicyBundleRecord], version: u64, expires: Timestamp) -> Targets {
    let targets = bundles
        .iter()
        .map(|bundle| {
            let fields = BundleFields {
                kind: POLICY_BUNDLE_KIND.to_owned(),
                group: bundle.group.clone(),
                rollback_index: bundle.sequence,
            };
            (
                bundle.target_name.clone(),
                target_file(bundle.length, &bundle.sha256, Some(fields.custom())),
            )
        })
        .collect();
    build_targets(targets, version, expires)
}

/// What one round of [`publish_wanted`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Nothing was marked or due.
    Idle,
    /// Marked groups wait: Command may not publish (see the status's warning).
    Blocked(DelegationStatus),
    /// Published these bundles (and re-signed the role, maybe with none).
    Published(Vec<(String, u64)>),
}

/// Publishes a bundle for every marked group, and re-signs the role when `resign` (or when it
/// is due within [`ROLE_REFRESH_BEFORE`]), in one transaction with a new snapshot and timestamp.
pub async fn publish_wanted(state: &AppState, resign: bool) -> ApiResult<Round> {
    let now = state.now();
    let store = state.store();
    let wanted = store.wanted_policy_bundles().await?;
    let due = if wanted.is_empty() {
        resign && role_due(state, now).await?
    } else {
        false
    };
    if wanted.is_empty() && !due {
        return Ok(Round::Idle);
    }
    let status = delegation_status(state).await?;
    if status != DelegationStatus::Delegated {
        return Ok(Round::Blocked(status));
    }
    // The assignments are read after the marks: a change committed in between marks the group
    // again, and the next round publishes it.
    let mut assigned = Vec::with_capacity(wanted.len());
    for WantedBundle { group, wanted } in wanted {
        let versions = store.group_bundled_versions(&group).await?;
        assigned.push((group, wanted, versions));
    }
    let online = &state.ota().online().snapshot;
    let mut tx = store.begin().await?;
    let mut published = Vec::with_capacity(assigned.len());
    let mut groups = Vec::with_capacity(assigned.len());
    for (group, wanted, versions) in &assigned {
        let sequence = tx.next_policy_bundle_sequence(group).await?;
        let bundle = compile(group, sequence, now, versions)?;
        tx.insert_policy_bundle(&record_of(&bundle, now)?).await?;
        tx.mark_policy_bundle_published(group, *wanted).await?;
        let Ok(name) = GroupName::parse(group) else {
            // Groups come from enrollment tokens and assignments, both parsed: never here.
            continue;
        };
        tx.append_audit(&AuditEvent::new(
            now,
            Actor::System,
            AuditAction::PolicyBundlePublish,
            AuditTarget::PolicyBundle {
                group: name,
                sequence,
            },
            Outcome::Success,
        ))
        .await?;
        groups.push(name);
        published.push((group.clone(), sequence));
    }
    // Devices cache what they are under with their policy revision: a new bundle is named in
    // their next check-in answer.
    tx.bump_policy_revision(&groups).await?;
    let latest = tx.latest_policy_bundles().await?;
    let version = tx
        .latest_ota_metadata(MetadataRole::PolicyBundles)
        .await?
        .map_or(1, |role| role.version.saturating_add(1));
    let role = bundle_role(&latest, version, now.saturating_add(ROLE_LIFETIME));
    let bytes = sign_metadata(&role, &[online]).map_err(|error| ApiError::internal(&error))?;
    tx.insert_ota_metadata(MetadataRole::PolicyBundles, version, &bytes, now)
        .await?;
    crate::ota::publish_latest(state, &mut tx, now).await?;
    tx.commit().await?;
    Ok(Round::Published(published))
}

async fn role_due(state: &AppState, now: Timestamp) -> ApiResult<bool> {
    let Some(role) = state
        .store()
        .latest_ota_metadata(MetadataRole::PolicyBundles)
        .await?
    else {
        return Ok(false);
    };
    let expires =
        crate::ota::expires_of(&role.body).and_then(|text| enigm_ota::time::parse_expiry(&text));
    Ok(expires.is_none_or(|expires| now.saturating_add(ROLE_REFRESH_BEFORE) >= expires))
}

/// Publishes marked groups every second, and checks every ten minutes whether the role is due
/// for re-signing, while this process holds `lease` (the OTA timestamps' lease). A blocked
/// round is logged once per status, not every second.
pub async fn run(state: AppState, lease: std::sync::Arc<crate::lease::Lease>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u64 = 0;
    let mut warned: Option<DelegationStatus> = None;
    loop {
        ticks.tick().await;
        round = round.wrapping_add(1);
        if !lease.is_held() {
            continue;
        }
        match publish_wanted(&state, round % 600 == 1).await {
            Ok(Round::Blocked(status)) => {
                if warned.as_ref() != Some(&status) {
                    if let Some(warning) = status.warning() {
                        tracing::warn!("{warning}");
                    }
                    warned = Some(status);
                }
            }
            Ok(Round::Published(bundles)) => {
                warned = None;
                for (group, sequence) in bundles {
                    tracing::info!(group = %group, sequence, "published a policy bundle");
                }
            }
            Ok(Round::Idle) => {}
            Err(error) => {
                tracing::warn!(code = error.code(), "could not publish policy bundles");
            }
        }
    }
}

/// `GET /api/v1/policy-bundles`: the newest bundle of each group, by group, with the warning
/// when Command cannot publish.
pub async fn list(state: &AppState) -> ApiResult<PolicyBundleList> {
    let items = state
        .store()
        .latest_policy_bundles(None, u32::MAX)
        .await?
        .into_iter()
        .map(|row| PolicyBundleSummary {
            group: row.group,
            sequence: row.sequence,
            target_name: row.target_name,
            sha256: row.sha256,
            length: row.length,
            created_at: row.created_at.to_rfc3339(),
        })
        .collect();
    Ok(PolicyBundleList {
        items,
        next_cursor: None,
        warning: delegation_status(state).await?.warning(),
    })
}

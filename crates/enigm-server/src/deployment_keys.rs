//! One deployment, one set of keys: loads Command's keys (from the key directory or the PKCS#11
//! token) and checks them against the fingerprints the database records, before serving.
//!
//! The first process on a database records a fingerprint of each key; a later process whose
//! keys differ refuses to start, naming the keys and how to give it the deployment's, instead
//! of deriving other device handles, sealing with another key, or signing the one audit log
//! with a second key. Keys the database already knows are never made afresh: a missing one is
//! refused before anything is generated. The one legitimate change, moving the OTA online keys
//! between files and a token, needs `enigm up --rebind-ota-online-keys`.

use std::collections::BTreeSet;

use anyhow::Context as _;
use enigm_auditlog::NoteSigner;
use enigm_crypto::{AuditEventKey, DeviceHandleKey, Ed25519SigningKey, KeyFingerprint, SealingKey};
use enigm_ota::MetadataSigner as _;
use enigm_store::{KeyRole, Store};
use enigm_types::Timestamp;

use crate::bootstrap::{
    HOW_TO_REBIND_OTA_KEYS, HOW_TO_SHARE_KEYS, KeyCreation, load_or_create_audit_event_key,
    load_or_create_device_handle_key, load_or_create_log_key, load_or_create_ota_online_keys,
    load_or_create_proxy_credential_key, load_or_create_sealing_key, log_key_on_token,
    open_key_token, ota_online_keys_on_token, prepare_keys_dir, write_log_verifier,
};
use crate::config::ServerConfig;
use crate::ota::OnlineKeys;

/// The keys of the deployment, checked against the database.
pub struct DeploymentKeys {
    pub sealing: SealingKey,
    pub device_handle: DeviceHandleKey,
    pub log_signer: NoteSigner,
    /// Tags the audit events this process stores; beside the log key, always a file.
    pub audit_event: AuditEventKey,
    pub ota_online: OnlineKeys,
    /// Signs Enigm Proxy credentials; a file in the key directory.
    pub proxy_credential: Ed25519SigningKey,
}

/// Loads the keys `config` names, records their fingerprints in a database that has none, and
/// refuses keys that differ from recorded ones.
pub async fn load_and_bind(
    config: &ServerConfig,
    store: &Store,
    now: Timestamp,
) -> anyhow::Result<DeploymentKeys> {
    let bound: BTreeSet<KeyRole> = store
        .deployment_keys()
        .await
        .context("cannot read the deployment's key fingerprints")?
        .into_iter()
        .map(|key| key.role)
        .collect();
    let creation = |role: KeyRole| {
        let rebinding = config.rebind_ota_online_keys && is_ota_online(role);
        if bound.contains(&role) && !rebinding {
            KeyCreation::Refused
        } else {
            KeyCreation::Allowed
        }
    };
    let keys = load(config, &creation)?;
    bind(store, &keys, config.rebind_ota_online_keys, now).await?;
    write_log_verifier(&config.data_dir, &keys.log_signer)?;
    Ok(keys)
}

fn is_ota_online(role: KeyRole) -> bool {
    matches!(
        role,
        KeyRole::OtaSnapshot | KeyRole::OtaTimestamp | KeyRole::OtaDirector
    )
}

fn load(
    config: &ServerConfig,
    creation: &dyn Fn(KeyRole) -> KeyCreation,
) -> anyhow::Result<DeploymentKeys> {
    let keys_dir = config.keys_dir();
    prepare_keys_dir(&keys_dir)?;
    // Keys in files first, in the order an operator would look for them.
    let sealing = load_or_create_sealing_key(&keys_dir, creation(KeyRole::Sealing))?;
    let device_handle =
        load_or_create_device_handle_key(&keys_dir, creation(KeyRole::DeviceHandle))?;
    // One open token for all keys kept in it: a token cannot be opened twice in one process.
    let token = config
        .ota_online_token
        .as_ref()
        .map(open_key_token)
        .transpose()?;
    let log_signer = match (&token, config.audit_log_key_on_token) {
        (Some(token), true) => log_key_on_token(token, creation(KeyRole::AuditLog))?,
        (None, true) => anyhow::bail!(
            "--audit-key-on-token needs the token: --ota-pkcs11-module, --ota-token-label and \
             --ota-token-pin-file"
        ),
        (_, false) => load_or_create_log_key(&keys_dir, creation(KeyRole::AuditLog))?,
    };
    // A file even when the log key is on the token (see `load_or_create_audit_event_key`).
    let audit_event = load_or_create_audit_event_key(&keys_dir, creation(KeyRole::AuditEvent))?;
    // The OTA keys move together, so either both may be made or neither.
    let ota_creation = if creation(KeyRole::OtaSnapshot) == KeyCreation::Refused
        || creation(KeyRole::OtaTimestamp) == KeyCreation::Refused
    {
        KeyCreation::Refused
    } else {
        KeyCreation::Allowed
    };
    // The director's key came later (OTA II): a deployment made before it gets one at its
    // next start, beside the keys it has.
    let director_creation = creation(KeyRole::OtaDirector);
    let ota_online = match &token {
        Some(token) => ota_online_keys_on_token(token, ota_creation, director_creation)?,
        None => load_or_create_ota_online_keys(&keys_dir, ota_creation, director_creation)?,
    };
    let proxy_credential =
        load_or_create_proxy_credential_key(&keys_dir, creation(KeyRole::ProxyCredential))?;
    Ok(DeploymentKeys {
        sealing,
        device_handle,
        log_signer,
        audit_event,
        ota_online,
        proxy_credential,
    })
}

/// The fingerprint of each of the deployment's keys. Public keys: SHA-256 of the audit log's
/// verifier key string (its name, the log's origin, is part of what must agree) and the OTA
/// keys' TUF key ids (SHA-256 of the canonical key, as the root names them). Secret keys: a
/// keyed hash that reveals nothing of them.
fn fingerprints(keys: &DeploymentKeys) -> anyhow::Result<Vec<(KeyRole, KeyFingerprint)>> {
    let tuf = |key: &crate::ota::OnlineKey| {
        KeyFingerprint::from_hex(&key.key().key_id()).context("a TUF key id is a SHA-256")
    };
    Ok(vec![
        (KeyRole::Sealing, keys.sealing.fingerprint()),
        (KeyRole::DeviceHandle, keys.device_handle.fingerprint()),
        (
            KeyRole::AuditLog,
            KeyFingerprint::of_public(keys.log_signer.verifier().to_key_string().as_bytes()),
        ),
        (KeyRole::AuditEvent, keys.audit_event.fingerprint()),
        (KeyRole::OtaSnapshot, tuf(&keys.ota_online.snapshot)?),
        (KeyRole::OtaTimestamp, tuf(&keys.ota_online.timestamp)?),
        (KeyRole::OtaDirector, tuf(&keys.ota_online.director)?),
        (
            KeyRole::ProxyCredential,
            KeyFingerprint::of_public(&keys.proxy_credential.verifying_key().to_bytes()),
        ),
    ])
}

/// Records the fingerprints for roles the database has none of, in one transaction, and
/// compares the others. Any difference refuses (and rolls back the whole binding), except the
/// OTA online keys' when `rebind_ota` says the operator moved them.
async fn bind(
    store: &Store,
    keys: &DeploymentKeys,
    rebind_ota: bool,
    now: Timestamp,
) -> anyhow::Result<()> {
    let ours = fingerprints(keys)?;
    let mut tx = store.begin().await?;
    let mut differing = Vec::new();
    let mut newly_bound = Vec::new();
    for (role, fingerprint) in &ours {
        let recorded = tx
            .bind_deployment_key(*role, &fingerprint.to_hex(), now)
            .await
            .context("cannot record the deployment's key fingerprints")?;
        if recorded.newly_bound {
            newly_bound.push(*role);
        } else if recorded.fingerprint != fingerprint.to_hex() {
            differing.push((*role, recorded.fingerprint));
        }
    }
    let (rebound, refused): (Vec<_>, Vec<_>) = differing
        .into_iter()
        .partition(|(role, _)| rebind_ota && is_ota_online(*role));
    if !refused.is_empty() {
        let roles: Vec<&str> = refused.iter().map(|(role, _)| role.as_str()).collect();
        let mut message = format!(
            "this database belongs to a deployment with other keys: this process's {} {} \
             differ{} from the deployment's; {HOW_TO_SHARE_KEYS}",
            roles.join(", "),
            if roles.len() == 1 { "key" } else { "keys" },
            if roles.len() == 1 { "s" } else { "" },
        );
        if refused.iter().any(|(role, _)| is_ota_online(*role)) {
            message.push_str("; ");
            message.push_str(HOW_TO_REBIND_OTA_KEYS);
        }
        anyhow::bail!(message);
    }
    for (role, previous) in &rebound {
        if let Some((_, fingerprint)) = ours.iter().find(|(ours_role, _)| ours_role == role) {
            tx.rebind_deployment_key(*role, &fingerprint.to_hex(), now)
                .await?;
            // Printed as well as logged: the operator asked for it at the terminal.
            eprintln!(
                "warning: the deployment's {role} key is now the one with fingerprint \
                 {fingerprint} (was {previous}), as --rebind-ota-online-keys asked"
            );
            tracing::warn!(
                role = role.as_str(),
                fingerprint = %fingerprint,
                previous = previous.as_str(),
                "rebound an OTA online key of the deployment"
            );
        }
    }
    tx.commit()
        .await
        .context("cannot record the deployment's key fingerprints")?;
    if !newly_bound.is_empty() {
        let roles: Vec<&str> = newly_bound.iter().map(|role| role.as_str()).collect();
        tracing::info!(
            roles = roles.join(","),
            "recorded the fingerprints of this deployment's keys"
        );
    }
    Ok(())
}

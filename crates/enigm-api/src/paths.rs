//! Route paths of the Command API, in axum's `{param}` syntax.

pub const HEALTHZ: &str = "/healthz";
pub const OPENAPI: &str = "/api/openapi.json";
pub const LOGIN: &str = "/api/v1/auth/login";
pub const LOGOUT: &str = "/api/v1/auth/logout";
pub const WHOAMI: &str = "/api/v1/auth/whoami";
pub const PASSWORD: &str = "/api/v1/auth/password";
pub const PIN: &str = "/api/v1/auth/pin";
pub const DURESS_PIN: &str = "/api/v1/auth/duress-pin";
pub const TOTP: &str = "/api/v1/auth/totp";
pub const TOTP_CONFIRM: &str = "/api/v1/auth/totp/confirm";
pub const TOTP_REMOVE: &str = "/api/v1/auth/totp/remove";
pub const OWN_SESSIONS: &str = "/api/v1/auth/sessions";
pub const OWN_SESSION: &str = "/api/v1/auth/sessions/{id}";
pub const USERS: &str = "/api/v1/users";
pub const USER: &str = "/api/v1/users/{id}";
pub const USER_DISABLE: &str = "/api/v1/users/{id}/disable";
pub const USER_ENABLE: &str = "/api/v1/users/{id}/enable";
pub const USER_PIN_UNLOCK: &str = "/api/v1/users/{id}/pin-unlock";
pub const USER_TOTP_RESET: &str = "/api/v1/users/{id}/totp-reset";
pub const USER_ROLES: &str = "/api/v1/users/{id}/roles";
pub const USER_ROLE: &str = "/api/v1/users/{id}/roles/{role}";
pub const SESSIONS: &str = "/api/v1/sessions";
pub const SESSION: &str = "/api/v1/sessions/{id}";
pub const APPROVALS: &str = "/api/v1/approvals";
pub const APPROVAL: &str = "/api/v1/approvals/{id}";
pub const APPROVAL_APPROVE: &str = "/api/v1/approvals/{id}/approve";
pub const APPROVAL_REJECT: &str = "/api/v1/approvals/{id}/reject";
pub const APPROVAL_RULES: &str = "/api/v1/approval-rules";
pub const APPROVAL_RULE: &str = "/api/v1/approval-rules/{kind}";
pub const AUDIT_EVENTS: &str = "/api/v1/audit/events";
pub const AUDIT_CHECKPOINT: &str = "/api/v1/audit/log/checkpoint";
pub const AUDIT_LOG_KEY: &str = "/api/v1/audit/log/key";
pub const AUDIT_LEAVES: &str = "/api/v1/audit/log/leaves";
pub const AUDIT_LEAF: &str = "/api/v1/audit/log/leaves/{index}";
pub const AUDIT_CONSISTENCY: &str = "/api/v1/audit/log/consistency";
pub const AUDIT_LEGAL_HOLD: &str = "/api/v1/audit/legal-hold";
pub const ROUTES: &str = "/api/v1/routes";
pub const ENROLLMENT_TOKENS: &str = "/api/v1/enrollment-tokens";
pub const DEVICES: &str = "/api/v1/devices";
pub const DEVICE: &str = "/api/v1/devices/{handle}";
/// GET: policies; POST: create a named policy.
pub const POLICIES: &str = "/api/v1/policies";
pub const POLICY: &str = "/api/v1/policies/{id}";
/// POST: propose a version (202 with the approval request).
pub const POLICY_VERSIONS: &str = "/api/v1/policies/{id}/versions";
pub const POLICY_VERSION: &str = "/api/v1/policies/{id}/versions/{version}";
/// GET `?from=N&to=M`: the diff of two versions.
pub const POLICY_DIFF: &str = "/api/v1/policies/{id}/diff";
/// POST: assign a version to groups / remove the policy from groups (202, approval).
pub const POLICY_ASSIGN: &str = "/api/v1/policies/{id}/assign";
pub const POLICY_UNASSIGN: &str = "/api/v1/policies/{id}/unassign";
/// GET: every assignment (`?policy=ID` for one policy's).
pub const POLICY_ASSIGNMENTS: &str = "/api/v1/policy-assignments";
/// GET: the newest policy bundle of each group.
pub const POLICY_BUNDLES: &str = "/api/v1/policy-bundles";
pub const DEVICE_LIFECYCLE: &str = "/api/v1/devices/{handle}/lifecycle";
/// POST: decide a flow under the device's network policy (audited without the destination).
pub const DEVICE_NETWORK_DECISION: &str = "/api/v1/devices/{handle}/network-decision";
/// GET: the VPN gateways with their aggregate load; POST: register one.
pub const VPN_GATEWAYS: &str = "/api/v1/vpn/gateways";
/// PATCH: change a gateway's health, reported load or capacity.
pub const VPN_GATEWAY: &str = "/api/v1/vpn/gateways/{gateway}";
/// GET: the `[Peer]` sections the gateway applies (sessions of devices still on the network).
pub const VPN_GATEWAY_PEERS: &str = "/api/v1/vpn/gateways/{gateway}/peers";
/// Device-side routes: authenticated by the device's request signature, not a session.
pub const DEVICE_ENROLL: &str = "/api/v1/device/enroll";
pub const DEVICE_CHECK_INS: &str = "/api/v1/device/check-ins";
pub const DEVICE_COMMANDS: &str = "/api/v1/device/commands";
pub const DEVICE_ATTESTATION_CHALLENGE: &str = "/api/v1/device/attestation/challenge";
pub const DEVICE_ATTESTATION: &str = "/api/v1/device/attestation";
/// POST (signed): switch the device's VPN location, or leave the VPN.
pub const DEVICE_VPN: &str = "/api/v1/device/vpn";
pub const DEVICE_COMMAND_ACK: &str = "/api/v1/device/commands/ack";
/// POST (signed): a short-lived Enigm Proxy credential for the signing device.
pub const DEVICE_PROXY_CREDENTIAL: &str = "/api/v1/device/proxy-credential";
/// GET (public): the key proxies pin to verify credentials and revocation lists.
pub const PROXY_CREDENTIAL_KEY: &str = "/api/v1/proxy/credential-key";
/// GET (public): the signed list of revoked live credentials, which proxies poll.
pub const PROXY_REVOCATIONS: &str = "/api/v1/proxy/revocations";
pub const ELIGIBILITY: &str = "/api/v1/eligibility";

/// Fills `{name}` placeholders of a path, in order.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 40);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start..).unwrap_or_default();
        let end = after.find('}').map_or(after.len(), |i| i + 1);
        out.push_str(values.next().copied().unwrap_or_default());
        rest = after.get(end..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

pub const RELEASES: &str = "/api/v1/releases";
pub const RELEASE: &str = "/api/v1/releases/{id}";
pub const RELEASE_ARTIFACT: &str = "/api/v1/releases/{id}/artifact";
/// GET: the targets metadata the release is signed into is built by the workstation; POST hands
/// in the signed targets metadata (with the payload signature inside).
pub const RELEASE_SIGNATURES: &str = "/api/v1/releases/{id}/signatures";
pub const RELEASE_PUBLISH: &str = "/api/v1/releases/{id}/publish";
/// A release's rollout: its stage, plan, status and per-wave counts.
pub const RELEASE_ROLLOUT: &str = "/api/v1/releases/{id}/rollout";
/// Sets a release's rollout plan (until its rollout starts).
pub const RELEASE_ROLLOUT_PLAN: &str = "/api/v1/releases/{id}/rollout/plan";
/// One rollout step: validate, start, advance, promote, pause, resume, withdraw.
pub const RELEASE_ROLLOUT_ACTIONS: &str = "/api/v1/releases/{id}/rollout/actions";
/// Version pins per device group.
pub const OTA_PINS: &str = "/api/v1/ota/pins";
pub const OTA_PIN: &str = "/api/v1/ota/pins/{group}";
pub const OTA_ROOT: &str = "/api/v1/ota/root";
/// PUT: the current targets metadata re-signed (after a targets key rotation), same content.
pub const OTA_TARGETS: &str = "/api/v1/ota/targets";
pub const OTA_ONLINE_KEYS: &str = "/api/v1/ota/online-keys";
pub const OTA_REPOSITORY: &str = "/api/v1/ota/repository";
pub const DEVICE_OTA_REPORTS: &str = "/api/v1/device/ota/reports";
/// The director: a device asks which update it should install now (signed by the device).
pub const DEVICE_OTA_OFFER: &str = "/api/v1/device/ota/offer";
/// The TUF repository, public: `/tuf/metadata/{N.root.json, timestamp.json, N.snapshot.json,
/// N.targets.json}` and `/tuf/targets/{hash-prefixed target path}`.
pub const TUF_METADATA: &str = "/tuf/metadata/{file}";
pub const TUF_TARGETS: &str = "/tuf/targets/{*path}";
/// [`TUF_TARGETS`] as the OpenAPI document spells it: OpenAPI has no catch-all parameter, so the
/// document names one `{path}` parameter and says that it may hold slashes.
pub const TUF_TARGETS_DOCUMENTED: &str = "/tuf/targets/{path}";
pub const TUF_METADATA_PREFIX: &str = "/tuf/metadata";
pub const TUF_TARGETS_PREFIX: &str = "/tuf/targets";

#[cfg(test)]
mod tests {
    #[test]
    fn fill_replaces_placeholders_in_order() {
        assert_eq!(
            super::fill(super::USER_ROLE, &["abc", "owner"]),
            "/api/v1/users/abc/roles/owner"
        );
        assert_eq!(super::fill(super::USERS, &[]), "/api/v1/users");
    }
}

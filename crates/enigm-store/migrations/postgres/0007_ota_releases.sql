-- OTA releases (postgres). The TUF repository Command serves: every version of every top-level role's
-- signed metadata, exactly as signed (root versions are kept for the client's root chain;
-- consistent snapshots keep older snapshot and targets versions fetchable while clients move on).
-- Releases go draft -> approved (a release-signing approval was executed) -> signed (the
-- Manifest and Release-Signing Authorities' signatures verified) -> published (in a snapshot
-- and timestamp signed by Command's online keys). Artifacts live in the data directory by
-- digest; only their length and digest are here. Devices report each install's outcome.

CREATE TABLE ota_metadata (
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (role, version)
);

CREATE TABLE ota_releases (
    id TEXT PRIMARY KEY NOT NULL,
    target_name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    release_version TEXT NOT NULL,
    rollback_index BIGINT NOT NULL,
    channel TEXT NOT NULL,
    models TEXT NOT NULL,
    length BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    approval TEXT,
    artifact_stored BIGINT NOT NULL DEFAULT 0,
    targets_version BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    signed_at BIGINT,
    published_at BIGINT
);

CREATE TABLE ota_install_reports (
    handle TEXT NOT NULL REFERENCES devices(handle),
    target_name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (handle, target_name)
);

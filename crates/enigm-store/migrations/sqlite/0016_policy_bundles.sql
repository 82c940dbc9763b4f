-- Policy bundles (issue 15, item 3; sqlite). Command compiles each device group's assigned
-- policies into a bundle, a TUF target `policy-bundles/<group>/<sequence>.json` listed by the
-- delegated role `policy-bundles` it signs with its online snapshot key (that role's metadata is
-- in ota_metadata under role `policy-bundles`). A published bundle never changes.
-- policy_bundle_groups drives publishing: a change marks a group (`wanted` + 1) in its own
-- transaction; the publisher compiles the group and records the `wanted` it compiled for as
-- `published`, so a change made while it publishes is published on its next round.
-- devices.policy_bundle is the sequence the device last reported it enforces.

CREATE TABLE policy_bundles (
    group_name TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    target_name TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    length BIGINT NOT NULL,
    body BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, sequence)
);

CREATE INDEX policy_bundles_sha256 ON policy_bundles (sha256);

CREATE TABLE policy_bundle_groups (
    group_name TEXT PRIMARY KEY NOT NULL,
    wanted BIGINT NOT NULL,
    published BIGINT NOT NULL DEFAULT 0
);

ALTER TABLE devices ADD COLUMN policy_bundle BIGINT NULL;

CREATE TRIGGER policy_bundles_immutable BEFORE UPDATE ON policy_bundles
BEGIN
    SELECT RAISE(ABORT, 'policy bundles are immutable');
END;

CREATE TRIGGER policy_bundles_kept BEFORE DELETE ON policy_bundles
BEGIN
    SELECT RAISE(ABORT, 'policy bundles are immutable');
END;

-- Remote attestation (postgres): each enrollment token carries the attestation policy of the devices it
-- enrolls, and each device has one attestation row: its policy, the pairing pinned by its first
-- accepted attestation (a keyed digest of the attestation key, the boot key, and the highest OS
-- version and patch levels seen, for the no-downgrade rule) and the outcome of its last
-- attestation with the minimal claims. Evidence itself (certificates, quotes) is never stored.

ALTER TABLE enrollment_tokens ADD COLUMN attestation_policy TEXT NOT NULL DEFAULT '{}';

CREATE TABLE device_attestations (
    handle TEXT PRIMARY KEY NOT NULL REFERENCES devices(handle),
    policy TEXT NOT NULL,
    pairing TEXT,
    verdict TEXT,
    format TEXT,
    claims TEXT,
    attested_at BIGINT,
    accepted_at BIGINT
);

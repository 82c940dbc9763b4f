-- What every Command process of one deployment must agree on lives here, not in a process's
-- memory: attestation nonces, login throttle counts, and leases for the background tasks that
-- must run in one process at a time. Every row expires; expired rows are purged by the holder
-- of the `shared-state-purge` lease (and, for nonces, when the table is full).

-- A nonce issued to one device (its handle) for one purpose; taken at most once, by deleting it.
CREATE TABLE attestation_nonces (
    nonce BYTEA PRIMARY KEY NOT NULL,
    handle TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX attestation_nonces_expires_at ON attestation_nonces (expires_at);

-- Consecutive login failures per throttle key (`user:<name>` or `ip:<address>`), the end of
-- the running back-off, and when the key went quiet (the later of its last failure and the end
-- of its back-off): a key quiet for the policy's forget period is purged.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    blocked_until BIGINT,
    quiet_since BIGINT NOT NULL
);
CREATE INDEX login_throttle_quiet_since ON login_throttle (quiet_since);

-- Who runs a once-only background task (the audit sequencer, the retention purge, OTA timestamp
-- re-signing, ...) until when. A process takes a free or expired lease, or renews its own, in
-- one conditional upsert.
CREATE TABLE leases (
    task TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

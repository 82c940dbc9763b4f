-- Devices, enrollment tokens, seen request nonces and a bounded posture history (sqlite).
-- A device is known only by its handle (a keyed hash of its public key): there is no column for
-- the device's public key or for any hardware identifier, by design. Reports are not stored,
-- only what the Trust State Engine concluded from them (state, findings, production gates).

CREATE TABLE enrollment_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_digest TEXT NOT NULL UNIQUE,
    group_name TEXT NOT NULL,
    policy TEXT NOT NULL,
    uses_left BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    managed_allowed BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES admins(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE devices (
    handle TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    group_name TEXT NOT NULL,
    policy TEXT NOT NULL,
    managed_opt_in BIGINT NOT NULL,
    wipe_opt_in BIGINT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    trust_state TEXT NOT NULL,
    evaluated_at BIGINT NOT NULL,
    findings TEXT NOT NULL,
    gates TEXT NOT NULL,
    history_seq BIGINT NOT NULL,
    enrollment_token TEXT NOT NULL REFERENCES enrollment_tokens(id)
);

CREATE INDEX devices_state ON devices (state);
CREATE INDEX devices_trust_state ON devices (trust_state);
CREATE INDEX devices_group ON devices (group_name);

-- Nonces of signed device requests, kept while a request carrying them could still be fresh.
CREATE TABLE device_nonces (
    handle TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (handle, nonce)
);

-- The last evaluations of each device (at most 50 are kept).
CREATE TABLE device_posture_history (
    handle TEXT NOT NULL REFERENCES devices(handle),
    seq BIGINT NOT NULL,
    evaluated_at BIGINT NOT NULL,
    trust_state TEXT NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (handle, seq)
);

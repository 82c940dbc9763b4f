-- Check-ins are stored in batches, one transaction for many devices.
--
-- The nonce and posture-history tables become WITHOUT ROWID: their rows then live in their
-- primary key's order, so a check-in writes one page of each instead of a rowid page plus a
-- key-index page, and trimming a device's history touches the page its newest row went to.
-- Expired nonces are forgotten once per batch for all devices at once, through an index on
-- their expiry.

CREATE TABLE device_nonces_new (
    handle TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (handle, nonce)
) WITHOUT ROWID;
INSERT INTO device_nonces_new (handle, nonce, expires_at)
    SELECT handle, nonce, expires_at FROM device_nonces;
DROP TABLE device_nonces;
ALTER TABLE device_nonces_new RENAME TO device_nonces;
CREATE INDEX device_nonces_expires_at ON device_nonces (expires_at);

CREATE TABLE device_posture_history_new (
    handle TEXT NOT NULL REFERENCES devices(handle),
    seq BIGINT NOT NULL,
    evaluated_at BIGINT NOT NULL,
    trust_state TEXT NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (handle, seq)
) WITHOUT ROWID;
INSERT INTO device_posture_history_new (handle, seq, evaluated_at, trust_state, findings)
    SELECT handle, seq, evaluated_at, trust_state, findings FROM device_posture_history;
DROP TABLE device_posture_history;
ALTER TABLE device_posture_history_new RENAME TO device_posture_history;

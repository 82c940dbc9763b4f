-- Device lifecycle (sqlite): the commands Command issued that a device carries out and acknowledges
-- (two-phase retire and wipe), and replacements. A device's `state` column stays the state the
-- device confirmed; a pending command (acknowledged_at IS NULL, at most one per device) is what
-- an operator asked for. A replacement links the old device to the one-use enrollment token
-- issued for its successor; the successor is the device enrolled with that token, so the link
-- is handles only and the successor's own row records nothing of its predecessor.

CREATE TABLE device_commands (
    handle TEXT NOT NULL REFERENCES devices(handle),
    issued_at BIGINT NOT NULL,
    command TEXT NOT NULL,
    issued_by TEXT NOT NULL REFERENCES admins(id),
    approval TEXT,
    acknowledged_at BIGINT,
    PRIMARY KEY (handle, issued_at)
);

CREATE UNIQUE INDEX device_commands_pending ON device_commands (handle)
    WHERE acknowledged_at IS NULL;

CREATE TABLE device_replacements (
    handle TEXT PRIMARY KEY NOT NULL REFERENCES devices(handle),
    enrollment_token TEXT NOT NULL UNIQUE REFERENCES enrollment_tokens(id),
    replaced_by TEXT NOT NULL REFERENCES admins(id),
    replaced_at BIGINT NOT NULL
);

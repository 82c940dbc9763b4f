-- Controlled rollout of OTA releases (issue 14). A published release's operator stage
-- (validated, controlled-rollout, stable; none yet means registered), its plan (JSON: model,
-- waves, validation groups, halt rule), whether it makes offers (active, paused, halted,
-- withdrawn) and its open waves (JSON: each one's place limit, null for everyone, and when it
-- opened).
-- What each device did with a release it asked about is one row per device and release: the
-- wave its place fell in (null outside waves) and its last state; never more about the device.
-- A version pin keeps a device group on one release until removed.

CREATE TABLE release_rollouts (
    release_id TEXT PRIMARY KEY NOT NULL REFERENCES ota_releases(id),
    stage TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    plan TEXT,
    cuts TEXT NOT NULL,
    pending_approval TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rollout_devices (
    release_id TEXT NOT NULL REFERENCES ota_releases(id),
    handle TEXT NOT NULL REFERENCES devices(handle),
    wave BIGINT,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (release_id, handle)
);

CREATE INDEX rollout_devices_wave ON rollout_devices (release_id, wave, state);

CREATE TABLE ota_version_pins (
    group_name TEXT PRIMARY KEY NOT NULL,
    release_id TEXT NOT NULL REFERENCES ota_releases(id),
    pinned_by TEXT NOT NULL,
    pinned_at BIGINT NOT NULL
);

-- A counter every change to what the director decides from (a release published, a rollout's
-- row, a pin) increases in its own transaction, so that each Command process can keep the
-- catalogue of offerable releases in memory and read it again only when the counter moved.
CREATE TABLE ota_catalog_generation (
    id BIGINT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);

INSERT INTO ota_catalog_generation (id, generation) VALUES (1, 0);

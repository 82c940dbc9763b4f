-- Policies as Command objects (issue 15, item 1; postgres).
-- A named policy has one kind; its versions are numbered 1, 2, ... when an approval makes a
-- proposal a version (`version` is NULL while proposed) and never change after that. An
-- assignment makes one device group follow one pinned version of one policy per kind.
-- devices.policy_revision counts changes of what a device is evaluated under (an assignment of
-- its group, an accepted or rejected attestation): a process whose cached policy was loaded at
-- an older revision reloads it before the check-in is stored.

CREATE TABLE policies (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES admins(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE policy_versions (
    id TEXT PRIMARY KEY NOT NULL,
    policy_id TEXT NOT NULL REFERENCES policies(id),
    version BIGINT NULL,
    content TEXT NOT NULL,
    digest TEXT NOT NULL,
    proposed_by TEXT NOT NULL REFERENCES admins(id),
    proposed_at BIGINT NOT NULL,
    approved_at BIGINT NULL,
    approval TEXT NULL,
    UNIQUE (policy_id, version)
);

CREATE TABLE policy_assignments (
    kind TEXT NOT NULL,
    group_name TEXT NOT NULL,
    policy_id TEXT NOT NULL REFERENCES policies(id),
    version BIGINT NOT NULL,
    assigned_at BIGINT NOT NULL,
    approval TEXT NOT NULL,
    PRIMARY KEY (kind, group_name)
);

CREATE INDEX policy_assignments_policy ON policy_assignments (policy_id);

ALTER TABLE devices ADD COLUMN policy_revision BIGINT NOT NULL DEFAULT 0;

-- A numbered version is immutable and stays.
CREATE FUNCTION policy_versions_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.version IS NOT NULL THEN
        RAISE EXCEPTION 'policy versions are immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER policy_versions_immutable BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION policy_versions_immutable();

-- The tamper-evident audit log (RFC 9162 Merkle tree over audit_events).
--
-- Every audit event gets a dense leaf index when its transaction commits (a counter row taken
-- as the transaction's last write, so indexes are handed out in commit order). A sequencer
-- folds committed leaves into the tree: audit_tree_nodes holds the hash of every complete
-- subtree, level 0 being the leaf hashes, and audit_checkpoints the signed tree heads. Event
-- bodies may expire (retention); the tree keeps only commitments, and every purge is recorded.

ALTER TABLE audit_events ADD COLUMN leaf_index BIGINT;

-- Existing events become the first leaves, in the order they were stored. The append-only
-- trigger is lifted for this one backfill and restored below.
DROP TRIGGER audit_events_no_update ON audit_events;
UPDATE audit_events SET leaf_index = ranked.i
    FROM (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) - 1 AS i FROM audit_events) AS ranked
    WHERE audit_events.seq = ranked.seq;
ALTER TABLE audit_events ALTER COLUMN leaf_index SET NOT NULL;
CREATE UNIQUE INDEX audit_events_leaf_index ON audit_events (leaf_index);
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TABLE audit_leaf_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_leaf BIGINT NOT NULL
);
INSERT INTO audit_leaf_counter (id, next_leaf) SELECT 1, COUNT(*) FROM audit_events;

CREATE TABLE audit_tree_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL,
    legal_hold BIGINT NOT NULL,
    legal_hold_changed_at BIGINT
);
INSERT INTO audit_tree_state (id, tree_size, legal_hold) VALUES (1, 0, 0);

CREATE TABLE audit_tree_nodes (
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY NOT NULL,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

-- Leaves [first_leaf, end_leaf) whose bodies were purged after the retention period. Events of
-- action audit.purge (the evidence for these rows) and audit.legal-hold are never purged.
CREATE TABLE audit_purges (
    first_leaf BIGINT PRIMARY KEY NOT NULL,
    end_leaf BIGINT NOT NULL,
    cutoff BIGINT NOT NULL,
    purged_at BIGINT NOT NULL
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Deleting a body is allowed only inside a recorded purge, and never for a purge or legal-hold
-- event.
CREATE FUNCTION audit_events_purge_only() RETURNS trigger AS $$
BEGIN
    IF OLD.action IN ('audit.purge', 'audit.legal-hold') OR NOT EXISTS (
        SELECT 1 FROM audit_purges
        WHERE OLD.leaf_index >= first_leaf AND OLD.leaf_index < end_leaf) THEN
        RAISE EXCEPTION 'audit_events is append-only outside a recorded purge';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_purge_only BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_purge_only();

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_tree_nodes_append_only BEFORE UPDATE OR DELETE ON audit_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_tree_nodes_no_truncate BEFORE TRUNCATE ON audit_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE ON audit_purges
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Audit events a database writer cannot forge (issue 18). Every event Command stores from now
-- on carries `mac`: HMAC-SHA-256, under the deployment's audit event key, of its leaf index and
-- canonical encoding (hex). The key is a file beside the audit log's signing key and never in
-- the database, so a row inserted here directly has no valid tag. The sequencer folds in only
-- leaves whose tag verifies and stops before the first that does not, so such a row is never
-- signed into a checkpoint; `enigm audit verify` reports it.
--
-- Events stored before this migration have no tag. Leaves below `mac_required_from` (every leaf
-- handed out so far) are taken as they are: those already in the tree are covered by signed
-- checkpoints, and the few not yet folded in were written by the same Command before the
-- upgrade, when a database writer could append as well.

ALTER TABLE audit_events ADD COLUMN mac TEXT;
ALTER TABLE audit_tree_state ADD COLUMN mac_required_from BIGINT NOT NULL DEFAULT 0;
UPDATE audit_tree_state
    SET mac_required_from = (SELECT next_leaf FROM audit_leaf_counter WHERE id = 1)
    WHERE id = 1;

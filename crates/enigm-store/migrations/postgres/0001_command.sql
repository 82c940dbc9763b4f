-- Enigm Command: administrators, sessions, approvals, audit events (PostgreSQL).
-- Times are Unix milliseconds (BIGINT); ids are canonical hyphenated UUID text.

CREATE TABLE admins (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    pin_hash TEXT,
    pin_failures BIGINT NOT NULL DEFAULT 0,
    totp_sealed BYTEA,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    totp_last_step BIGINT,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE admin_roles (
    admin_id TEXT NOT NULL REFERENCES admins(id),
    role TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    approval_id TEXT,
    PRIMARY KEY (admin_id, role)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    admin_id TEXT NOT NULL REFERENCES admins(id),
    token_digest TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX sessions_admin ON sessions (admin_id);

CREATE TABLE approval_rules (
    kind TEXT PRIMARY KEY NOT NULL,
    required_approvals BIGINT NOT NULL,
    approver_roles TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    approval_id TEXT
);

CREATE TABLE approval_requests (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    requester_id TEXT NOT NULL REFERENCES admins(id),
    justification TEXT NOT NULL,
    required_approvals BIGINT NOT NULL,
    approver_roles TEXT NOT NULL,
    approval_count BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX approval_requests_state ON approval_requests (state);

CREATE TABLE approval_decisions (
    approval_id TEXT NOT NULL REFERENCES approval_requests(id),
    approver_id TEXT NOT NULL REFERENCES admins(id),
    decision TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver_id)
);

CREATE TABLE audit_events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_category TEXT NOT NULL,
    target_ref TEXT,
    outcome TEXT NOT NULL,
    change_ref TEXT,
    reason TEXT,
    canonical TEXT NOT NULL
);

-- The audit table is append-only: history cannot be edited or removed through SQL.
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- One-way facts about the deployment, e.g. that a second approver has existed (which closes
-- the bootstrap window for self-approval for good).
CREATE TABLE command_flags (
    name TEXT PRIMARY KEY NOT NULL,
    set_at BIGINT NOT NULL
);

-- Enigm Proxy credentials (issue 16, item 3). Command issues a trusted, freshly attested device a
-- short-lived credential signed with its proxy-credential key; the row remembers which device it
-- went to and until when, so that Command can list the ids of live credentials whose device no
-- longer qualifies (revoked, restricted, INACTIVE, told to retire or wipe), the revocation list
-- proxies poll. The credential itself, the device key and any destination are never stored.
-- A device's expired rows are deleted when it is issued its next credential.

CREATE TABLE proxy_credentials (
    id TEXT PRIMARY KEY NOT NULL,
    handle TEXT NOT NULL REFERENCES devices(handle),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX proxy_credentials_handle ON proxy_credentials (handle, expires_at);
CREATE INDEX proxy_credentials_expires ON proxy_credentials (expires_at);

-- One deployment has one set of keys. The first `enigm up` on a database records a fingerprint
-- of each of its keys (never the key: SHA-256 of a public key, a keyed hash of a secret one);
-- every later process compares its own and refuses to start on a difference, so a replica
-- with keys of its own cannot sign, seal or derive handles beside the deployment's.
CREATE TABLE deployment_keys (
    role TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    bound_at BIGINT NOT NULL
);

-- VPN control plane (issue 16, item 4). vpn_gateways: each gateway's location, endpoint,
-- WireGuard public key, tunnel address pool and capacity, with the aggregate figures Command
-- assigns by: how many sessions it holds (`assigned`, changed only together with an
-- assignment, in the same transaction), whether it is healthy, and the load it reports.
-- vpn_assignments: each device's newest location switch (`sequence`, monotonic per device: an
-- older request never overwrites a newer one), the gateway and address slot it holds (none
-- when it left the VPN) and the WireGuard public key it generated (never a private key).
-- No traffic, destination or per-peer activity is stored.

CREATE TABLE vpn_gateways (
    id TEXT PRIMARY KEY NOT NULL,
    location TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    tunnel_network TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    assigned BIGINT NOT NULL DEFAULT 0,
    healthy BIGINT NOT NULL DEFAULT 1,
    load_percent BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (assigned >= 0 AND capacity >= 0)
);

CREATE INDEX vpn_gateways_location ON vpn_gateways (location);

CREATE TABLE vpn_assignments (
    handle TEXT PRIMARY KEY NOT NULL,
    sequence BIGINT NOT NULL,
    gateway TEXT NULL REFERENCES vpn_gateways (id),
    slot BIGINT NULL,
    public_key TEXT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (gateway, slot)
);

-- Check-ins are stored in batches, one transaction for many devices. Expired nonces are
-- forgotten once per batch for all devices at once, through an index on their expiry.
CREATE INDEX device_nonces_expires_at ON device_nonces (expires_at);

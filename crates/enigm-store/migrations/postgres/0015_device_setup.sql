-- The setup baseline (enigm-docs §20 C.27): the required setup steps a device has not reported
-- complete, as a JSON array of step names. A device is "ready" only when it is empty. Rows from
-- before this migration start with every step missing (fail closed) until their next check-in
-- reports their setup.
ALTER TABLE devices ADD COLUMN setup_missing TEXT NOT NULL DEFAULT '["strong-pin","terms","network-readiness"]';

-- Signal provenance: the claims of a device's last accepted attestation are kept apart from its
-- last outcome (which may be a later rejection), because Command derives attested signals from
-- them at every check-in. Rows accepted before this migration take their last outcome's claims.

ALTER TABLE device_attestations ADD COLUMN accepted_format TEXT;
ALTER TABLE device_attestations ADD COLUMN accepted_claims TEXT;

UPDATE device_attestations SET accepted_format = format, accepted_claims = claims
WHERE verdict = 'accepted';

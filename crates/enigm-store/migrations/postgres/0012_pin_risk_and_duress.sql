-- Critical-operation PIN, spec §20 A.6 and A.7 (issue 15, item 5).
-- risk_raised_at: when the account's risk state was raised (the fifth consecutive wrong PIN, or
-- the duress PIN); NULL while the account is not at risk. Owners see it; only a later correct
-- PIN clears it.
-- duress_pin_hash: the optional duress PIN's verifier (argon2id PHC string, like pin_hash).
ALTER TABLE admins ADD COLUMN risk_raised_at BIGINT NULL;
ALTER TABLE admins ADD COLUMN duress_pin_hash TEXT NULL;

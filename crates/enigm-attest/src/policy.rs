//! Attestation policy (being written).

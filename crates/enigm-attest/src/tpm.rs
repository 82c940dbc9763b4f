//! TPM 2.0 quotes (being written).

//! Android Key Attestation: the certificate chain a KeyMint / Keymaster implementation returns for
//! a key, and the KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17) its leaf carries.

pub mod chain;
pub mod der;
mod encode;
pub mod key_description;
pub mod revocation;

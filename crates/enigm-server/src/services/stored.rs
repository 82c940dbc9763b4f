//! Reading back the JSON documents the store keeps (policies, pairings, claims): a document
//! that does not decode is a corrupt store, answered as an internal error.

use enigm_store::StoreError;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|error| ApiError::internal(&error))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &'static str) -> ApiResult<T> {
    serde_json::from_str(text).map_err(|_| ApiError::internal(&StoreError::Corrupt(what)))
}

//! Request extractors whose rejections use the API's error format, so that malformed JSON,
//! unknown fields, wrong types, oversized bodies and bad ids all answer `{code, message}`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Request types deny unknown fields.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        if holds_nul(&value) {
            return Err(nul_refused_in_body());
        }
        whole_numbers_as_integers(&mut value);
        serde_json::from_value(value).map(ApiJson).map_err(|error| {
            // serde's message names the offending field and expected type, not other content.
            let detail: String = error.to_string().chars().take(300).collect();
            ApiError::unprocessable("invalid_body", format!("invalid request body: {detail}"))
        })
    }
}

/// JSON has one number type: `2.0` is the same integer as `2` (JSON Schema says so, and the
/// OpenAPI document's `integer` fields admit it), but serde refuses a float for an integer
/// field. Whole numbers written with a fraction become integers before the typed decoding.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
            {
                // Only where the float spells the integer exactly (|x| <= 2^53).
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if (-EXACT..=EXACT).contains(&float) {
                    #[allow(clippy::cast_possible_truncation, reason = "whole and within 2^53")]
                    let integer = float as i64;
                    *number = serde_json::Number::from(integer);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// No text Command takes in carries U+0000: PostgreSQL cannot store it in a text column (the
/// query would fail as a 500 on one backend and not the other), no name, id or secret needs it,
/// and C-string consumers further on would cut at it. It is refused at the door, the same on
/// both backends.
pub(crate) fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// `%00` is the only way U+0000 reaches a path or query (a raw NUL byte never parses as HTTP).
fn uri_part_holds_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|window| window == b"%00")
}

/// In a path or query: a 400 like any malformed parameter.
fn nul_refused(part: &str) -> ApiError {
    ApiError::bad_request("nul_character", nul_message(part))
}

/// In a body: a 422 like any other well-formed JSON whose content is refused (a free-form
/// object such as a policy is valid JSON to its schema whatever its strings hold).
fn nul_refused_in_body() -> ApiError {
    ApiError::unprocessable("nul_character", nul_message("body"))
}

fn nul_message(part: &str) -> String {
    format!("the request {part} contains a NUL character (U+0000), which no field accepts")
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with `content-type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("malformed_json", "the body is not valid JSON")
        }
        JsonRejection::JsonDataError(error) => {
            // serde's message names the offending field and expected type, not other content.
            ApiError::unprocessable(
                "invalid_body",
                format!("invalid request body: {}", error.body_text_detail()),
            )
        }
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        _ => ApiError::bad_request("unreadable_body", "the request body could not be read"),
    }
}

trait BodyTextDetail {
    fn body_text_detail(&self) -> String;
}

impl BodyTextDetail for axum::extract::rejection::JsonDataError {
    fn body_text_detail(&self) -> String {
        // `body_text` reads "Failed to deserialize the JSON body into the target type: <serde>".
        let text = self.body_text();
        let detail = text
            .split_once(": ")
            .map_or(text.as_str(), |(_, detail)| detail);
        detail.chars().take(300).collect()
    }
}

/// The raw body of a signed device request, which must be verified byte for byte before it is
/// decoded; an oversized body is a 413 like everywhere else.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                ))
            }
            Err(_) => Err(ApiError::bad_request(
                "unreadable_body",
                "the request body could not be read",
            )),
        }
    }
}

/// Path parameters; an id that does not parse is a 400, not a 404.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if uri_part_holds_nul(parts.uri.path()) {
            return Err(nul_refused("path"));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::bad_request(
                "invalid_path_parameter",
                "a path parameter is not a valid id or name",
            )),
            Err(_) => Err(ApiError::bad_request(
                "invalid_path_parameter",
                "missing path parameter",
            )),
        }
    }
}

/// Query parameters; unknown parameters and bad values are a 400.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(uri_part_holds_nul) {
            return Err(nul_refused("query"));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => {
                let detail: String = error.body_text().chars().take(300).collect();
                Err(ApiError::bad_request("invalid_query", detail))
            }
            Err(_) => Err(ApiError::bad_request(
                "invalid_query",
                "the query string could not be read",
            )),
        }
    }
}

/// The peer address, when the server was started with connection info (not in in-process tests).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

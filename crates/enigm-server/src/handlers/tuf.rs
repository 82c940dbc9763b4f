//! The TUF repository over HTTP, public like any TUF mirror: the metadata is signed and the
//! artifacts are checked against it by the client, so no session is needed to read them.
//!
//! - `/tuf/metadata/N.root.json`, `N.targets.json`, `N.snapshot.json`, `N.policy-bundles.json`
//!   (the delegated role of the policy bundles, which Command signs; consistent snapshots:
//!   a versioned file never changes, so it is cached as immutable) and `timestamp.json` (changes
//!   on every publish and refresh: revalidated each time, `no-cache`). Every response has a
//!   strong `ETag` (its SHA-256) and answers `If-None-Match` with 304.
//! - `/tuf/targets/DIR/SHA256.NAME`: published artifacts by the hash-prefixed name TUF clients
//!   ask for with consistent snapshots, with `Range` (resumable downloads; tower-http's
//!   `ServeFile`), `ETag` and immutable caching. Unpublished artifacts are not served. Policy
//!   bundles (`policy-bundles/GROUP/SHA256.N.json`) come from the database, whole.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use enigm_store::MetadataRole;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// One metadata file of the repository.
#[utoipa::path(get, path = enigm_api::paths::TUF_METADATA, tag = "tuf",
    params(("file" = String, Path, description = "`N.root.json`, `N.targets.json`, `N.snapshot.json`, `N.policy-bundles.json` or `timestamp.json`")),
    responses((status = 200, description = "signed TUF metadata", content_type = "application/json"),
        (status = 304, description = "not modified"), (status = 404, body = enigm_api::ErrorBody)))]
pub async fn metadata(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (role, version) =
        parse_metadata_name(&file).ok_or_else(|| ApiError::not_found("metadata"))?;
    let store = state.store();
    let stored = match version {
        Some(version) => store.ota_metadata(role, version).await?,
        None => store.latest_ota_metadata(role).await?,
    }
    .ok_or_else(|| ApiError::not_found("metadata"))?;
    let etag = format!("\"{}\"", hex::encode(enigm_crypto::sha256(&stored.body)));
    let cache = if version.is_some() {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut response = if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Body::from(stored.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    set_cache_headers(response.headers_mut(), &etag, cache);
    Ok(response)
}

/// `N.role.json` for any role, `timestamp.json`, and `root.json` (the newest root, for
/// bootstrapping tools; clients walk the numbered ones).
fn parse_metadata_name(file: &str) -> Option<(MetadataRole, Option<u64>)> {
    let stem = file.strip_suffix(".json")?;
    match stem.split_once('.') {
        None => {
            let role = MetadataRole::parse(stem)?;
            matches!(role, MetadataRole::Timestamp | MetadataRole::Root).then_some((role, None))
        }
        Some((version, role)) => {
            let role = MetadataRole::parse(role)?;
            // Canonical decimal only: one spelling per file, no leading zeros or signs.
            if role == MetadataRole::Timestamp
                || version.is_empty()
                || version.len() > 19
                || (version.len() > 1 && version.starts_with('0'))
                || !version.bytes().all(|byte| byte.is_ascii_digit())
            {
                return None;
            }
            // The store keeps versions as signed 64-bit numbers: a larger one cannot exist,
            // so it is not found rather than a failed database query.
            let version = version.parse::<i64>().ok()?;
            Some((role, Some(u64::try_from(version).ok()?)))
        }
    }
}

/// A published artifact, by its hash-prefixed target path.
#[utoipa::path(get, path = enigm_api::paths::TUF_TARGETS_DOCUMENTED, tag = "tuf",
    params(("path" = String, Path, description = "target path with the SHA-256 prefix on its last segment; \
        it may hold `/` (the route takes the rest of the URL path), which OpenAPI cannot express"),
        ("range" = Option<String>, Header, description = "a byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "the artifact", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 404, body = enigm_api::ErrorBody), (status = 416, description = "range not satisfiable")))]
pub async fn target(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<String>,
    request: Request,
) -> ApiResult<Response> {
    let (sha256, name) = parse_target_path(&path).ok_or_else(|| ApiError::not_found("target"))?;
    if name.starts_with(enigm_ota::policy_bundle::POLICY_BUNDLE_ROLE) {
        return policy_bundle(&state, &name, &sha256, request.headers()).await;
    }
    if !state.store().artifact_is_published(&sha256).await? {
        return Err(ApiError::not_found("target"));
    }
    let etag = format!("\"{sha256}\"");
    if if_none_match(request.headers(), &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_cache_headers(response.headers_mut(), &etag, IMMUTABLE);
        return Ok(response);
    }
    let file = state.ota().artifact_path(&sha256);
    // Artifacts are stored under their bare digest: no extension, so the type is always
    // application/octet-stream.
    let served = ServeFile::new(file)
        .oneshot(request)
        .await
        .map_err(|error| ApiError::internal(&error))?;
    if served.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found("target"));
    }
    let mut response = served.map(Body::new);
    set_cache_headers(response.headers_mut(), &etag, IMMUTABLE);
    Ok(response)
}

/// A policy bundle Command compiled: kept in the database, small, served whole.
async fn policy_bundle(
    state: &AppState,
    name: &str,
    sha256: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let bundle = state
        .store()
        .policy_bundle_by_digest(name, sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("target"))?;
    let etag = format!("\"{sha256}\"");
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Body::from(bundle.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        response
    };
    set_cache_headers(response.headers_mut(), &etag, IMMUTABLE);
    Ok(response)
}

/// `dir/…/SHA256.NAME` → (the digest, `dir/…/NAME`).
fn parse_target_path(path: &str) -> Option<(String, String)> {
    let (directory, last) = match path.rsplit_once('/') {
        Some((directory, last)) => (Some(directory), last),
        None => (None, path),
    };
    let (digest, name) = last.split_once('.')?;
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        || name.is_empty()
    {
        return None;
    }
    let name = match directory {
        Some(directory) => format!("{directory}/{name}"),
        None => name.to_owned(),
    };
    Some((digest.to_owned(), name))
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate == etag
        })
}

fn set_cache_headers(headers: &mut HeaderMap, etag: &str, cache: &'static str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_have_one_spelling() {
        assert_eq!(
            parse_metadata_name("3.root.json"),
            Some((MetadataRole::Root, Some(3)))
        );
        assert_eq!(
            parse_metadata_name("timestamp.json"),
            Some((MetadataRole::Timestamp, None))
        );
        assert_eq!(
            parse_metadata_name("12.targets.json"),
            Some((MetadataRole::Targets, Some(12)))
        );
        for bad in [
            "03.root.json",
            "-1.root.json",
            "1.timestamp.json",
            "snapshot.json",
            "targets.json",
            "1.root",
            "1.other.json",
            "99999999999999999999.root.json",
            "../1.root.json",
        ] {
            assert_eq!(parse_metadata_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn target_paths_carry_their_digest() {
        let digest = "ab".repeat(32);
        assert_eq!(
            parse_target_path(&format!("os/{digest}.image.img")),
            Some((digest.clone(), "os/image.img".to_owned()))
        );
        assert_eq!(
            parse_target_path(&format!("{digest}.a")),
            Some((digest.clone(), "a".to_owned()))
        );
        assert_eq!(parse_target_path("os/image.img"), None);
        assert_eq!(parse_target_path(&format!("{}.a", "AB".repeat(32))), None);
        assert_eq!(parse_target_path(&format!("{digest}.")), None);
    }
}

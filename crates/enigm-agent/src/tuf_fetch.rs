//! Reading a TUF repository's answer within the bound the client's refresh machine sets:
//! shared by the agent and `enigm-tuf-conformance`, so that both treat a repository alike.

use enigm_ota::client::FetchFailure;

/// The body of `response` when it is a success no longer than `max_length` bytes; 403 and 404
/// are "not found" (the end of a root chain), anything else "unavailable".
pub async fn read_bounded(
    mut response: reqwest::Response,
    max_length: u64,
) -> Result<Vec<u8>, FetchFailure> {
    match response.status().as_u16() {
        200 => {}
        403 | 404 => return Err(FetchFailure::NotFound),
        _ => return Err(FetchFailure::Unavailable),
    }
    if response
        .content_length()
        .is_some_and(|length| length > max_length)
    {
        return Err(FetchFailure::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| FetchFailure::Unavailable)?
    {
        if (bytes.len() + chunk.len()) as u64 > max_length {
            return Err(FetchFailure::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

//! Downloads that break off and resume, against a loopback HTTP server whose answers each test
//! scripts (cut a body short, honour or ignore `Range`), so every branch of [`download`] runs
//! over a real connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failure"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use enigm_crypto::Ed25519SigningKey;
use enigm_ota::client::target_of;
use enigm_ota::metadata::{RoleKeys, Targets, verify_role};
use enigm_ota::repository::{build_targets, sign_metadata, target_file};
use enigm_ota::{MetadataSigner as _, SoftwareSigner};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// An artifact of a little over 3 MiB, so that it spans several replay pieces and chunks.
fn artifact() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 4321)
        .map(|index: u32| (index.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// `bytes` as a verified target, through real signed targets metadata.
fn verified_target(bytes: &[u8]) -> VerifiedTarget {
    let key = SoftwareSigner::Ed25519(Ed25519SigningKey::from_seed(&[3; 32]));
    let name = "os/enigm-os.img";
    let sha256 = hex::encode(enigm_crypto::sha256(bytes));
    let targets = build_targets(
        BTreeMap::from([(
            name.to_owned(),
            target_file(bytes.len() as u64, &sha256, None),
        )]),
        1,
        Timestamp::from_unix_millis(4_000_000_000_000),
    );
    let signed = sign_metadata(&targets, &[&key]).unwrap();
    let public = key.key();
    let role = RoleKeys {
        keyids: vec![public.key_id()],
        threshold: 1,
        unrecognized: serde_json::Map::new(),
    };
    let verified =
        verify_role::<Targets>(&signed, &BTreeMap::from([(public.key_id(), public)]), &role)
            .unwrap();
    target_of(&verified, name).unwrap()
}

/// What the server does with one request, given its `Range` header.
type Answer = Box<dyn Fn(Option<&str>) -> Vec<u8> + Send + Sync>;

/// A loopback server answering the n-th request with `answers[n]` (then closing the
/// connection); it records each request's `Range`.
struct Server {
    url: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

impl Server {
    async fn start(answers: Vec<Answer>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        tokio::spawn(async move {
            for answer in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    stream.read_exact(&mut byte).await.unwrap();
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let range = head
                    .lines()
                    .find_map(|line| line.strip_prefix("range: "))
                    .map(str::to_owned);
                let response = answer(range.as_deref());
                seen.lock().unwrap().push(range);
                stream.write_all(&response).await.unwrap();
                stream.shutdown().await.unwrap();
            }
        });
        Server { url, ranges }
    }

    fn client(&self) -> DeviceClient {
        DeviceClient::new(&self.url, None).unwrap()
    }

    fn ranges(&self) -> Vec<Option<String>> {
        self.ranges.lock().unwrap().clone()
    }
}

/// `200 OK` with the whole length of `bytes` announced, and `bytes[..sent]` sent.
fn ok_response(bytes: &[u8], sent: usize) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    )
    .into_bytes();
    response.extend_from_slice(&bytes[..sent]);
    response
}

/// `200 OK` announcing all of `bytes` but sending only the first `sent`: the connection breaks.
fn cut_short(bytes: &[u8], sent: usize) -> Answer {
    let bytes = bytes.to_vec();
    Box::new(move |_| ok_response(&bytes, sent))
}

/// All of `bytes`, whatever was asked.
fn whole(bytes: &[u8]) -> Answer {
    let bytes = bytes.to_vec();
    Box::new(move |_| ok_response(&bytes, bytes.len()))
}

/// `206 Partial Content` with the rest of `bytes` from the offset the request names.
fn rest(bytes: &[u8]) -> Answer {
    let bytes = bytes.to_vec();
    Box::new(move |range| {
        let offset: usize = range
            .and_then(|range| range.strip_prefix("bytes="))
            .and_then(|range| range.strip_suffix('-'))
            .expect("a resumed request names where to start")
            .parse()
            .unwrap();
        let mut response = format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {offset}-{}/{}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            bytes.len() - 1,
            bytes.len(),
            bytes.len() - offset
        )
        .into_bytes();
        response.extend_from_slice(&bytes[offset..]);
        response
    })
}

fn slots(dir: &Path) -> SlotStore {
    open_slots(dir).unwrap()
}

#[tokio::test]
async fn a_download_that_broke_off_resumes_where_it_stopped() {
    let bytes = artifact();
    let target = verified_target(&bytes);
    let server = Server::start(vec![cut_short(&bytes, 1_500_000), rest(&bytes)]).await;
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let mut store = slots(dir.path());
    let sha256 = target.sha256().unwrap().to_owned();

    let mut writer = store.begin_stage(&sha256).unwrap();
    let broken = download(&client, "/artifact", &target, &mut writer).await;
    assert!(
        broken.is_err(),
        "a body cut short is an error, not a verdict"
    );
    drop(writer);
    drop(store);

    // The agent's next attempt, after a restart.
    let mut store = slots(dir.path());
    let mut writer = store.begin_stage(&sha256).unwrap();
    assert_eq!(writer.len().unwrap(), 1_500_000);
    let verified = download(&client, "/artifact", &target, &mut writer)
        .await
        .unwrap()
        .expect("the resumed download verifies");
    assert_eq!(verified.target(), &target);
    assert_eq!(
        server.ranges(),
        [None, Some("bytes=1500000-".to_owned())],
        "only the missing part is asked for"
    );
    let image = SlotImage {
        target_name: target.name().to_owned(),
        kind: "os-image".to_owned(),
        release_version: "2".to_owned(),
        rollback_index: 2,
        sha256,
        length: target.length(),
    };
    store.finish_stage(writer, image).unwrap();
    let staged = store.state().inactive();
    assert_eq!(std::fs::read(store.slot_path(staged)).unwrap(), bytes);
}

#[tokio::test]
async fn a_resumed_download_that_does_not_verify_is_fetched_again_from_the_start() {
    let bytes = artifact();
    let target = verified_target(&bytes);
    // What a power cut left: the first part's length, not its content.
    let server = Server::start(vec![rest(&bytes), whole(&bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = slots(dir.path());
    let mut writer = store.begin_stage(target.sha256().unwrap()).unwrap();
    writer.write(&vec![0u8; 700_000]).unwrap();

    let verified = download(&server.client(), "/artifact", &target, &mut writer)
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(server.ranges(), [Some("bytes=700000-".to_owned()), None]);
    assert_eq!(writer.len().unwrap(), bytes.len() as u64);
}

#[tokio::test]
async fn a_server_that_ignores_the_range_sends_it_all_and_that_counts() {
    let bytes = artifact();
    let target = verified_target(&bytes);
    let server = Server::start(vec![whole(&bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = slots(dir.path());
    let mut writer = store.begin_stage(target.sha256().unwrap()).unwrap();
    writer.write(&bytes[..123_456]).unwrap();

    let verified = download(&server.client(), "/artifact", &target, &mut writer)
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(server.ranges(), [Some("bytes=123456-".to_owned())]);
    assert_eq!(writer.len().unwrap(), bytes.len() as u64);
}

#[tokio::test]
async fn a_complete_download_left_behind_needs_no_request() {
    let bytes = artifact();
    let target = verified_target(&bytes);
    let server = Server::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = slots(dir.path());
    let mut writer = store.begin_stage(target.sha256().unwrap()).unwrap();
    writer.write(&bytes).unwrap();
    let verified = download(&server.client(), "/artifact", &target, &mut writer)
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert!(server.ranges().is_empty());
}

#[tokio::test]
async fn a_tampered_artifact_is_refused_once_and_a_wrong_range_is_not_trusted() {
    let bytes = artifact();
    let target = verified_target(&bytes);
    let mut tampered = bytes.clone();
    tampered[2_000_000] ^= 1;

    // A fresh download: refused, with no second try.
    let server = Server::start(vec![whole(&tampered)]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = slots(dir.path());
    let mut writer = store.begin_stage(target.sha256().unwrap()).unwrap();
    let verdict = download(&server.client(), "/artifact", &target, &mut writer)
        .await
        .unwrap();
    assert_eq!(verdict, Err(ReasonCategory::UpdateArtifactMismatch));
    assert_eq!(server.ranges(), [None]);
    // As `update` does with a refused artifact: nothing of it is kept to resume from.
    writer.discard();

    // A resumed one whose answer covers other bytes than asked: started again, then refused
    // for what the server sends.
    let wrong_range: Answer = Box::new(|_| {
        b"HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-9/10\r\ncontent-length: 10\r\n\
          connection: close\r\n\r\n0123456789"
            .to_vec()
    });
    let server = Server::start(vec![wrong_range, whole(&tampered)]).await;
    let mut writer = store.begin_stage(target.sha256().unwrap()).unwrap();
    writer.write(&bytes[..10]).unwrap();
    let verdict = download(&server.client(), "/artifact", &target, &mut writer)
        .await
        .unwrap();
    assert_eq!(verdict, Err(ReasonCategory::UpdateArtifactMismatch));
    assert_eq!(server.ranges(), [Some("bytes=10-".to_owned()), None]);
}

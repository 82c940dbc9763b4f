//! The device's encrypted-DNS stub as a real process (`enigm agent-dns`) against a real DNS-over-
//! TLS upstream on loopback (issue 16, item 2): allowed names are answered by the upstream over
//! TLS; names the network policy blocks are refused without asking it; garbage is answered
//! FORMERR and changes nothing; an upstream that is down, or whose certificate names another
//! server, gives SERVFAIL; no policy refuses every name; a stopped stub answers nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable as _, BinEncodable as _};
use tokio::net::UdpSocket;

use support::ENIGM;

use support::dot::ANSWER;

/// `enigm agent-dns` on a free loopback port; its address.
struct Stub {
    child: Child,
    address: SocketAddr,
}

impl Stub {
    fn start(args: &[&str]) -> Stub {
        let mut child = Command::new(ENIGM)
            .arg("agent-dns")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .strip_prefix("dns: answering on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("{line}"))
            .parse()
            .unwrap();
        Stub { child, address }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `datagram` to the stub; its answer, or `None` after a second of silence.
async fn exchange(stub: SocketAddr, datagram: &[u8]) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(datagram, stub).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer))
        .await
        .ok()?
        .unwrap();
    Some(Message::from_bytes(&buffer[..read]).unwrap())
}

async fn ask(stub: SocketAddr, name: &str) -> Option<Message> {
    let mut query = Message::new();
    query
        .set_id(4242)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    exchange(stub, &query.to_bytes().unwrap()).await
}

fn addresses(answer: &Message) -> Vec<std::net::IpAddr> {
    answer
        .answers()
        .iter()
        .filter_map(|record| match record.data() {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stub_refuses_blocked_names_and_asks_the_rest_over_tls_only() {
    let certified = rcgen::generate_simple_self_signed(vec!["dns.test".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "version": 1,
            "blocklists": {"threats": {"domains": ["evil.example"]}},
            "layers": [{"id": "threats", "rules": [
                {"id": "block-threats", "match": {"blocklist": "threats"},
                 "action": {"block": {"reason": "malware"}}}
            ]}]
        })
        .to_string(),
    )
    .unwrap();
    let (upstream_address, asked, upstream_task) =
        support::dot::upstream("127.0.0.1:0", &certified).await;
    let upstream_arg = upstream_address.to_string();
    let common = [
        "--upstream",
        upstream_arg.as_str(),
        "--upstream-ca",
        ca.to_str().unwrap(),
    ];
    let mut args = vec![
        "--policy",
        policy.to_str().unwrap(),
        "--upstream-name",
        "dns.test",
    ];
    args.extend_from_slice(&common);
    let stub = Stub::start(&args);

    let allowed = ask(stub.address, "news.example.org.").await.unwrap();
    assert_eq!(allowed.response_code(), ResponseCode::NoError);
    assert_eq!(allowed.id(), 4242);
    assert_eq!(addresses(&allowed), vec![std::net::IpAddr::V4(ANSWER)]);
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let blocked = ask(stub.address, "cdn.evil.example.").await.unwrap();
    assert_eq!(blocked.response_code(), ResponseCode::Refused);
    assert!(blocked.answers().is_empty());
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "a blocked name is never asked upstream"
    );

    // Garbage: FORMERR with its id (or silence when too short), and the stub goes on.
    let garbage = exchange(stub.address, &[0x12, 0x34, 0xff, 0xff, 0x01])
        .await
        .unwrap();
    assert_eq!(garbage.response_code(), ResponseCode::FormErr);
    assert_eq!(garbage.id(), 0x1234);
    assert!(exchange(stub.address, &[0x01]).await.is_none());
    assert_eq!(
        ask(stub.address, "news.example.org.")
            .await
            .unwrap()
            .response_code(),
        ResponseCode::NoError
    );

    // An upstream whose certificate names another server is not asked.
    let mut wrong = vec![
        "--policy",
        policy.to_str().unwrap(),
        "--upstream-name",
        "other.test",
    ];
    wrong.extend_from_slice(&common);
    let impostor = Stub::start(&wrong);
    assert_eq!(
        ask(impostor.address, "news.example.org.")
            .await
            .unwrap()
            .response_code(),
        ResponseCode::ServFail
    );

    // No policy (an empty state directory): every name is refused.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut closed = vec![
        "--state-dir",
        state.to_str().unwrap(),
        "--upstream-name",
        "dns.test",
    ];
    closed.extend_from_slice(&common);
    let closed = Stub::start(&closed);
    assert_eq!(
        ask(closed.address, "news.example.org.")
            .await
            .unwrap()
            .response_code(),
        ResponseCode::Refused
    );

    // The upstream goes down: SERVFAIL, never an answer from elsewhere.
    upstream_task.abort();
    let _ = upstream_task.await;
    assert_eq!(
        ask(stub.address, "news.example.org.")
            .await
            .unwrap()
            .response_code(),
        ResponseCode::ServFail
    );
    // The stub stopped: nothing answers (and the firewall lets no plain DNS out instead).
    let address = stub.address;
    drop(stub);
    assert!(ask(address, "news.example.org.").await.is_none());
}

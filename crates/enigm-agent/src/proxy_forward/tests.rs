//! The head parser and the refusal table, then the forwarder over loopback sockets against a
//! stand-in proxy that records what reaches it (the real proxy is in
//! `tests/proxy_forward_end_to_end.rs`).

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enigm_api::proxy::ProxyCredentialView;
use enigm_proxyauth::{Credential, CredentialClaims, CredentialId};
use enigm_types::{DeviceHandle, ManualClock};
use proptest::prelude::*;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_795_305_600_000);
const DEADLINE: Duration = Duration::from_secs(10);

fn check(head: &str, expect: Result<&str, HeadRefusal>) {
    let parsed = parse_connect_head(head.as_bytes());
    assert_eq!(
        parsed.as_ref().map(TargetAuthority::as_str),
        expect.as_ref().map(|target| *target),
        "{head:?}"
    );
}

#[test]
fn only_a_well_formed_connect_to_an_authority_yields_a_target() {
    check(
        "CONNECT Service.Example:443 HTTP/1.1\r\nHost: service.example:443\r\n\r\n",
        Ok("service.example:443"),
    );
    check(
        "CONNECT 127.0.0.1:8080 HTTP/1.0\r\n\r\n",
        Ok("127.0.0.1:8080"),
    );
    check("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", Ok("[::1]:443"));
    // The app's own proxy credentials are read past (and never forwarded).
    check(
        "CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwdw==\r\n\r\n",
        Ok("a.example:443"),
    );

    for method in ["GET", "POST", "PUT", "HEAD", "OPTIONS", "TRACE", "PATCH"] {
        check(
            &format!("{method} http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            Err(HeadRefusal::NotConnect),
        );
        check(
            &format!("{method} a.example:443 HTTP/1.1\r\n\r\n"),
            Err(HeadRefusal::NotConnect),
        );
    }
    check(
        "CONNECTX a:1 HTTP/1.1\r\n\r\n",
        Err(HeadRefusal::NotConnect),
    );

    for target in [
        "a.example",
        "a.example:0",
        "a.example:65536",
        "a.example:443/path",
        "user@a.example:443",
        "http://a.example:443",
        "/",
        "[::1:443",
        "a..example:443",
    ] {
        check(
            &format!("CONNECT {target} HTTP/1.1\r\n\r\n"),
            Err(HeadRefusal::BadTarget),
        );
    }

    for head in [
        "",
        "\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\n",
        "connect a:1 HTTP/1.1\r\n\r\n",
        "CONNECT a:1 HTTP/2\r\n\r\n",
        "CONNECT  a:1 HTTP/1.1\r\n\r\n",
        "CONNECT a:1 HTTP/1.1 x\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\n\n",
        "CONNECT a:1 HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\nNoColon\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\nBad Name: 1\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\nX: \u{e9}\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\nX: 1\nY: 2\r\n\r\n",
        // A malformed GET is malformed first: either way nothing goes out.
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    ] {
        check(head, Err(HeadRefusal::Malformed));
    }
    check(
        "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}\r\n\r\n",
        Err(HeadRefusal::Malformed),
    );
    let fields: String = (0..MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
    check(&format!("CONNECT a:1 HTTP/1.1\r\n{fields}\r\n"), Ok("a:1"));
    let fields: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
    check(
        &format!("CONNECT a:1 HTTP/1.1\r\n{fields}\r\n"),
        Err(HeadRefusal::Malformed),
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_only_a_connect_yields_a_target(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        terminated in any::<bool>(),
    ) {
        let mut head = bytes;
        if terminated {
            head.extend_from_slice(b"\r\n\r\n");
        }
        if let Ok(target) = parse_connect_head(&head) {
            let text = std::str::from_utf8(&head).unwrap();
            let request_line = text.split("\r\n").next().unwrap();
            prop_assert!(request_line.starts_with("CONNECT "), "{:?}", request_line);
            prop_assert_eq!(TargetAuthority::parse(target.as_str()), Ok(target.clone()));
        }
    }

    #[test]
    fn no_other_method_yields_a_target(
        method in "[A-Z]{1,10}",
        target in "[a-z0-9.:\\[\\]/@-]{0,40}",
        fields in proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..5),
    ) {
        let fields: String = fields.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let head = format!("{method} {target} HTTP/1.1\r\n{fields}\r\n");
        let parsed = parse_connect_head(head.as_bytes());
        if method != "CONNECT" {
            prop_assert!(parsed.is_err(), "{:?}", head);
        } else if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed, TargetAuthority::parse(&target).unwrap());
        }
    }
}

#[test]
fn every_failure_has_its_answer() {
    fn answer(refusal: ForwardRefusal) -> (u16, String) {
        (refusal.status(), refusal.category().to_owned())
    }
    fn refused(status: u16, category: &str) -> TunnelError {
        TunnelError::Refused {
            status,
            category: category.to_owned(),
        }
    }
    let cases = [
        (HeadRefusal::Malformed.into(), (400, "malformed-head")),
        (HeadRefusal::NotConnect.into(), (405, "not-connect")),
        (HeadRefusal::BadTarget.into(), (400, "bad-target")),
        (
            ProxyUnavailable::NoCredential.into(),
            (503, "no-credential"),
        ),
        (
            ProxyUnavailable::Expired.into(),
            (503, "credential-expired"),
        ),
        (
            (&TunnelError::Unreachable(std::io::ErrorKind::ConnectionRefused.into())).into(),
            (502, "proxy-unreachable"),
        ),
        ((&TunnelError::Timeout).into(), (504, "proxy-timeout")),
        ((&TunnelError::BadAnswer).into(), (502, "proxy-bad-answer")),
        (
            (&refused(403, "destination-refused")).into(),
            (403, "destination-refused"),
        ),
        ((&refused(407, "revoked")).into(), (502, "revoked")),
        ((&refused(407, "replayed")).into(), (502, "replayed")),
        (
            (&refused(502, "unresolvable")).into(),
            (502, "unresolvable"),
        ),
        (
            (&refused(504, "connect-timeout")).into(),
            (504, "connect-timeout"),
        ),
        ((&refused(503, "busy")).into(), (502, "busy")),
        ((&refused(500, "")).into(), (502, "proxy-refused")),
        ((&refused(407, "a b\r\nX: y")).into(), (502, "abXy")),
        (ForwardRefusal::busy(), (503, "busy")),
        (ForwardRefusal::head_timeout(), (408, "head-timeout")),
        (ForwardRefusal::head_too_large(), (431, "head-too-large")),
    ];
    for (refusal, (status, category)) in cases {
        assert_eq!(answer(refusal), (status, category.to_owned()));
    }
    let long: ForwardRefusal = (&refused(407, &"x".repeat(300))).into();
    assert_eq!(long.category().len(), MAX_PROXY_CATEGORY);
    assert_eq!(
        ForwardRefusal::from(ProxyUnavailable::NoCredential).response(),
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\
         Content-Length: 13\r\n\r\nno-credential"
    );
    // The proxy's categories are counted as one, so a proxy cannot grow the counts.
    assert_eq!(
        ForwardRefusal::from(&refused(407, "revoked")).counted(),
        "proxy-refused"
    );
    assert_eq!(
        ForwardRefusal::from(ProxyUnavailable::Expired).counted(),
        "credential-expired"
    );
}

/// A stand-in proxy: records each head it receives; answers `answer`, and on a 200 echoes.
struct StandIn {
    address: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn stand_in(answer: &'static str) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let recorded = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let Ok(byte) = stream.read_u8().await else {
                        return;
                    };
                    head.push(byte);
                }
                recorded
                    .lock()
                    .unwrap()
                    .push(String::from_utf8(head).unwrap());
                stream.write_all(answer.as_bytes()).await.unwrap();
                if answer.starts_with("HTTP/1.1 200 ") {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                } else {
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    StandIn { address, heads }
}

impl StandIn {
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn device_key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed(&[2; 32])
}

/// A holder with a ten-minute credential issued at `NOW` for [`device_key`].
fn credentials_held() -> SharedCredentials {
    let command = Ed25519SigningKey::from_seed(&[1; 32]);
    let lifetime = Duration::from_secs(600);
    let credential = Credential::issue(
        &command,
        CredentialClaims {
            id: CredentialId::from_bytes([1; 16]),
            handle: DeviceHandle::from_digest(&[2; 20]),
            device_key: device_key().verifying_key().to_bytes(),
            issued_at: NOW,
            expires_at: NOW.saturating_add(lifetime),
        },
    );
    let body = serde_json::to_vec(&ProxyCredentialView {
        credential: URL_SAFE_NO_PAD.encode(credential.to_bytes()),
        id: credential.claims().id.to_hex(),
        issued_at: NOW.to_rfc3339(),
        expires_at: NOW.saturating_add(lifetime).to_rfc3339(),
    })
    .unwrap();
    let mut holder = ProxyCredentials::new();
    holder
        .handle_response(&device_key(), 200, &body, NOW)
        .unwrap();
    Arc::new(tokio::sync::Mutex::new(holder))
}

/// A forwarder on a loopback port, its clock at `NOW`.
async fn start_forwarder(
    proxy: SocketAddr,
    credentials: SharedCredentials,
) -> (Arc<Forwarder>, SocketAddr, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let forwarder = Forwarder::new(
        proxy,
        device_key(),
        credentials,
        clock.clone(),
        ForwardLimits::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(forwarder.clone().serve(listener, std::future::pending()));
    (forwarder, address, clock)
}

/// Sends `head` and reads the whole answer (the forwarder closes after a refusal).
async fn exchange(forwarder: SocketAddr, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(forwarder).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(answer).unwrap()
}

fn body(answer: &str) -> (&str, &str) {
    let status = answer.lines().next().unwrap_or_default();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_connect_is_tunnelled_through_the_proxy_with_a_fresh_proof_and_nothing_of_the_app() {
    let proxy = stand_in("HTTP/1.1 200 Connection Established\r\n\r\n").await;
    let (forwarder, address, _) = start_forwarder(proxy.address, credentials_held()).await;

    let mut app = TcpStream::connect(address).await.unwrap();
    // The head, the app's own credentials and the start of its payload in one write.
    app.write_all(
        b"CONNECT Service.Example:443 HTTP/1.1\r\nHost: service.example:443\r\n\
          Proxy-Authorization: Basic dXNlcjpwdw==\r\nX-App: secret\r\n\r\nfirst bytes",
    )
    .await
    .unwrap();
    let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let mut answer = vec![0u8; established.len()];
    app.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, established);
    let mut echoed = [0u8; 11];
    app.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"first bytes");
    app.write_all(b" and more").await.unwrap();
    let mut echoed = [0u8; 9];
    app.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b" and more");

    let heads = proxy.heads();
    assert_eq!(heads.len(), 1);
    let head = heads.first().unwrap();
    assert!(
        head.starts_with(
            "CONNECT service.example:443 HTTP/1.1\r\nHost: service.example:443\r\n\
             Proxy-Authorization: Enigm "
        ),
        "{head}"
    );
    assert!(
        !head.contains("Basic") && !head.contains("X-App") && !head.contains("secret"),
        "{head}"
    );

    // A second connection carries another proof (a fresh nonce).
    let mut again = TcpStream::connect(address).await.unwrap();
    again
        .write_all(b"CONNECT service.example:443 HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; established.len()];
    again.read_exact(&mut answer).await.unwrap();
    let heads = proxy.heads();
    assert_eq!(heads.len(), 2);
    assert_ne!(heads.first(), heads.get(1));
    assert_eq!(forwarder.counts().get("tunnel"), Some(&2));
}

#[tokio::test]
async fn without_a_live_credential_or_a_connect_nothing_goes_out() {
    let proxy = stand_in("HTTP/1.1 200 Connection Established\r\n\r\n").await;

    let empty = Arc::new(tokio::sync::Mutex::new(ProxyCredentials::new()));
    let (_, address, _) = start_forwarder(proxy.address, empty).await;
    let answer = exchange(address, b"CONNECT service.example:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 503 Service Unavailable", "no-credential")
    );

    let (forwarder, address, clock) = start_forwarder(proxy.address, credentials_held()).await;
    clock.advance(Duration::from_secs(600));
    let answer = exchange(address, b"CONNECT service.example:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 503 Service Unavailable", "credential-expired")
    );
    clock.set(NOW);

    let answer = exchange(
        address,
        b"GET http://service.example/ HTTP/1.1\r\nHost: service.example\r\n\r\n",
    )
    .await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 405 Method Not Allowed", "not-connect")
    );
    let answer = exchange(address, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 400 Bad Request", "malformed-head")
    );
    let answer = exchange(address, b"CONNECT service.example HTTP/1.1\r\n\r\n").await;
    assert_eq!(body(&answer), ("HTTP/1.1 400 Bad Request", "bad-target"));
    let oversized = format!(
        "CONNECT service.example:443 HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let answer = exchange(address, oversized.as_bytes()).await;
    assert_eq!(
        body(&answer),
        (
            "HTTP/1.1 431 Request Header Fields Too Large",
            "head-too-large"
        )
    );

    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());
    let counts = forwarder.counts();
    assert_eq!(counts.get("tunnel"), None, "{counts:?}");
    assert_eq!(counts.get("credential-expired"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("not-connect"), Some(&1), "{counts:?}");
}

#[tokio::test]
async fn the_proxys_refusals_reach_the_app_and_a_missing_proxy_is_a_bad_gateway() {
    let forbidding =
        stand_in("HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\n\r\ndestination-refused").await;
    let (_, address, _) = start_forwarder(forbidding.address, credentials_held()).await;
    let answer = exchange(address, b"CONNECT 10.0.0.1:22 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 403 Forbidden", "destination-refused")
    );

    let revoking = stand_in(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Enigm\r\n\
         Content-Length: 7\r\n\r\nrevoked",
    )
    .await;
    let (forwarder, address, _) = start_forwarder(revoking.address, credentials_held()).await;
    let answer = exchange(address, b"CONNECT service.example:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(body(&answer), ("HTTP/1.1 502 Bad Gateway", "revoked"));
    assert!(!answer.contains("Proxy-Authenticate"), "{answer}");
    assert_eq!(forwarder.counts().get("proxy-refused"), Some(&1));

    let garbled = stand_in("SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let (_, address, _) = start_forwarder(garbled.address, credentials_held()).await;
    let answer = exchange(address, b"CONNECT service.example:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 502 Bad Gateway", "proxy-bad-answer")
    );

    // A port nobody listens on (bound, then released).
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_address = gone.local_addr().unwrap();
    drop(gone);
    let (_, address, _) = start_forwarder(gone_address, credentials_held()).await;
    let answer = exchange(address, b"CONNECT service.example:443 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        body(&answer),
        ("HTTP/1.1 502 Bad Gateway", "proxy-unreachable")
    );
}

#[tokio::test]
async fn the_forwarder_refuses_to_listen_beyond_loopback() {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let forwarder = Forwarder::new(
        "127.0.0.1:9".parse().unwrap(),
        device_key(),
        credentials_held(),
        Arc::new(ManualClock::new(NOW)),
        ForwardLimits::default(),
    );
    let error = forwarder
        .serve(listener, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn connections_beyond_the_bound_are_answered_busy() {
    let proxy = stand_in("HTTP/1.1 200 Connection Established\r\n\r\n").await;
    let clock = Arc::new(ManualClock::new(NOW));
    let forwarder = Forwarder::new(
        proxy.address,
        device_key(),
        credentials_held(),
        clock,
        ForwardLimits {
            max_connections: 1,
            ..ForwardLimits::default()
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(forwarder.clone().serve(listener, std::future::pending()));

    // One app holds the only permit (its tunnel stays open)...
    let mut first = TcpStream::connect(address).await.unwrap();
    first
        .write_all(b"CONNECT service.example:443 HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut established = [0u8; 39];
    first.read_exact(&mut established).await.unwrap();
    assert!(established.starts_with(b"HTTP/1.1 200 "));
    // ...so the next is answered before it is read (it sends nothing here: the refusal is
    // written at once, and bytes left unread would turn the close into a reset).
    let answer = exchange(address, b"").await;
    assert_eq!(body(&answer), ("HTTP/1.1 503 Service Unavailable", "busy"));
    assert_eq!(proxy.heads().len(), 1);
}

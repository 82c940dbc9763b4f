//! The agent daemon enforcing its group's network policy, for real (issue 16, item 2 and "done
//! when"): Command over TLS on the host end of a veth pair, `enigm agent --enforce-network` in a
//! device network namespace at the other end, a DNS-over-TLS upstream and plain listeners on
//! the host, and the reference Enigm Proxy (`enigm proxy`). The network policy, assigned through
//! an approval, reaches the device in its signed bundle and is enforced at once: a blocked name
//! is refused by the agent's stub, an allowed one is answered over TLS, plain DNS and every way
//! out the policy does not name are dropped, a destination closed to the device is reached
//! through the agent's proxy forwarder (with the credential the agent renews) and the proxy, and
//! a plain DNS attempt becomes an `encrypted-dns` finding at the next check-in. A new version,
//! approved, is enforced within one check-in (the proxy route closed: the forwarder fails, it
//! never goes direct). Killing the agent stops the resolver and opens nothing.
//!
//! Needs root, `ip`, `nft` and python3 (the probes), which `scripts/test` installs. Where they
//! are missing the test says so and stops, except in CI (`CI=true`), where that is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use support::netns::{must, run};

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ENIGM, Owner, Proxy, Server, output_text, protected_profile, write_secret};

/// Probes run in the device namespace: `tcp HOST PORT` prints `ok` when a connection opens
/// within a second and `udp HOST PORT` when the echo answers, `blocked` otherwise; `dns NAME` asks the stub at
/// 127.0.0.53 and prints its response code and number of answers, or `silent`.
const PROBE: &str = r#"
import socket, struct, sys
mode = sys.argv[1]
try:
    if mode == "dns":
        question = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[2].split("."))
        query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question + b"\0" + struct.pack(">HH", 1, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
        s.sendto(query, ("127.0.0.53", 53)); data = s.recvfrom(4096)[0]
        print("rcode=%d answers=%d" % (data[3] & 15, struct.unpack(">H", data[6:8])[0]))
    elif mode == "connect":
        s = socket.create_connection(("127.0.0.1", 3128), timeout=15); s.settimeout(15)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[2], sys.argv[2])).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            if not chunk: break
            head += chunk
        status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "none"
        print("tunnel " + s.recv(2).decode() if status == "200" else "status " + status)
    elif mode == "tcp":
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=1); print("ok")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.sendto(b"x", (sys.argv[2], int(sys.argv[3]))); assert s.recvfrom(512)[0] == b"x"
        print("ok")
except Exception:
    print({"dns": "silent", "connect": "failed"}.get(mode, "blocked"))
"#;

/// TCP listeners answering `hi` and a UDP echo on port 53, on the host end.
const LISTENERS: &str = r#"
import socket, sys, threading
host = sys.argv[1]
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b"hi"); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port))
    while True:
        data, peer = s.recvfrom(512); s.sendto(data, peer)
for port in (7000,):
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
threading.Thread(target=udp, args=(53,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;

/// The device namespace, the veth pair to the host, and the processes of the test; all removed
/// on drop.
struct Device {
    namespace: String,
    host: String,
    listeners: Option<Child>,
    agent: Option<Child>,
}

impl Device {
    fn create() -> Device {
        let id = std::process::id() % 250;
        let namespace = format!("enigm-ne-{id}");
        let (device_link, host_link) = (format!("ene{id}d"), format!("ene{id}h"));
        let (device_address, host_address) = (format!("10.79.{id}.1"), format!("10.79.{id}.2"));
        // A namespace left by an earlier, killed run goes first.
        let _ = run(&["ip", "netns", "del", &namespace]);
        let _ = run(&["ip", "link", "del", &host_link]);
        must(&["ip", "netns", "add", &namespace]);
        must(&[
            "ip",
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &device_link,
            "netns",
            &namespace,
        ]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{host_address}/24"),
            "dev",
            &host_link,
        ]);
        must(&["ip", "link", "set", &host_link, "up"]);
        must(&[
            "ip",
            "-n",
            &namespace,
            "addr",
            "add",
            &format!("{device_address}/24"),
            "dev",
            &device_link,
        ]);
        must(&["ip", "-n", &namespace, "link", "set", &device_link, "up"]);
        must(&["ip", "-n", &namespace, "link", "set", "lo", "up"]);
        let mut device = Device {
            namespace,
            host: host_address,
            listeners: None,
            agent: None,
        };
        let mut child = Command::new("python3")
            .args(["-c", LISTENERS, &device.host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        device.listeners = Some(child);
        device
    }

    /// A probe's verdict, from the device namespace.
    fn probe(&self, args: &[&str]) -> String {
        let mut command = vec![
            "ip",
            "netns",
            "exec",
            &self.namespace,
            "python3",
            "-c",
            PROBE,
        ];
        command.extend_from_slice(args);
        String::from_utf8_lossy(&run(&command).stdout)
            .trim()
            .to_owned()
    }

    fn tcp(&self, port: u16) -> String {
        self.probe(&["tcp", &self.host, &port.to_string()])
    }

    fn dns(&self, name: &str) -> String {
        self.probe(&["dns", name])
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for child in [self.agent.take(), self.listeners.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespace deletes the veth pair and the rules inside it.
        let _ = run(&["ip", "netns", "del", &self.namespace]);
    }
}

/// Waits until `seen` holds a line containing `wanted`; the deadline only bounds a broken run.
fn wait_for_line(seen: &Mutex<Vec<String>>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if seen
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(wanted))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never printed `{wanted}`:\n{}",
            seen.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The local Trust Security Center's record, once `check` accepts it.
fn wait_for_tsc(state: &Path, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let output = run(&[
            ENIGM,
            "tsc",
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
        ]);
        if output.status.success() {
            let record: Value = serde_json::from_slice(&output.stdout).unwrap();
            if check(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "{record}");
        }
        assert!(Instant::now() < deadline, "{}", output_text(&output));
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn has_finding(record: &Value, signal: &str, kind: &str) -> bool {
    record["findings"].as_array().is_some_and(|findings| {
        findings
            .iter()
            .any(|finding| finding["signal"] == signal && finding["kind"] == kind)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_enforces_its_groups_network_policy_and_fails_closed() {
    if support::netns::skip("the_agent_enforces_its_groups_network_policy_and_fails_closed") {
        return;
    }
    let mut device = Device::create();
    let host = device.host.clone();
    let dir = tempfile::tempdir().unwrap();

    // The DNS-over-TLS upstream, on the host end.
    let upstream_certificate =
        rcgen::generate_simple_self_signed(vec!["dns.test".to_owned()]).unwrap();
    let upstream_ca = dir.path().join("upstream.pem");
    std::fs::write(&upstream_ca, upstream_certificate.cert.pem()).unwrap();
    let (upstream, asked, _upstream_task) =
        support::dot::upstream(&format!("{host}:0"), &upstream_certificate).await;

    // Command over TLS on the host end.
    let certified = rcgen::generate_simple_self_signed(vec![host.clone()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let data_dir = dir.path().join("data");
    let dev_root = dir.path().join("dev-root");
    let server = Server::start_on(
        &data_dir,
        &format!("{host}:0"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--insecure-dev-attestation-root",
            dev_root.to_str().unwrap(),
        ],
    );
    let url = server.url.clone();
    let command_port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let owner_login = Owner::log_in_with(
        dir.path(),
        &data_dir,
        &url,
        vec!["--ca-cert".to_owned(), cert.to_str().unwrap().to_owned()],
    );
    let owner = &owner_login.cli;
    let pin = owner_login.pin.to_str().unwrap().to_owned();
    let (carol, carol_pin) = owner_login.add_administrator("carol", "security-admin");
    let root = dir.path().join("root.json");
    owner.ok(&[
        "ota",
        "keys",
        "init",
        "--insecure-dev-key-dir",
        dir.path().join("workstation-keys").to_str().unwrap(),
        "--root-out",
        root.to_str().unwrap(),
        "--pin-file",
        &pin,
    ]);
    // Devices of the group attest at enrollment (the proxy credential needs a fresh
    // accepted attestation).
    let attestation_policy = dir.path().join("attestation.json");
    std::fs::write(
        &attestation_policy,
        r#"{"required_for": {"enrollment": true}}"#,
    )
    .unwrap();
    let created = owner.json(&[
        "admin",
        "enrollment-token",
        "create",
        "--group",
        "field-phones",
        "--attestation-policy-file",
        attestation_policy.to_str().unwrap(),
        "--pin-file",
        &pin,
    ]);
    let token = write_secret(dir.path(), "token", created["token"].as_str().unwrap());

    let newest = || {
        owner.json(&["policy", "bundles"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|bundle| bundle["group"] == "field-phones")
            .map(|bundle| bundle["sequence"].as_u64().unwrap())
    };
    // The background publisher issues the group's next bundle within a few seconds of an
    // approved assignment.
    let published_after = |before: Option<u64>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while newest() <= before {
            assert!(Instant::now() < deadline, "no bundle after {before:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let assign_version = |policy: &str, content: Value, version: &str| {
        let file = dir.path().join(format!("{policy}-{version}.json"));
        std::fs::write(&file, content.to_string()).unwrap();
        for args in [
            vec![
                "policy",
                "version",
                "create",
                policy,
                "--file",
                file.to_str().unwrap(),
            ],
            vec![
                "policy",
                "assign",
                policy,
                "--version",
                version,
                "--group",
                "field-phones",
            ],
        ] {
            let requested = owner.json(
                &[
                    &args[..],
                    &["--justification", "network rollout", "--pin-file", &pin],
                ]
                .concat(),
            );
            let approval = requested["approval"]["id"].as_str().unwrap();
            carol.ok(&[
                "admin",
                "approvals",
                "approve",
                approval,
                "--pin-file",
                carol_pin.to_str().unwrap(),
            ]);
        }
    };
    // A trust policy that holds the network signals critical and makes the agent check in
    // every 10 s, and the network policy: blocked names refused, the browser through the
    // Enigm Proxy.
    owner.ok(&["policy", "create", "field-trust", "--kind", "trust"]);
    let before = newest();
    assign_version(
        "field-trust",
        json!({
            "critical": ["firewall", "encrypted-dns", "network-policy-compliance"],
            "max_signal_age_seconds": 20
        }),
        "1",
    );
    published_after(before);
    owner.ok(&["policy", "create", "field-network", "--kind", "network"]);
    let network_policy = |blocked: &[&str], routing: Value| {
        json!({
            "version": 1,
            "blocklists": {"threats": {"domains": blocked}},
            "layers": [
                {"id": "threats", "rules": [{"id": "block-threats",
                    "match": {"blocklist": "threats"}, "action": {"block": {"reason": "malware"}}}]},
                {"id": "routing", "rules": routing}
            ]
        })
    };
    let before = newest();
    assign_version(
        "field-network",
        network_policy(
            &["blocked.example"],
            json!([{"id": "apps-proxy", "match": {"apps": ["browser"]},
                    "action": {"route": "enigm-proxy"}}]),
        ),
        "1",
    );
    published_after(before);

    // The reference Enigm Proxy on the host end, trusting Command's certificate.
    let _proxy = Proxy::start(
        &format!("{host}:9000"),
        &url,
        &[
            "--ca-cert",
            cert.to_str().unwrap(),
            "--allow-private-destinations",
        ],
    );

    // Plain DNS gets out before the agent runs.
    assert_eq!(device.probe(&["udp", &host, "53"]), "ok");

    let state = dir.path().join("device-state");
    let mut agent = Command::new("ip")
        .args(["netns", "exec", &device.namespace, ENIGM, "agent"])
        .args(["--server", &url, "--ca-cert", cert.to_str().unwrap()])
        .arg("--state-dir")
        .arg(&state)
        .arg("--enrollment-token-file")
        .arg(&token)
        .arg("--profile")
        .arg(protected_profile())
        .arg("--ota-trusted-root")
        .arg(&root)
        .args(["--interval", "2", "--enforce-network"])
        .args(["--dns-upstream", &upstream.to_string()])
        .args(["--dns-upstream-name", "dns.test", "--dns-upstream-ca"])
        .arg(&upstream_ca)
        .args(["--proxy", &format!("{host}:9000")])
        .args(["--proxy-listen", "127.0.0.1:3128"])
        .arg("--insecure-dev-attestation-root")
        .arg(&dev_root)
        .env_remove("ENIGM_SERVER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    for stream in [
        Box::new(agent.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(agent.stderr.take().unwrap()),
    ] {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line);
            }
        });
    }
    device.agent = Some(agent);

    // Enrolled, the bundle installed, and its network policy enforced in the same cycle.
    wait_for_line(&seen, "network: enforcing field-network v1");
    assert_eq!(device.dns("blocked.example"), "rcode=5 answers=0");
    assert_eq!(device.dns("www.blocked.example"), "rcode=5 answers=0");
    let before = asked.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(device.dns("allowed.example"), "rcode=0 answers=1");
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        before + 1,
        "an allowed name is asked of the upstream over TLS"
    );
    assert_eq!(device.tcp(command_port), "ok", "Command stays reachable");
    assert_eq!(
        device.tcp(9000),
        "ok",
        "the policy routes the browser via the proxy"
    );
    assert_eq!(device.tcp(7000), "blocked", "no rule names it");
    // Through the agent's forwarder and the Enigm Proxy, with the credential the agent keeps
    // renewed, the same destination answers: the proxy is the way out.
    wait_for_line(&seen, "proxy: credential renewed");
    let target = format!("{host}:7000");
    assert_eq!(device.probe(&["connect", &target]), "tunnel hi");
    assert_eq!(device.probe(&["udp", &host, "53"]), "blocked", "plain DNS");

    // The plain DNS attempt is a finding at the next check-in; the device needs review.
    let record = wait_for_tsc(&state, |record| {
        has_finding(record, "encrypted-dns", "protection-degraded")
    });
    assert_eq!(record["state"], "REVIEW_REQUIRED", "{record}");
    // Command audited the change of state (by category, never a name or address).
    let changes = owner.json(&["audit", "events", "--action", "device.trust-change"]);
    assert!(
        changes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["target_ref"]
                .as_str()
                .unwrap()
                .ends_with("->REVIEW_REQUIRED")),
        "{changes}"
    );
    // With nothing new it clears again: the firewall and the policy measured in force.
    let record = wait_for_tsc(&state, |record| record["state"] == "PROTECTED");
    for signal in ["firewall", "encrypted-dns", "network-policy-compliance"] {
        assert!(
            !record["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|finding| finding["signal"] == signal),
            "{record}"
        );
    }

    // A new version, approved, is enforced within one check-in: another name refused, the
    // proxy closed since no rule routes through it any more.
    let before = newest();
    assign_version(
        "field-network",
        network_policy(&["blocked.example", "news.example"], json!([])),
        "2",
    );
    published_after(before);
    wait_for_line(&seen, "network: enforcing field-network v2");
    assert_eq!(device.dns("news.example"), "rcode=5 answers=0");
    assert_eq!(device.tcp(9000), "blocked");
    // The forwarder cannot reach the proxy any more, and never goes direct instead.
    let closed = device.probe(&["connect", &target]);
    assert!(closed == "status 502" || closed == "status 504", "{closed}");
    assert_eq!(device.tcp(command_port), "ok");

    // Killing the agent stops the resolver and opens nothing.
    let mut agent = device.agent.take().unwrap();
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(device.dns("allowed.example"), "silent");
    assert_eq!(device.probe(&["udp", &host, "53"]), "blocked");
    assert_eq!(device.tcp(7000), "blocked");
    assert_eq!(device.tcp(9000), "blocked");
    assert_eq!(device.tcp(command_port), "ok");

    // No name asked, address probed or route taken appears in the audit log.
    let audit = owner.ok(&["audit", "events", "--json"]);
    for secret in ["allowed.example", "news.example", "127.0.0.53", &host] {
        assert!(!audit.contains(secret), "`{secret}` in the audit log");
    }
    drop(server);
}

//! End to end with the real `enigm` binary: `enigm up` as a process on loopback (SQLite and
//! PostgreSQL), the bootstrap credentials, and the CLI driving a user creation and role grants
//! through approvals, including a genuine two-person approval. Also TLS and the listen guard.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use enigm_test_support::{Backend, TestDatabase, backend_tests};
use serde_json::Value;

use crate::support::{
    Cli, ENIGM, Server, bootstrap_field, change_initial_password, log_path, write_secret,
};

async fn up_login_create_and_grant_through_approvals(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);

    // The bootstrap credentials: printed once and written with mode 0600.
    let file = data_dir.join("bootstrap-admin.txt");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let (username, password, pin) = (
        bootstrap_field(&text, "username"),
        bootstrap_field(&text, "password"),
        bootstrap_field(&text, "pin"),
    );
    assert_eq!(username, "admin");
    assert!(
        server.printed.iter().any(|line| line.contains(&password)),
        "the password is printed once at start"
    );
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let openapi: Value = reqwest::get(format!("{}/api/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"].as_object().unwrap().len() > 20);

    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let owner = Cli {
        config: dir.path().join("owner-config"),
        server: server.url.clone(),
        extra: vec![],
    };
    let password_file = write_secret(&secrets, "owner-password", &password);
    let pin_file = write_secret(&secrets, "owner-pin", &pin);
    let login = owner.run(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    assert!(login.status.success());
    assert!(String::from_utf8_lossy(&login.stdout).contains("logged in"));
    // The generated bootstrap password must be changed before anything else.
    let login_notice = String::from_utf8_lossy(&login.stderr);
    assert!(
        login_notice
            .contains("must be changed before anything else: run `enigm admin password change`"),
        "{login_notice}"
    );
    let blocked = owner.run(&["admin", "users", "list"]);
    assert!(!blocked.status.success());
    let blocked = String::from_utf8_lossy(&blocked.stderr);
    assert!(
        blocked.contains("error: this account's password was set by someone else")
            && blocked.contains("(password_change_required)")
            && blocked.contains("hint: run `enigm admin password change`"),
        "{blocked}"
    );
    // A PIN file others may read is refused, with the fix, before anything is sent.
    let shared_pin = secrets.join("shared-pin");
    std::fs::write(&shared_pin, format!("{pin}\n")).unwrap();
    std::fs::set_permissions(&shared_pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = owner.run(&[
        "admin",
        "password",
        "change",
        "--password-file",
        password_file.to_str().unwrap(),
        "--new-password-file",
        password_file.to_str().unwrap(),
        "--pin-file",
        shared_pin.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let refused = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused.contains(&format!("run `chmod 600 {}`", shared_pin.display())),
        "{refused}"
    );
    let password_file = change_initial_password(&owner, &password_file, Some(&pin_file));
    assert!(owner.ok(&["admin", "users", "list"]).contains("admin"));
    let credentials = owner.config.join("credentials.json");
    assert_eq!(
        std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let pin_args = ["--pin-file", pin_file.to_str().unwrap()];
    let user_password = write_secret(&secrets, "user-password", "a-user-password-of-length");
    for name in ["bob", "carol"] {
        let created = owner.json(
            &[
                &[
                    "admin",
                    "users",
                    "create",
                    name,
                    "--password-file",
                    user_password.to_str().unwrap(),
                ][..],
                &pin_args[..],
            ]
            .concat(),
        );
        assert_eq!(created["username"], name, "{created}");
    }

    // Alone on a fresh installation, the owner approves their own grants (bootstrap window).
    let grant = owner.json(&[
        "admin",
        "roles",
        "grant",
        "carol",
        "security-admin",
        "--justification",
        "second approver",
    ]);
    let approval = grant["id"].as_str().unwrap().to_owned();
    let decided = owner.json(
        &[
            &["admin", "approvals", "approve", &approval][..],
            &pin_args[..],
        ]
        .concat(),
    );
    assert_eq!(decided["state"], "executed", "{decided}");

    // From now on it takes two people: carol approves bob's grant, the owner cannot.
    let carol = Cli {
        config: dir.path().join("carol-config"),
        server: server.url.clone(),
        extra: vec![],
    };
    carol.ok(&[
        "login",
        "--username",
        "carol",
        "--password-file",
        user_password.to_str().unwrap(),
    ]);
    let carol_password = change_initial_password(&carol, &user_password, None);
    let carol_pin = write_secret(&secrets, "carol-pin", "739164");
    carol.ok(&[
        "admin",
        "pin",
        "set",
        "--password-file",
        carol_password.to_str().unwrap(),
        "--pin-file",
        carol_pin.to_str().unwrap(),
    ]);
    let grant = owner.json(&[
        "admin",
        "roles",
        "grant",
        "bob",
        "auditor",
        "--justification",
        "quarterly audit",
    ]);
    let approval = grant["id"].as_str().unwrap().to_owned();
    let own = owner.run(
        &[
            &["admin", "approvals", "approve", &approval][..],
            &pin_args[..],
        ]
        .concat(),
    );
    assert!(!own.status.success());
    assert!(
        String::from_utf8_lossy(&own.stderr).contains("self_approval"),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    // Rejecting one's own request is refused before any PIN is asked for (none is given here,
    // and standard input is no terminal).
    let own_reject = owner.run(&["admin", "approvals", "reject", &approval]);
    assert!(!own_reject.status.success());
    let own_reject = String::from_utf8_lossy(&own_reject.stderr);
    assert!(
        own_reject.contains("you cannot decide on a request you made (self_approval)")
            && !own_reject.contains("PIN"),
        "{own_reject}"
    );
    let approved = carol.json(&[
        "admin",
        "approvals",
        "approve",
        &approval,
        "--pin-file",
        carol_pin.to_str().unwrap(),
    ]);
    assert_eq!(approved["state"], "executed", "{approved}");
    let bob = owner.json(&["admin", "users", "show", "bob"]);
    assert_eq!(bob["roles"], serde_json::json!(["auditor"]));

    // Human output: tables, and the audit log readable by bob the auditor.
    let table = owner.ok(&["admin", "users", "list"]);
    for name in ["admin", "bob", "carol"] {
        assert!(table.contains(name), "{table}");
    }
    let bob_cli = Cli {
        config: dir.path().join("bob-config"),
        server: server.url.clone(),
        extra: vec![],
    };
    bob_cli.ok(&[
        "login",
        "--username",
        "bob",
        "--password-file",
        user_password.to_str().unwrap(),
    ]);
    change_initial_password(&bob_cli, &user_password, None);
    let page = bob_cli.json(&["audit", "events", "--limit", "1000"]);
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "admin.bootstrap-owner",
        "auth.login",
        "admin.user-create",
        "approval.request",
        "approval.approve",
        "approval.execute",
        "admin.role-grant",
    ] {
        assert!(
            actions.contains(&expected),
            "no {expected} in the audit log"
        );
    }
    let denied = bob_cli.run(&[
        "admin",
        "users",
        "create",
        "mallory",
        "--password-file",
        user_password.to_str().unwrap(),
        "--pin-file",
        carol_pin.to_str().unwrap(),
    ]);
    assert!(!denied.status.success(), "an auditor changes nothing");

    // Nothing secret reached the server's debug log: passwords, PINs, tokens.
    let log = std::fs::read_to_string(log_path(&data_dir)).unwrap();
    assert!(log.contains("request"), "the debug log is being written");
    let token: Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    for secret in [
        password.as_str(),
        pin.as_str(),
        "a-user-password-of-length",
        "739164",
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "the server log contains a secret");
    }

    // Graceful stop, then a restart on the same data: no second bootstrap, data still there.
    assert!(server.stop().success());
    let server = Server::start(&data_dir, &database_args);
    assert!(
        !server.printed.iter().any(|line| line.contains("bootstrap")),
        "{:?}",
        server.printed
    );
    let owner = Cli {
        server: server.url.clone(),
        ..owner
    };
    owner.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    let bob = owner.json(&["admin", "users", "show", "bob"]);
    assert_eq!(bob["roles"], serde_json::json!(["auditor"]));
    assert!(server.stop().success());
}

/// `kill -9` right after a write was acknowledged: after a restart the write is there.
async fn acknowledged_writes_survive_kill_9(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let mut server = Server::start(&data_dir, &database_args);
    let text = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).unwrap();
    let password_file = write_secret(dir.path(), "password", &bootstrap_field(&text, "password"));
    let pin_file = write_secret(dir.path(), "pin", &bootstrap_field(&text, "pin"));
    let owner = Cli {
        config: dir.path().join("config"),
        server: server.url.clone(),
        extra: vec![],
    };
    owner.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    let password_file = change_initial_password(&owner, &password_file, Some(&pin_file));
    let names: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    for name in &names {
        owner.ok(&[
            "admin",
            "users",
            "create",
            name,
            "--password-file",
            password_file.to_str().unwrap(),
            "--pin-file",
            pin_file.to_str().unwrap(),
        ]);
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
    drop(server);

    let server = Server::start(&data_dir, &database_args);
    let owner = Cli {
        server: server.url.clone(),
        ..owner
    };
    owner.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    let users = owner.json(&["admin", "users", "list"]);
    let listed: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(
            listed.contains(&name.as_str()),
            "{name} was acknowledged but lost"
        );
    }
}

backend_tests!(
    up_login_create_and_grant_through_approvals,
    acknowledged_writes_survive_kill_9
);

#[test]
fn refuses_a_public_address_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(ENIGM)
        .args(["up", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without TLS"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_1_3_only_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();

    let client = reqwest::Client::builder()
        .add_root_certificate(root.clone())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(hsts, "max-age=15768000; includeSubDomains");

    let tls12_only = reqwest::Client::builder()
        .add_root_certificate(root)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(
        tls12_only
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err(),
        "TLS 1.2 is refused"
    );

    // The CLI logs in over TLS when told to trust the certificate.
    let text =
        std::fs::read_to_string(dir.path().join("data").join("bootstrap-admin.txt")).unwrap();
    let password_file = write_secret(dir.path(), "password", &bootstrap_field(&text, "password"));
    let cli = Cli {
        config: dir.path().join("config"),
        server: server.url.clone(),
        extra: vec!["--ca-cert".into(), cert.to_str().unwrap().into()],
    };
    cli.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    assert_eq!(
        cli.json(&["admin", "whoami"])["roles"],
        serde_json::json!(["owner"])
    );
}

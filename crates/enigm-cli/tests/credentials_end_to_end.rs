//! The credential commands with the real `enigm` binary against `enigm up` (SQLite and
//! PostgreSQL): TOTP enrollment, confirmation and removal and the password change send the
//! current password (and the PIN), and `admin users reset-totp` opens the approval that resets
//! another administrator's TOTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use enigm_crypto::TotpSecret;
use enigm_test_support::{Backend, TestDatabase, backend_tests};

use crate::support::{Cli, Owner, Server, write_secret};

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `admin totp enroll` and `confirm` for `cli`; answers the secret.
fn enroll_totp(cli: &Cli, password: &str, pin: &str) -> TotpSecret {
    let enrollment = cli.json(&[
        "admin",
        "totp",
        "enroll",
        "--password-file",
        password,
        "--pin-file",
        pin,
    ]);
    let bytes = data_encoding::BASE32_NOPAD
        .decode(enrollment["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&bytes).unwrap();
    let confirmed = cli.ok(&[
        "admin",
        "totp",
        "confirm",
        &secret.code_at(now()),
        "--password-file",
        password,
    ]);
    assert!(confirmed.contains("totp enabled"), "{confirmed}");
    secret
}

/// `enigm up` on `backend` in a scratch directory; dropped in field order, server first.
struct Command {
    server: Server,
    data_dir: std::path::PathBuf,
    dir: tempfile::TempDir,
    _db: TestDatabase,
}

impl Command {
    async fn start(backend: Backend) -> Command {
        let db = TestDatabase::new(backend).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let database_args: Vec<&str> = match backend {
            Backend::Sqlite => vec![],
            Backend::Postgres => vec!["--database-url", db.url()],
        };
        let server = Server::start(&data_dir, &database_args);
        Command {
            server,
            data_dir,
            dir,
            _db: db,
        }
    }

    fn owner(&self) -> Owner {
        Owner::log_in(self.dir.path(), &self.data_dir, &self.server.url)
    }
}

async fn credential_commands_send_the_current_credentials(backend: Backend) {
    let command = Command::start(backend).await;
    let owner = command.owner();
    let password = owner.password.to_str().unwrap();
    let pin = owner.pin.to_str().unwrap();

    // A wrong password is refused by the server: the command sent what it was given.
    let wrong = write_secret(&owner.secrets, "wrong-password", "not-the-owner-password");
    let refused = owner.cli.run(&[
        "admin",
        "totp",
        "enroll",
        "--password-file",
        wrong.to_str().unwrap(),
        "--pin-file",
        pin,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("current password is wrong"), "{stderr}");

    let secret = enroll_totp(&owner.cli, password, pin);
    // The code of the next time step: the confirmation spent the current one.
    let removed = owner.cli.ok(&[
        "admin",
        "totp",
        "remove",
        &secret.code_at(now() + 30),
        "--password-file",
        password,
        "--pin-file",
        pin,
    ]);
    assert!(removed.contains("totp removed"), "{removed}");
    let me = owner.cli.json(&["admin", "whoami"]);
    assert_eq!(me["totp_enabled"], false);

    // Another owner's seized TOTP: the reset is requested here and waits for an approver who
    // is neither the requester nor its subject.
    let (other, other_pin) = owner.add_administrator("owner2", "owner");
    // The password owner2 chose at first login (`support::change_initial_password`).
    let other_password = owner.secrets.join("owner2-password-changed");
    enroll_totp(
        &other,
        other_password.to_str().unwrap(),
        other_pin.to_str().unwrap(),
    );
    let request = owner.cli.json(&[
        "admin",
        "users",
        "reset-totp",
        "owner2",
        "--justification",
        "authenticator phone lost, ticket 77",
        "--pin-file",
        pin,
    ]);
    assert_eq!(request["state"], "pending", "{request}");
    assert_eq!(request["action"]["kind"], "totp-reset", "{request}");
    let listed = owner.cli.ok(&["admin", "approvals", "list"]);
    assert!(listed.contains("reset the totp of owner2"), "{listed}");

    // The password change sends the password and the PIN.
    let new_password = write_secret(
        &owner.secrets,
        "new-password",
        "a-brand-new-owner-passphrase",
    );
    let changed = owner.cli.ok(&[
        "admin",
        "password",
        "change",
        "--password-file",
        password,
        "--new-password-file",
        new_password.to_str().unwrap(),
        "--pin-file",
        pin,
    ]);
    assert!(changed.contains("password changed"), "{changed}");
    owner.cli.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        new_password.to_str().unwrap(),
    ]);
}

/// Spec A.7 from the command line: `admin pin set-duress`, then a critical operation with the
/// duress PIN ends like an accepted one (exit 0, "accepted") and does nothing, while another
/// owner sees the account at risk.
async fn the_duress_pin_from_the_command_line(backend: Backend) {
    let command = Command::start(backend).await;
    let owner = command.owner();
    let (other, other_pin) = owner.add_administrator("owner2", "owner");
    let other_password = owner.secrets.join("owner2-password-changed");
    let other_password = other_password.to_str().unwrap();
    let other_pin = other_pin.to_str().unwrap();
    let same = owner.secrets.join("owner2-pin-as-duress");
    std::fs::copy(other_pin, &same).unwrap();
    let refused = other.run(&[
        "admin",
        "pin",
        "set-duress",
        "--password-file",
        other_password,
        "--duress-pin-file",
        same.to_str().unwrap(),
        "--pin-file",
        other_pin,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("must differ from the PIN"), "{stderr}");
    let duress = write_secret(&owner.secrets, "owner2-duress", "583920");
    let duress = duress.to_str().unwrap();
    let set = other.ok(&[
        "admin",
        "pin",
        "set-duress",
        "--password-file",
        other_password,
        "--duress-pin-file",
        duress,
        "--pin-file",
        other_pin,
    ]);
    assert!(set.contains("duress pin set"), "{set}");

    let coerced = other.ok(&["admin", "users", "create", "coerced", "--pin-file", duress]);
    assert_eq!(coerced.trim(), "accepted");
    let users = owner.cli.json(&["admin", "users", "list"]);
    let items = users["items"].as_array().unwrap();
    assert!(
        !items.iter().any(|user| user["username"] == "coerced"),
        "{users}"
    );
    let owner2 = items
        .iter()
        .find(|user| user["username"] == "owner2")
        .unwrap();
    assert_eq!(owner2["at_risk"], true, "{users}");
    let listed = owner.cli.ok(&["admin", "users", "list"]);
    assert!(listed.contains("at-risk"), "{listed}");
    let events = owner
        .cli
        .ok(&["audit", "events", "--action", "auth.duress-pin"]);
    assert!(events.contains("auth.duress-pin"), "{events}");

    // The PIN itself clears the risk state; removing the duress PIN makes it a wrong PIN.
    other.ok(&[
        "admin",
        "users",
        "create",
        "real-one",
        "--pin-file",
        other_pin,
    ]);
    let users = owner.cli.json(&["admin", "users", "list"]);
    let owner2 = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == "owner2")
        .cloned()
        .unwrap();
    assert_eq!(owner2["at_risk"], false, "{users}");
    let removed = other.ok(&[
        "admin",
        "pin",
        "remove-duress",
        "--password-file",
        other_password,
        "--pin-file",
        other_pin,
    ]);
    assert!(removed.contains("duress pin removed"), "{removed}");
    let wrong = other.run(&["admin", "users", "create", "coerced", "--pin-file", duress]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("wrong critical-operation PIN"), "{stderr}");
}

backend_tests!(
    credential_commands_send_the_current_credentials,
    the_duress_pin_from_the_command_line
);

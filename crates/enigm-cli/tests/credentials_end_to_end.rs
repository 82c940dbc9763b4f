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

async fn credential_commands_send_the_current_credentials(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let server = Server::start(&data_dir, &database_args);
    let owner = Owner::log_in(dir.path(), &data_dir, &server.url);
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

backend_tests!(credential_commands_send_the_current_credentials);

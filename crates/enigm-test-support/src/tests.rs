//! Unit tests for the pure helpers; database behaviour is tested in `tests/databases.rs`.

use super::*;

#[test]
fn backends_are_listed_once_with_stable_names() {
    let names: Vec<&str> = Backend::ALL.iter().map(|backend| backend.name()).collect();
    assert_eq!(names, ["sqlite", "postgres"]);
    assert_eq!(Backend::Postgres.to_string(), "postgres");
}

#[test]
fn database_url_replaces_only_the_database() {
    fn check(admin: &str, expect: &str) {
        assert_eq!(
            database_url(admin, "enigm_test_x").unwrap(),
            expect,
            "admin url `{admin}`"
        );
    }
    check(
        "postgres://postgres@127.0.0.1:55432/postgres",
        "postgres://postgres@127.0.0.1:55432/enigm_test_x",
    );
    check(
        "postgres://postgres@127.0.0.1:55432",
        "postgres://postgres@127.0.0.1:55432/enigm_test_x",
    );
    check(
        "postgres://postgres@127.0.0.1:55432/",
        "postgres://postgres@127.0.0.1:55432/enigm_test_x",
    );
    check(
        "postgresql://u:p%2Fw@db.example:5432/admin?sslmode=disable",
        "postgresql://u:p%2Fw@db.example:5432/enigm_test_x?sslmode=disable",
    );
    check(
        "postgres://postgres@%2Ftmp%2Fpg/postgres?application_name=t",
        "postgres://postgres@%2Ftmp%2Fpg/enigm_test_x?application_name=t",
    );
}

#[test]
fn database_url_rejects_what_is_not_a_postgres_url() {
    fn check(admin: &str, expect: &str) {
        let error = database_url(admin, "enigm_test_x").unwrap_err().to_string();
        assert!(
            error.contains(expect),
            "admin url `{admin}`: error `{error}`"
        );
    }
    check("127.0.0.1:5432", "is not a `postgres://` URL");
    check("mysql://root@127.0.0.1/db", "has scheme `mysql`");
}

#[test]
fn missing_postgres_url_says_how_to_run_the_suite() {
    for value in [None, Some(String::new()), Some("  ".to_owned())] {
        let error = admin_url_from(value.clone()).unwrap_err().to_string();
        assert!(
            error.starts_with("ENIGM_TEST_POSTGRES_URL is not set"),
            "{value:?}: {error}"
        );
        assert!(error.contains("scripts/test"), "{error}");
        assert!(error.contains("ENIGM_SKIP_POSTGRES=1"), "{error}");
    }
    let url = "postgres://postgres@127.0.0.1:55432/postgres";
    assert_eq!(admin_url_from(Some(url.to_owned())).unwrap(), url);
}

#[test]
fn only_one_skips_postgres() {
    for (value, expect) in [
        (None, false),
        (Some("1"), true),
        (Some("0"), false),
        (Some("true"), false),
        (Some(""), false),
        (Some(" 1"), false),
    ] {
        assert_eq!(skip_flag(value), expect, "ENIGM_SKIP_POSTGRES={value:?}");
    }
}

#[test]
fn workspace_root_is_the_virtual_manifest() {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[workspace]"),
        "{} is not the workspace root",
        root.display()
    );
    assert!(root.join("crates/enigm-test-support/Cargo.toml").is_file());
}

#[test]
fn shared_vectors_sit_next_to_the_workspace() {
    let root = workspace_root();
    let expected = root.parent().unwrap().join("shared/vectors");
    assert_eq!(shared_vectors_dir(), expected);
}

#[test]
fn missing_shared_vectors_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("shared/vectors");
    let message = check_shared_vectors(missing.clone()).unwrap_err();
    assert!(
        message.starts_with("SHARED TEST VECTORS MISSING"),
        "{message}"
    );
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );

    std::fs::create_dir_all(&missing).unwrap();
    assert_eq!(check_shared_vectors(missing.clone()).unwrap(), missing);
}

#[test]
fn a_file_is_not_a_vectors_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vectors");
    std::fs::write(&file, b"not a folder").unwrap();
    assert!(check_shared_vectors(file).is_err());
}

/// A full `scripts/test` run on a checkout without `../shared/vectors` stops before it builds
/// anything, and says where the vectors belong.
#[test]
fn the_test_command_stops_first_when_the_vectors_are_missing() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("enigm");
    std::fs::create_dir_all(checkout.join("scripts")).unwrap();
    std::fs::copy(root.join("scripts/test"), checkout.join("scripts/test")).unwrap();
    let output = std::process::Command::new("bash")
        .arg(checkout.join("scripts/test"))
        .env_remove("CI")
        .env(
            "ENIGM_TEST_POSTGRES_URL",
            "postgres://unused@127.0.0.1:1/unused",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the third-party test vectors are missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&dir.path().join("shared/vectors").display().to_string()),
        "{stderr}"
    );
    assert!(
        !stdout.contains("==> system packages"),
        "it stopped before installing anything: {stdout}"
    );
}

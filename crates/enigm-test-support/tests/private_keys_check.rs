//! `scripts/check-private-keys`, which CI runs in its lint phase, passes on this repository and
//! fails on a repository where private key material is committed or staged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed expectation is the test failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-private-keys")
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn this_repository_has_no_private_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !root.join(".git").exists() {
        eprintln!("!!! not a git checkout: the private key check has nothing to scan !!!");
        return;
    }
    let output = Command::new(script()).arg(&root).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn committed_or_staged_keys_are_found() {
    // Each case is made at run time, so that this file holds no key material itself.
    let pem_header = format!("-----BEGIN {}-----", ["EC", "PRIVATE", "KEY"].join(" "));
    let tuf_private = format!("{{\"keyval\": {{\"private\": \"{}\"}}}}", "ab".repeat(32));
    let cases: [(&str, String, bool); 4] = [
        ("release.pem", format!("{pem_header}\nMHcCAQEE\n"), true),
        ("keys/targets.json", tuf_private, false),
        ("signing.key", "anything".to_owned(), true),
        ("token/0f.object", "anything".to_owned(), false),
    ];
    for (name, content, commit) in cases {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        std::fs::write(dir.path().join("README"), "clean\n").unwrap();
        git(dir.path(), &["add", "README"]);
        git(dir.path(), &["commit", "-q", "-m", "clean"]);
        let clean = Command::new(script()).arg(dir.path()).output().unwrap();
        assert!(clean.status.success(), "a clean repository must pass");

        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        git(dir.path(), &["add", name]);
        if commit {
            git(dir.path(), &["commit", "-q", "-m", "oops"]);
        }
        let output = Command::new(script()).arg(dir.path()).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{name} was not found");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(name),
            "the report names {name}"
        );
    }
}

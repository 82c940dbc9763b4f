//! Running commands for the tests that build Linux network namespaces, and whether this machine
//! can run them.

use std::process::{Command, Output, Stdio};

use super::output_text;

/// Runs `args` (program first) and returns what it printed; panics when it cannot start.
pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

/// Runs `args` and fails the test when it fails.
pub(crate) fn must(args: &[&str]) {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        output_text(&output)
    );
}

/// Why this machine cannot run the namespace tests (not root, or `ip`, `nft` or `python3`
/// missing); `None` when it can.
pub(crate) fn missing() -> Option<String> {
    let uid = run(&["id", "-u"]);
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".to_owned());
    }
    for tool in ["ip", "nft", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success());
        if !found {
            return Some(format!("`{tool}` is missing"));
        }
    }
    None
}

/// Stops a test that cannot run here: loudly, and as a failure in CI (`CI=true`), where the
/// test command installs what it needs. `true` when the test should return.
pub(crate) fn skip(test: &str) -> bool {
    let Some(reason) = missing() else {
        return false;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run in CI: {reason}"
    );
    eprintln!("SKIPPED {test}: {reason}");
    true
}

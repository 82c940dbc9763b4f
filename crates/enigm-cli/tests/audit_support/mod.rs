//! What the end-to-end audit-log tests share: reading `enigm audit verify`'s verdict.

use std::process::Output;

/// Stdout and stderr together, for assertions and failure messages.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that verification passed.
pub(crate) fn assert_verified(output: &Output) {
    assert!(
        output.status.success(),
        "verification failed: {}",
        text(output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("audit log verified\n"),
        "{}",
        text(output)
    );
}

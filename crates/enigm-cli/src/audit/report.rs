//! The result of `enigm audit verify`, for people (a summary, or the findings with the first
//! one up front) and for programs (`--json`: `ok`, `mode`, `summary`, `findings`).

use serde::Serialize;

use crate::output;

/// Findings shown after the first one; `--json` lists all of them.
const MORE_FINDINGS_SHOWN: usize = 20;

/// The verification found something: the command fails (exit code 1) after printing the
/// findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit log verification failed")]
pub(crate) struct VerificationFailed;

/// What a verification looked at, as `label: value` lines for people.
pub(super) trait Summary: Serialize {
    fn lines(&self) -> Vec<(&'static str, String)>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    Offline,
    Online,
}

#[derive(Debug, Serialize)]
pub(super) struct Report<S> {
    pub(super) ok: bool,
    pub(super) mode: Mode,
    pub(super) summary: S,
    /// Each finding names where it is (leaf, tree node, checkpoint), ordered along the log.
    pub(super) findings: Vec<String>,
}

impl<S: Summary> Report<S> {
    pub(super) fn new(mode: Mode, summary: S, findings: Vec<String>) -> Self {
        Report {
            ok: findings.is_empty(),
            mode,
            summary,
            findings,
        }
    }

    /// Prints the report; a failed verification becomes [`VerificationFailed`].
    pub(super) fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else {
            print!("{}", self.render());
        }
        if self.ok {
            Ok(())
        } else {
            Err(VerificationFailed.into())
        }
    }

    /// The human form.
    pub(super) fn render(&self) -> String {
        let mut text = String::new();
        let mut findings = self.findings.iter().map(|finding| output::clean(finding));
        match findings.next() {
            None => text.push_str("audit log verified\n"),
            Some(first) => {
                let count = self.findings.len();
                let noun = if count == 1 { "finding" } else { "findings" };
                text.push_str(&format!(
                    "audit log verification FAILED ({count} {noun})\n\n"
                ));
                text.push_str(&format!("  first finding: {first}\n"));
                let more: Vec<String> = findings.by_ref().take(MORE_FINDINGS_SHOWN).collect();
                if !more.is_empty() {
                    text.push_str("\nfurther findings:\n");
                    for finding in more {
                        text.push_str(&format!("  - {finding}\n"));
                    }
                }
                let rest = findings.count();
                if rest > 0 {
                    text.push_str(&format!("  (and {rest} more: --json lists them all)\n"));
                }
                text.push_str("\nwhat was checked:\n");
            }
        }
        let lines = self.summary.lines();
        let width = lines
            .iter()
            .map(|(label, _)| label.len())
            .max()
            .unwrap_or(0);
        for (label, value) in lines {
            text.push_str(&format!("  {label:<width$}  {}\n", output::clean(&value)));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Counted {
        leaves: u64,
    }

    impl Summary for Counted {
        fn lines(&self) -> Vec<(&'static str, String)> {
            vec![
                ("leaves", self.leaves.to_string()),
                ("latest checkpoint", "size 4".to_owned()),
            ]
        }
    }

    #[test]
    fn a_clean_log_prints_its_summary() {
        let report = Report::new(Mode::Offline, Counted { leaves: 4 }, Vec::new());
        assert!(report.ok);
        insta::assert_snapshot!(report.render(), @r"
        audit log verified
          leaves             4
          latest checkpoint  size 4
        ");
    }

    #[test]
    fn findings_come_first_the_first_one_up_front_and_bounded() {
        let findings: Vec<String> = (0..25).map(|leaf| format!("leaf {leaf}: bad")).collect();
        let report = Report::new(Mode::Online, Counted { leaves: 30 }, findings);
        assert!(!report.ok);
        let text = report.render();
        assert!(
            text.starts_with(
                "audit log verification FAILED (25 findings)\n\n  first finding: leaf 0: bad\n"
            ),
            "{text}"
        );
        assert!(text.contains("  - leaf 20: bad\n"), "{text}");
        assert!(!text.contains("leaf 21: bad"), "{text}");
        assert!(
            text.contains("(and 4 more: --json lists them all)"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "what was checked:\n  leaves             30\n  latest checkpoint  size 4\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_form_has_ok_mode_summary_and_findings() {
        let report = Report::new(
            Mode::Online,
            Counted { leaves: 2 },
            vec!["leaf 1: bad\u{1b}[2J".to_owned()],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ok": false,
                "mode": "online",
                "summary": {"leaves": 2},
                "findings": ["leaf 1: bad\u{1b}[2J"],
            })
        );
        // Terminal control characters never reach the screen.
        assert!(report.render().contains("leaf 1: bad\u{fffd}[2J"));
    }
}

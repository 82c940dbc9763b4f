//! A progress bar for long verifications: drawn on stderr when it is a terminal, so that stdout
//! (and `--json`) stay clean and scripts see nothing.

use std::io::IsTerminal as _;

use enigm_store::VerifyProgress;
use indicatif::{ProgressBar, ProgressStyle};

pub(super) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(super) fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg:>14} [{bar:40}] {human_pos}/{human_len} ({eta})",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    /// Removes the bar, before the result is printed.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl VerifyProgress for Progress {
    fn phase(&self, name: &'static str, total: u64) {
        self.bar.set_message(name);
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, done: u64) {
        self.bar.set_position(done);
    }
}

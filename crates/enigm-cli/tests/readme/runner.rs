//! The machinery of the README walk: the README's command lines, and a runner that types them
//! into a terminal as a new user would, answering the prompts the CLI asks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use enigm_crypto::TotpSecret;
use rexpect::ReadUntil;
use rexpect::process::WaitStatus;

use crate::support::ENIGM;

/// How long one README command may take (release builds are not involved; a PKCS#11 signing or
/// an attestation round is the slowest).
const COMMAND_TIMEOUT_MS: u64 = 180_000;

/// One command line of a ```sh block: continuation lines joined, the trailing comment removed.
#[derive(Debug, Clone)]
pub(crate) struct ReadmeLine {
    pub(crate) section: String,
    pub(crate) text: String,
}

/// Every command line of every ```sh block of `readme`, in order.
pub(crate) fn readme_lines(readme: &str) -> Vec<ReadmeLine> {
    let mut lines = Vec::new();
    let mut section = String::new();
    let mut in_block = false;
    let mut pending = String::new();
    for raw in readme.lines() {
        if !in_block {
            if let Some(heading) = raw.strip_prefix('#') {
                section = heading.trim_start_matches('#').trim().to_owned();
            }
            if raw.trim() == "```sh" {
                in_block = true;
            }
            continue;
        }
        if raw.trim() == "```" {
            in_block = false;
            continue;
        }
        let code = strip_comment(raw);
        if let Some(start) = code.trim_end().strip_suffix('\\') {
            pending.push_str(start.trim());
            pending.push(' ');
            continue;
        }
        pending.push_str(code.trim());
        let text = squeeze_spaces(&std::mem::take(&mut pending));
        if !text.is_empty() {
            lines.push(ReadmeLine {
                section: section.clone(),
                text,
            });
        }
    }
    lines
}

/// `line` without a `#` comment that starts outside quotes after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (index, c) in line.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return &line[..index],
            None => {}
        }
        previous = c;
    }
    line
}

fn squeeze_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One administrator as the walk knows them: their secrets and their CLI configuration.
pub(crate) struct Admin {
    pub(crate) password: String,
    pub(crate) pin: String,
    pub(crate) next_password: String,
    pub(crate) next_pin: String,
    pub(crate) totp: Option<TotpSecret>,
    pub(crate) last_totp_step: i64,
    pub(crate) config: PathBuf,
}

/// What a README command printed (stdout and stderr, as one terminal shows them) and how it
/// ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) line: String,
    pub(crate) output: String,
    pub(crate) code: i32,
}

impl Ran {
    pub(crate) fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "README command `{}` failed (exit {}):\n{}",
            self.line, self.code, self.output
        );
        self
    }

    pub(crate) fn shows(self, needle: &str) -> Ran {
        assert!(
            self.output.contains(needle),
            "README command `{}` should print `{needle}`:\n{}",
            self.line,
            self.output
        );
        self
    }

    /// The first capture group of `pattern` in the output.
    pub(crate) fn capture(&self, pattern: &str) -> String {
        let regex = regex::Regex::new(pattern).unwrap();
        regex
            .captures(&self.output)
            .and_then(|captures| captures.get(1))
            .map(|found| found.as_str().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "README command `{}`: no `{pattern}` in its output:\n{}",
                    self.line, self.output
                )
            })
    }
}

/// Walks the README: each call names a README line verbatim; the walk checks that the README
/// has it, fills its placeholders, runs it in a terminal and answers the prompts.
pub(crate) struct Walk {
    lines: Vec<ReadmeLine>,
    covered: Vec<bool>,
    pub(crate) work_dir: PathBuf,
    bin_dir: PathBuf,
    pub(crate) admins: HashMap<String, Admin>,
    pub(crate) current: String,
    /// Literal text replaced in every line (the README's example hosts and paths).
    replacements: Vec<(String, String)>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) token_pin: String,
}

impl Walk {
    pub(crate) fn new(readme: &str, work_dir: &Path) -> Walk {
        let lines = readme_lines(readme);
        let bin_dir = work_dir.join(".bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(ENIGM, bin_dir.join("enigm")).unwrap();
        Walk {
            covered: vec![false; lines.len()],
            lines,
            work_dir: work_dir.to_path_buf(),
            bin_dir,
            admins: HashMap::new(),
            current: String::new(),
            replacements: Vec::new(),
            env: Vec::new(),
            token_pin: String::new(),
        }
    }

    pub(crate) fn replace(&mut self, from: &str, to: &str) {
        self.replacements.push((from.to_owned(), to.to_owned()));
    }

    pub(crate) fn admin(&mut self) -> &mut Admin {
        self.admins.get_mut(&self.current).unwrap()
    }

    /// Marks `line` as walked: it must be the README's next command line, since the README is
    /// followed in its order.
    fn take(&mut self, line: &str) {
        let wanted = squeeze_spaces(line);
        let next = self.covered.iter().position(|covered| !covered);
        match next {
            Some(index) if self.lines[index].text == wanted => self.covered[index] = true,
            _ => panic!(
                "the README's next command line is not `{wanted}`: the README and this walk \
                 disagree; README lines, walked ones marked *:\n{}",
                self.lines
                    .iter()
                    .zip(&self.covered)
                    .map(|(line, covered)| format!(
                        "  {} [{}] {}",
                        if *covered { "*" } else { " " },
                        line.section,
                        line.text
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    /// Lines the walk does not run, each with the reason; checked against the README too.
    pub(crate) fn not_run(&mut self, line: &str, reason: &str) {
        assert!(!reason.is_empty());
        self.take(line);
    }

    /// Every README command line was walked or explained.
    pub(crate) fn finish(&self) {
        let missed: Vec<String> = self
            .lines
            .iter()
            .zip(&self.covered)
            .filter(|(_, covered)| !**covered)
            .map(|(line, _)| format!("  [{}] {}", line.section, line.text))
            .collect();
        assert!(
            missed.is_empty(),
            "README command lines that no test runs (walk them in tests/readme.rs, or say why \
             not):\n{}",
            missed.join("\n")
        );
    }

    fn fill(&self, line: &str, placeholders: &[(&str, &str)]) -> String {
        let mut text = squeeze_spaces(line);
        for (from, to) in &self.replacements {
            text = text.replace(from.as_str(), to);
        }
        for (from, to) in placeholders {
            assert!(
                text.contains(from),
                "placeholder `{from}` is not in `{text}`"
            );
            text = text.replace(from, to);
        }
        text
    }

    /// Runs README `line` as the current administrator, `placeholders` filled.
    pub(crate) fn run(&mut self, line: &str, placeholders: &[(&str, &str)]) -> Ran {
        self.take(line);
        let text = self.fill(line, placeholders);
        self.type_in(&text, squeeze_spaces(line))
    }

    /// Runs README line `NAME=VALUE` or `export NAME=VALUE` (no prompts): the value as the shell
    /// expands it joins the environment of every later line, as in the reader's shell.
    pub(crate) fn assign(&mut self, line: &str) -> String {
        self.take(line);
        let text = self.fill(line, &[]);
        let assignment = text.strip_prefix("export ").unwrap_or(&text);
        let name = assignment.split('=').next().unwrap().to_owned();
        let output = self
            .command(&format!("{text}; printf '%s' \"${name}\""))
            .output()
            .unwrap();
        assert!(output.status.success(), "`{text}`: {output:?}");
        let value = String::from_utf8(output.stdout).unwrap();
        self.env.push((name, value.clone()));
        value
    }

    /// Runs README `line` in the background for `seconds`: it must still be running then (a
    /// service), and is stopped.
    pub(crate) fn run_for(&mut self, line: &str, placeholders: &[(&str, &str)], seconds: u64) {
        self.take(line);
        let text = self.fill(line, placeholders);
        let mut session =
            rexpect::session::spawn_command(self.command(&text), Some(seconds * 1000)).unwrap();
        let early = session.exp_eof();
        match early {
            Err(_) => {
                let status = session.process().status();
                assert!(
                    matches!(status, Some(WaitStatus::StillAlive)),
                    "`{text}` stopped early: {status:?}"
                );
                session
                    .process_mut()
                    .kill(rexpect::process::Signal::SIGTERM)
                    .unwrap();
            }
            Ok(output) => panic!("`{text}` ended within {seconds} s:\n{output}"),
        }
    }

    fn command(&self, text: &str) -> std::process::Command {
        let mut command = std::process::Command::new("bash");
        command
            .arg("-c")
            // A terminal window of a usual size: tables fit it as they would on screen.
            .arg(format!("stty cols 160 rows 50; {text}"))
            .current_dir(&self.work_dir)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.bin_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("ENIGM_TOKEN")
            .env_remove("ENIGM_SERVER")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200");
        if let Some(admin) = self.admins.get(&self.current) {
            command.env("ENIGM_CONFIG_DIR", &admin.config);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Types `text` into a fresh terminal and answers every prompt until it ends.
    fn type_in(&mut self, text: &str, line: String) -> Ran {
        let mut session =
            rexpect::session::spawn_command(self.command(text), Some(COMMAND_TIMEOUT_MS)).unwrap();
        let prompts = [
            r"password for `([^`]+)`: ",
            r"current password: ",
            r"new password: ",
            r"new password again: ",
            r"new pin[^\n:]*: ",
            r"new pin again: ",
            r"current pin: ",
            r"critical-operation pin[^\n:]*: ",
            r"totp code: ",
            r"username: ",
            r"Token PIN: ",
        ];
        let needles = || {
            let mut needles: Vec<ReadUntil> = prompts
                .iter()
                .map(|prompt| ReadUntil::Regex(regex::Regex::new(prompt).unwrap()))
                .collect();
            needles.push(ReadUntil::EOF);
            needles
        };
        let mut output = String::new();
        let mut changed_pin = false;
        let mut changed_password = false;
        loop {
            let (before, matched) = session
                .exp_any(needles())
                .unwrap_or_else(|error| panic!("`{text}`: {error}\n{output}"));
            output.push_str(&before);
            if matched.is_empty() || !matched.ends_with(": ") {
                // End of output.
                output.push_str(&matched);
                break;
            }
            output.push_str(&matched);
            let answer = self.answer(&matched, &mut changed_pin, &mut changed_password);
            session.send_line(&answer).unwrap();
        }
        let code = match session.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("`{text}` did not exit normally: {other:?}\n{output}"),
        };
        if code == 0 {
            let admin = self.admin_mut_opt();
            if let Some(admin) = admin {
                if changed_pin {
                    admin.pin = admin.next_pin.clone();
                }
                if changed_password {
                    admin.password = admin.next_password.clone();
                }
            }
        }
        Ran {
            line,
            output: utf8(&output).replace("\r\n", "\n"),
            code,
        }
    }

    fn admin_mut_opt(&mut self) -> Option<&mut Admin> {
        self.admins.get_mut(&self.current)
    }

    fn answer(
        &mut self,
        prompt: &str,
        changed_pin: &mut bool,
        changed_password: &mut bool,
    ) -> String {
        if let Some(name) = prompt
            .strip_prefix("password for `")
            .and_then(|rest| rest.split('`').next())
        {
            return self.admins[name].password.clone();
        }
        if prompt == "Token PIN: " {
            return self.token_pin.clone();
        }
        if prompt == "username: " {
            return self.current.clone();
        }
        let admin = self.admins.get_mut(&self.current).unwrap();
        if prompt.starts_with("new password") {
            *changed_password = true;
            return admin.next_password.clone();
        }
        if prompt.starts_with("new pin") {
            *changed_pin = true;
            return admin.next_pin.clone();
        }
        if prompt == "current password: " {
            return admin.password.clone();
        }
        if prompt.starts_with("totp code") {
            return next_totp_code(admin);
        }
        // `current pin: ` and `critical-operation pin…: `
        admin.pin.clone()
    }
}

/// The terminal's bytes, which the expect library hands over one `char` each, as UTF-8 text.
fn utf8(latin1: &str) -> String {
    let bytes: Vec<u8> = latin1
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A TOTP code of `admin`'s authenticator for a time step not used before (the server accepts
/// each step once), waiting for the next step when needed.
pub(crate) fn next_totp_code(admin: &mut Admin) -> String {
    let secret = admin.totp.as_ref().unwrap();
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = i64::try_from(now).unwrap();
        let step = now / 30;
        if step > admin.last_totp_step {
            admin.last_totp_step = step;
            return secret.code_at(now);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn readme_lines_join_continuations_and_drop_comments() {
    let text = "# Title\n## Part\n```sh\nenigm a --x \"# not a comment\"   # comment\n\
                # only a comment\nenigm b \\\n    --c d\n```\n```json\n{}\n```\n";
    let lines = readme_lines(text);
    let texts: Vec<&str> = lines.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, ["enigm a --x \"# not a comment\"", "enigm b --c d"]);
    assert_eq!(lines[0].section, "Part");
}

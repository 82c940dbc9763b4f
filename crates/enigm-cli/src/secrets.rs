//! Passwords and PINs on the client: read from files or prompted without echo, held in
//! `SecretString`, never taken from the command line and never logged.

use std::fmt;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::Rng as _;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};

/// Secret files hold one short line; a bound keeps a mistaken path (a log, a disk image) from
/// being read into memory.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Length of generated initial passwords: 24 characters from 62 give about 142 bits.
const GENERATED_PASSWORD_CHARS: usize = 24;
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The 6-digit critical-operation PIN.
pub(crate) struct Pin(SecretString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pin must be exactly 6 digits")]
pub(crate) struct PinFormatError;

impl Pin {
    pub(crate) fn parse(input: &str) -> Result<Self, PinFormatError> {
        if input.len() == 6 && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Pin(SecretString::from(input.to_owned())))
        } else {
            Err(PinFormatError)
        }
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value of the PIN header, marked sensitive so that HTTP debug output hides it.
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(self.0.expose_secret()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(..)")
    }
}

/// Where a critical operation gets its PIN from: `--pin-file`, else a prompt on a terminal.
/// The PIN is read only when an operation actually needs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PinSource {
    file: Option<PathBuf>,
}

impl PinSource {
    pub(crate) fn new(file: Option<PathBuf>) -> Self {
        PinSource { file }
    }

    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub(crate) fn obtain(&self) -> anyhow::Result<Pin> {
        self.obtain_with(is_interactive())
    }

    fn obtain_with(&self, interactive: bool) -> anyhow::Result<Pin> {
        let text = match &self.file {
            Some(path) => read_secret_file(path)?,
            None if interactive => prompt_secret("critical-operation pin: ")?,
            None => anyhow::bail!(
                "this operation needs the critical-operation PIN: pass --pin-file or run interactively"
            ),
        };
        Ok(Pin::parse(text.expose_secret())?)
    }
}

/// Whether prompts can be answered: standard input is a terminal.
pub(crate) fn is_interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads a secret from a file: its content with one trailing line break removed. A regular
/// file that its group or others may read is refused, as ssh refuses such key files.
pub(crate) fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not open `{}`", path.display()))?;
    refuse_shared_file(path, &file)?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("could not read `{}` as text", path.display()))?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        anyhow::bail!(
            "`{}` is larger than {MAX_SECRET_FILE_BYTES} bytes",
            path.display()
        );
    }
    Ok(SecretString::from(trim_line_break(text)))
}

/// Refuses a secret file whose permissions let its group or others read or change it.
///
/// Checked on the opened file (no race with a `chmod` in between). Only regular files are
/// checked: a pipe (`--pin-file <(pass show pin)`, `/dev/stdin`) is private to its processes.
pub(crate) fn refuse_shared_file(path: &Path, file: &std::fs::File) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = file
        .metadata()
        .with_context(|| format!("could not inspect `{}`", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if metadata.is_file() && mode & 0o077 != 0 {
        anyhow::bail!(SharedSecretFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// A secret file others may read: refused, with the fix.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{path}` holds a secret but its permissions are {mode:04o}, so other users may read it: \
     run `chmod 600 {path}`",
    path = path.display()
)]
pub(crate) struct SharedSecretFile {
    path: PathBuf,
    mode: u32,
}

fn trim_line_break(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Prompts on the terminal without echo.
pub(crate) fn prompt_secret(prompt: &str) -> anyhow::Result<SecretString> {
    let text = rpassword::prompt_password(prompt).context("could not read from the terminal")?;
    Ok(SecretString::from(text))
}

/// Prompts twice and insists on the same answer, for new passwords and PINs.
pub(crate) fn prompt_new_secret(prompt: &str, again: &str) -> anyhow::Result<SecretString> {
    let first = prompt_secret(prompt)?;
    let second = prompt_secret(again)?;
    if first.expose_secret() != second.expose_secret() {
        anyhow::bail!("the two entries do not match");
    }
    Ok(first)
}

/// Reads one visible line (a username, a TOTP code) after printing a prompt to stderr.
pub(crate) fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")
        .and_then(|()| stderr.flush())
        .context("could not write the prompt")?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read from standard input")?;
    Ok(line.trim().to_owned())
}

/// A strong initial password for a new administrator, from the operating system's RNG.
pub(crate) fn generate_password() -> anyhow::Result<SecretString> {
    let alphabet =
        rand::distributions::Slice::new(PASSWORD_ALPHABET).context("empty password alphabet")?;
    let password: String = rand::rngs::OsRng
        .sample_iter(alphabet)
        .take(GENERATED_PASSWORD_CHARS)
        .map(|&b| char::from(b))
        .collect();
    Ok(SecretString::from(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a secret file as an operator should: readable by its owner only.
    fn write_private(path: &Path, content: impl AsRef<[u8]>) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn secret_files_others_may_read_are_refused_with_the_chmod_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::write(&path, "135790\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read_secret_file(&path).unwrap_err().to_string();
            assert_eq!(
                error,
                format!(
                    "`{0}` holds a secret but its permissions are {mode:04o}, so other users may \
                     read it: run `chmod 600 {0}`",
                    path.display()
                )
            );
            assert!(PinSource::new(Some(path.clone())).obtain().is_err());
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read_secret_file(&path).unwrap().expose_secret(), "135790");
        }
    }

    #[test]
    fn pins_are_six_ascii_digits() {
        let cases: &[(&str, bool)] = &[
            ("123456", true),
            ("000000", true),
            ("12345", false),
            ("1234567", false),
            ("12345a", false),
            (" 123456", false),
            ("１２３４５６", false),
            ("", false),
        ];
        for (input, valid) in cases {
            assert_eq!(Pin::parse(input).is_ok(), *valid, "input `{input}`");
        }
        let pin = Pin::parse("482913").unwrap();
        assert_eq!(pin.expose(), "482913");
        assert!(pin.header_value().unwrap().is_sensitive());
        assert_eq!(format!("{pin:?}"), "Pin(..)");
    }

    #[test]
    fn secret_files_lose_exactly_one_trailing_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str)] = &[
            ("hunter2-long-password\n", "hunter2-long-password"),
            ("crlf\r\n", "crlf"),
            ("no-newline", "no-newline"),
            ("two\n\n", "two\n"),
            (" spaces kept \n", " spaces kept "),
        ];
        for (index, (content, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("secret-{index}"));
            write_private(&path, content);
            assert_eq!(read_secret_file(&path).unwrap().expose_secret(), *expected);
        }
    }

    #[test]
    fn oversized_or_missing_secret_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        write_private(&big, "x".repeat(5000));
        assert!(
            read_secret_file(&big)
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
        assert!(read_secret_file(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn pin_file_is_read_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        write_private(&good, "135790\n");
        assert_eq!(
            PinSource::new(Some(good)).obtain().unwrap().expose(),
            "135790"
        );
        let bad = dir.path().join("bad-pin");
        write_private(&bad, "1357\n");
        let error = PinSource::new(Some(bad)).obtain().unwrap_err();
        assert_eq!(error.to_string(), "the pin must be exactly 6 digits");
    }

    #[test]
    fn without_a_pin_file_or_terminal_the_pin_is_refused_clearly() {
        let error = PinSource::new(None).obtain_with(false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "this operation needs the critical-operation PIN: pass --pin-file or run interactively"
        );
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let first = generate_password().unwrap();
        let second = generate_password().unwrap();
        assert_eq!(first.expose_secret().chars().count(), 24);
        assert!(
            first
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert_ne!(first.expose_secret(), second.expose_secret());
    }
}

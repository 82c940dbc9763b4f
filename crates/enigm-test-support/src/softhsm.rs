//! A throwaway SoftHSM2 token for tests of PKCS#11 signing.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when its module is initialised; `.cargo/config.toml` points it
//! at `target/softhsm2/softhsm2.conf`, which [`SoftHsmToken::create`] writes (token directory
//! beside it) on first use. Each call hands out a token of its own with a unique label and
//! random PINs, so tests in one process never share keys or logins.
//!
//! SoftHSM2 (2.6) reads its token directory once, at `C_Initialize`: a token that
//! `softhsm2-util` makes after the process first opened the module is invisible to that process.
//! So the first call in a process initialises [`TOKENS_PER_PROCESS`] tokens at once, before any
//! test can open one, and later calls take from them. Tokens of runs over an hour old are
//! removed then too, so the directory does not grow with every run.
//!
//! `scripts/test` installs softhsm2; when it is missing the fixture fails naming the package,
//! or, with `ENIGM_SKIP_SOFTHSM=1`, answers `None` after saying so loudly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How many tokens one test process can use (see the module docs for why there is a limit).
pub const TOKENS_PER_PROCESS: usize = 8;

/// Test tokens are named so; only such tokens are ever removed.
const LABEL_PREFIX: &str = "enigm-test-";

/// Older tokens belong to finished runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// One initialised token.
#[derive(Debug, Clone)]
pub struct SoftHsmToken {
    pub module: PathBuf,
    pub label: String,
    pub pin: String,
    /// The configuration file the module must see (also in the test process's environment).
    pub conf: PathBuf,
}

const MODULES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

impl SoftHsmToken {
    /// A fresh token for this test, or `None` when softhsm2 is missing and
    /// `ENIGM_SKIP_SOFTHSM=1` (said loudly). Panics when softhsm2 is missing otherwise, or when
    /// the process asks for more than [`TOKENS_PER_PROCESS`] tokens.
    #[expect(
        clippy::panic,
        reason = "test fixture: a broken set-up is the test's failure, said plainly"
    )]
    pub fn create() -> Option<SoftHsmToken> {
        /// `None` until the first call; then the tokens not handed out yet, or `None` inside
        /// when the tests are skipped.
        static POOL: Mutex<Option<Option<Vec<SoftHsmToken>>>> = Mutex::new(None);
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens = pool.get_or_insert_with(Self::initialise_process_tokens);
        let Some(tokens) = tokens else {
            // Straight to stderr, past the test harness's capture, once per skipped test.
            let _ignored = writeln!(
                std::io::stderr(),
                "!!! SKIPPED: softhsm2 is not installed and ENIGM_SKIP_SOFTHSM=1; a PKCS#11 \
                 signing test did not run !!!"
            );
            return None;
        };
        match tokens.pop() {
            Some(token) => Some(token),
            None => panic!(
                "this test process asked for more than {TOKENS_PER_PROCESS} SoftHSM2 tokens; \
                 raise TOKENS_PER_PROCESS in enigm-test-support's softhsm.rs (SoftHSM2 cannot \
                 see tokens made after the process first opened the module)"
            ),
        }
    }

    #[expect(
        clippy::panic,
        clippy::expect_used,
        reason = "test fixture: a broken set-up is the test's failure, said plainly"
    )]
    fn initialise_process_tokens() -> Option<Vec<SoftHsmToken>> {
        let module = MODULES.iter().map(Path::new).find(|path| path.exists());
        let tool = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok();
        let (Some(module), true) = (module, tool) else {
            if std::env::var("ENIGM_SKIP_SOFTHSM").as_deref() == Ok("1") {
                return None;
            }
            panic!(
                "softhsm2 (softhsm2-util and libsofthsm2.so) is missing: run scripts/test, which \
                 installs the Debian package softhsm2, or set ENIGM_SKIP_SOFTHSM=1 to skip loudly"
            );
        };
        let conf = PathBuf::from(
            std::env::var("SOFTHSM2_CONF")
                .expect("SOFTHSM2_CONF is set by .cargo/config.toml for every test"),
        );
        let dir = conf
            .parent()
            .expect("the configuration has a directory")
            .to_path_buf();
        let token_dir = dir.join("tokens");
        std::fs::create_dir_all(&token_dir).expect("token directory");
        if !conf.exists() {
            let text = format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            );
            let temporary = dir.join(format!("softhsm2.conf.{}", uuid_suffix()));
            std::fs::write(&temporary, text).expect("SoftHSM2 configuration");
            std::fs::rename(&temporary, &conf).expect("SoftHSM2 configuration");
        }
        // Test processes run side by side (nextest runs one per test), and two `softhsm2-util
        // --init-token --free` at once race for the same free slot ("Could not get info about
        // the token in slot …"). An advisory lock on a file beside the tokens makes them take
        // turns; it is released when the file closes at the end of this function.
        let lock = std::fs::File::create(dir.join("init.lock")).expect("SoftHSM2 init lock file");
        lock.lock().expect("SoftHSM2 init lock");
        remove_stale_tokens(&token_dir);
        Some(
            (0..TOKENS_PER_PROCESS)
                .map(|_| initialise_token(module, &conf))
                .collect(),
        )
    }
}

#[expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test fixture: a broken set-up is the test's failure, said plainly"
)]
fn initialise_token(module: &Path, conf: &Path) -> SoftHsmToken {
    let suffix = uuid_suffix();
    let label = format!("{LABEL_PREFIX}{suffix}");
    let pin = format!(
        "{}",
        100_000 + (u64::from_str_radix(suffix.get(..8).unwrap_or("7"), 16).unwrap_or(7) % 900_000)
    );
    let so_pin = format!("so-{suffix}");
    // The init lock keeps two initialisations apart, but not the tests already signing: while
    // one of them writes its token's files, `softhsm2-util --free` can load that token half
    // written, and it gives up on the first slot it cannot describe ("Could not get info about
    // the token in slot 0"; seen in CI). Nothing was made then, so trying again is safe.
    let mut failures = Vec::new();
    for attempt in 1..=INIT_ATTEMPTS {
        let output = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                &label,
                "--pin",
                &pin,
                "--so-pin",
                &so_pin,
            ])
            .env("SOFTHSM2_CONF", conf)
            .output()
            .expect("softhsm2-util runs");
        if output.status.success() {
            return SoftHsmToken {
                module: module.to_path_buf(),
                label,
                pin,
                conf: conf.to_path_buf(),
            };
        }
        let error = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        // Any other failure may have happened after the token was made: trying again could
        // leave two tokens with one label, so it ends the run here.
        let token_half_written = error.contains("Could not get info about the token");
        failures.push(format!("attempt {attempt}: {error}"));
        if !token_half_written {
            break;
        }
        std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
    }
    panic!("softhsm2-util --init-token failed: {}", failures.join("; "));
}

/// How often a token initialisation is tried before the fixture gives up (see [`initialise_token`]).
const INIT_ATTEMPTS: u32 = 8;

/// Removes test tokens whose objects are untouched for [`STALE_AFTER`]. Best effort: a token it cannot judge or
/// remove stays.
fn remove_stale_tokens(token_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(token_dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(object) = std::fs::read(path.join("token.object")) else {
            continue;
        };
        let is_test_token = object
            .windows(LABEL_PREFIX.len())
            .any(|window| window == LABEL_PREFIX.as_bytes());
        let newest_change = std::fs::read_dir(&path)
            .into_iter()
            .flatten()
            .flatten()
            // SoftHSM2 rewrites `generation` whenever a process loads the token directory.
            .filter(|file| file.file_name() != "generation")
            .filter_map(|file| file.metadata().and_then(|meta| meta.modified()).ok())
            .max();
        let stale = newest_change
            .and_then(|changed| now.duration_since(changed).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if is_test_token && stale {
            let _ignored = std::fs::remove_dir_all(&path);
        }
    }
}

fn uuid_suffix() -> String {
    let mut bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

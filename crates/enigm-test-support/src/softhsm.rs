//! A throwaway SoftHSM2 token for tests of PKCS#11 signing.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when its module is initialised; `.cargo/config.toml` points it
//! at `target/softhsm2/softhsm2.conf`, which [`SoftHsmToken::create`] writes (token directory
//! beside it) on first use. Each call initialises a new token with a unique label and random
//! PINs, so tests in one process never share keys. `scripts/test` installs softhsm2; when it is
//! missing the fixture fails naming the package, or, with `ENIGM_SKIP_SOFTHSM=1`, answers `None`
//! after saying so loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    #[expect(
        clippy::panic,
        clippy::expect_used,
        reason = "test fixture: a broken set-up is the test's failure, said plainly"
    )]
    pub fn create() -> Option<SoftHsmToken> {
        let module = MODULES.iter().map(Path::new).find(|path| path.exists());
        let tool = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok();
        let (Some(module), true) = (module, tool) else {
            if std::env::var("ENIGM_SKIP_SOFTHSM").as_deref() == Ok("1") {
                eprintln!(
                    "!!! SKIPPED: softhsm2 is not installed and ENIGM_SKIP_SOFTHSM=1; the PKCS#11 \
                     signing tests did not run !!!"
                );
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
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("token directory");
        if !conf.exists() {
            let text = format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            );
            let temporary = dir.join(format!("softhsm2.conf.{}", uuid_suffix()));
            std::fs::write(&temporary, text).expect("SoftHSM2 configuration");
            std::fs::rename(&temporary, &conf).expect("SoftHSM2 configuration");
        }
        let suffix = uuid_suffix();
        let label = format!("enigm-test-{suffix}");
        let pin = format!(
            "{}",
            100_000 + (u64::from_str_radix(&suffix[..8], 16).unwrap_or(7) % 900_000)
        );
        let so_pin = format!("so-{suffix}");
        let status = Command::new("softhsm2-util")
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
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util runs");
        assert!(
            status.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        Some(SoftHsmToken {
            module: module.to_path_buf(),
            label,
            pin,
            conf,
        })
    }
}

fn uuid_suffix() -> String {
    let mut bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

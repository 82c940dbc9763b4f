//! A real software TPM for tests: `swtpm` on loopback ports, driven by tpm2-tools.
//!
//! `scripts/test` installs swtpm and tpm2-tools. [`Swtpm::start`] answers `None` only when they
//! are missing and `ENIGM_SKIP_TPM=1` is set (after saying so loudly); missing without that
//! variable fails the test, naming the packages.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running swtpm with its state in a temporary directory; killed on drop.
pub struct Swtpm {
    child: Child,
    dir: tempfile::TempDir,
    tcti: String,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One quote, as tpm2-tools writes it.
pub struct Quote {
    /// The `TPMS_ATTEST` the TPM signed.
    pub attest: Vec<u8>,
    /// Its `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
    /// The SHA-256 values of the quoted PCRs.
    pub pcrs: BTreeMap<u8, [u8; 32]>,
}

fn tool_present(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port_pair() -> u16 {
    loop {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(address) = listener.local_addr() else {
            continue;
        };
        drop(listener);
        let port = address.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Swtpm {
    /// Starts a fresh TPM, or `None` when the tools are missing and `ENIGM_SKIP_TPM` is set.
    ///
    /// # Panics
    /// When the tools are missing without `ENIGM_SKIP_TPM`, or swtpm does not start.
    #[expect(
        clippy::panic,
        clippy::expect_used,
        reason = "a test fixture: failing is the report"
    )]
    pub fn start() -> Option<Swtpm> {
        if !(tool_present("swtpm") && tool_present("tpm2_quote")) {
            assert!(
                std::env::var_os("ENIGM_SKIP_TPM").is_some(),
                "swtpm and tpm2-tools are needed for the TPM tests: run scripts/test, which \
                 installs them (apt packages swtpm swtpm-tools tpm2-tools), or set \
                 ENIGM_SKIP_TPM=1"
            );
            eprintln!("SKIPPED: swtpm or tpm2-tools missing and ENIGM_SKIP_TPM is set");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.path().display()))
            .args([
                "--server",
                &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
            ])
            .args([
                "--ctrl",
                &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm starts");
        let tpm = Swtpm {
            child,
            dir,
            tcti: format!("swtpm:host=127.0.0.1,port={port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                panic!("swtpm did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(tpm)
    }

    /// A file in the TPM's working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a tpm2-tools command against this TPM, then flushes the transient objects and
    /// sessions the tools leave loaded (a TPM holds only a few).
    ///
    /// # Panics
    /// When the command fails.
    #[expect(clippy::expect_used, reason = "a test fixture: failing is the report")]
    pub fn run(&self, tool: &str, args: &[&str]) {
        let output = Command::new(tool)
            .args(args)
            .current_dir(self.dir.path())
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .output()
            .expect("tpm2-tools run");
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for flush in ["-t", "-s"] {
            let _ = Command::new("tpm2_flushcontext")
                .arg(flush)
                .current_dir(self.dir.path())
                .env("TPM2TOOLS_TCTI", &self.tcti)
                .output();
        }
    }

    /// Creates the endorsement key (once) and an attestation key `name` of `kind` (`rsa` or
    /// `ecc`); answers its `TPM2B_PUBLIC`.
    ///
    /// # Panics
    /// When a tool fails.
    #[expect(clippy::expect_used, reason = "a test fixture: failing is the report")]
    pub fn create_ak(&self, name: &str, kind: &str) -> Vec<u8> {
        if !self.path("ek.ctx").exists() {
            self.run(
                "tpm2_createek",
                &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
            );
        }
        let scheme = if kind == "rsa" { "rsassa" } else { "ecdsa" };
        let context = format!("{name}.ctx");
        let public = format!("{name}.pub");
        let tpm_name = format!("{name}.name");
        self.run(
            "tpm2_createak",
            &[
                "-C", "ek.ctx", "-c", &context, "-G", kind, "-g", "sha256", "-s", scheme, "-u",
                &public, "-n", &tpm_name,
            ],
        );
        std::fs::read(self.path(&public)).expect("the AK public area")
    }

    /// Extends PCR 16 (the debug PCR) with a digest of `byte` repeated.
    pub fn extend_pcr16(&self, byte: char) {
        let digest: String = std::iter::repeat_n(byte, 64).collect();
        self.run("tpm2_pcrextend", &[&format!("16:sha256={digest}")]);
    }

    /// Quotes SHA-256 PCRs 0, 1 and 16 with attestation key `ak` over `qualifying_data`.
    ///
    /// # Panics
    /// When a tool fails.
    #[expect(clippy::expect_used, reason = "a test fixture: failing is the report")]
    pub fn quote(&self, ak: &str, qualifying_data: &[u8]) -> Quote {
        let hex: String = qualifying_data.iter().map(|b| format!("{b:02x}")).collect();
        let context = format!("{ak}.ctx");
        self.run(
            "tpm2_quote",
            &[
                "-c",
                &context,
                "-l",
                "sha256:0,1,16",
                "-q",
                &hex,
                "-m",
                "quote.msg",
                "-s",
                "quote.sig",
                "-o",
                "quote.pcrs",
                "-g",
                "sha256",
            ],
        );
        self.run("tpm2_pcrread", &["sha256:0,1,16", "-o", "pcrs.bin"]);
        let values = std::fs::read(self.path("pcrs.bin")).expect("PCR values");
        let pcrs = [0u8, 1, 16]
            .into_iter()
            .zip(values.chunks_exact(32))
            .filter_map(|(index, value)| Some((index, <[u8; 32]>::try_from(value).ok()?)))
            .collect();
        Quote {
            attest: std::fs::read(self.path("quote.msg")).expect("the quote"),
            signature: std::fs::read(self.path("quote.sig")).expect("the signature"),
            pcrs,
        }
    }
}

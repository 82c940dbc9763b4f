//! A real software TPM for tests and benchmarks: swtpm on two free loopback ports with its state
//! in a fresh directory, driven by tpm2-tools (`TPM2TOOLS_TCTI=swtpm:host=…,port=…`). Killed and
//! removed on drop. Each caller starts its own, so tests can run in parallel.
//!
//! The files tpm2-tools writes are the marshalled structures `enigm_attest::tpm` reads:
//! `tpm2_createak -u` a `TPM2B_PUBLIC`, `-n` the key's 34-byte Name, `tpm2_quote -m` the
//! `TPMS_ATTEST`, `-s` the `TPMT_SIGNATURE`, and `tpm2_pcrread -o` the raw concatenated digests.
//!
//! `scripts/test` installs swtpm and tpm2-tools (apt packages `swtpm swtpm-tools tpm2-tools`).
//! Without them [`Swtpm::start`] fails the test, saying so, unless `ENIGM_SKIP_TPM=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: failing loudly is the point"
)]
#![allow(
    dead_code,
    reason = "shared by the swtpm test and the benchmark, which use different parts"
)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to skip the swtpm tests (they print that they skipped).
pub(crate) const SKIP_VAR: &str = "ENIGM_SKIP_TPM";

/// The programs the tests run.
const TOOLS: [&str; 9] = [
    "swtpm",
    "tpm2_createek",
    "tpm2_createak",
    "tpm2_createprimary",
    "tpm2_readpublic",
    "tpm2_quote",
    "tpm2_pcrread",
    "tpm2_pcrextend",
    "tpm2_flushcontext",
];

/// The PCRs every quote here covers, in the form tpm2-tools takes.
pub(crate) const PCR_LIST: &str = "sha256:0,1,16";
pub(crate) const PCRS: [u8; 3] = [0, 1, 16];

/// The kinds of attestation key `tpm2_createak` makes here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AkKind {
    /// RSA 2048 signing with RSASSA-PKCS1-v1_5 and SHA-256.
    Rsassa,
    /// RSA 2048 signing with RSASSA-PSS and SHA-256.
    Rsapss,
    /// ECC NIST P-256 signing with ECDSA and SHA-256.
    Ecdsa,
}

impl AkKind {
    fn key_alg(self) -> &'static str {
        match self {
            AkKind::Rsassa | AkKind::Rsapss => "rsa",
            AkKind::Ecdsa => "ecc",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            AkKind::Rsassa => "rsassa",
            AkKind::Rsapss => "rsapss",
            AkKind::Ecdsa => "ecdsa",
        }
    }
}

/// An attestation key in the TPM: its context file and what `tpm2_createak` wrote.
pub(crate) struct Ak {
    pub(crate) kind: AkKind,
    context: String,
    /// The marshalled `TPM2B_PUBLIC`.
    pub(crate) public: Vec<u8>,
    /// The key's Name (`0x000b` and the SHA-256 of its `TPMT_PUBLIC`).
    pub(crate) name: Vec<u8>,
}

/// What a device sends: the signed structure, its signature and its claimed PCR values.
#[derive(Clone)]
pub(crate) struct Quote {
    pub(crate) attest: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) pcrs: BTreeMap<u8, [u8; 32]>,
}

/// A running swtpm; killed, and its state removed, on drop.
pub(crate) struct Swtpm {
    child: Child,
    dir: PathBuf,
    tcti: String,
    files: AtomicU32,
}

impl Swtpm {
    /// Starts a fresh swtpm, or returns `None` (after saying so loudly) when
    /// `ENIGM_SKIP_TPM=1`. Panics when swtpm or tpm2-tools are missing.
    pub(crate) fn start(test: &str) -> Option<Swtpm> {
        if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
            eprintln!("!!! {test}: SKIPPED ({SKIP_VAR}=1): swtpm TPM 2.0 quotes NOT tested !!!");
            return None;
        }
        let missing: Vec<&str> = TOOLS.into_iter().filter(|tool| !on_path(tool)).collect();
        assert!(
            missing.is_empty(),
            "{test}: missing {missing:?}. The TPM tests need a real software TPM: scripts/test \
             installs it (apt-get install swtpm swtpm-tools tpm2-tools); or set \
             {SKIP_VAR}=1 to skip these tests"
        );
        let mut last_error = String::new();
        for _ in 0..5 {
            match Swtpm::try_start() {
                Ok(tpm) => return Some(tpm),
                Err(error) => last_error = error,
            }
        }
        panic!("{test}: swtpm did not start: {last_error}");
    }

    fn try_start() -> Result<Swtpm, String> {
        static INSTANCE: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "enigm-swtpm-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
        // The swtpm TCTI of tpm2-tss finds the control channel at the server's port + 1.
        let server = free_port_pair();
        let ctrl = server + 1;
        let log = std::fs::File::create(dir.join("swtpm.log")).map_err(|e| e.to_string())?;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={server},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot run swtpm: {error}"))?;
        let mut tpm = Swtpm {
            child,
            dir,
            tcti: format!("swtpm:host=127.0.0.1,port={server}"),
            files: AtomicU32::new(0),
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = tpm.child.try_wait() {
                let log = std::fs::read_to_string(tpm.dir.join("swtpm.log")).unwrap_or_default();
                return Err(format!("swtpm exited ({status}): {log}"));
            }
            if TcpStream::connect(("127.0.0.1", server)).is_ok() {
                return Ok(tpm);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err("swtpm did not listen within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs a tpm2-tools program against this TPM and then flushes the transient objects and
    /// sessions it left loaded (without a resource manager the TPM holds only a few).
    pub(crate) fn run(&self, tool: &str, args: &[&str]) -> Output {
        let output = self.command(tool, args);
        assert!(
            output.status.success(),
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        for flush in ["-t", "-s"] {
            self.command("tpm2_flushcontext", &[flush]);
        }
        output
    }

    fn command(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(tool)
            .args(args)
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {tool}: {error}"))
    }

    pub(crate) fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap_or_else(|error| panic!("{file}: {error}"))
    }

    /// A file name not used before in this TPM's directory.
    fn fresh(&self, stem: &str) -> String {
        format!("{stem}-{}", self.files.fetch_add(1, Ordering::Relaxed))
    }

    /// The endorsement key (created on first use) under which attestation keys are made.
    pub(crate) fn endorsement_key_public(&self) -> Vec<u8> {
        if !self.dir.join("ek.ctx").exists() {
            self.run(
                "tpm2_createek",
                &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
            );
        }
        self.read("ek.pub")
    }

    /// Creates an attestation key under the endorsement key, as a device does at enrollment.
    pub(crate) fn create_ak(&self, kind: AkKind) -> Ak {
        self.endorsement_key_public();
        let stem = self.fresh("ak");
        let (context, public, name) = (
            format!("{stem}.ctx"),
            format!("{stem}.pub"),
            format!("{stem}.name"),
        );
        self.run(
            "tpm2_createak",
            &[
                "-C",
                "ek.ctx",
                "-c",
                &context,
                "-G",
                kind.key_alg(),
                "-g",
                "sha256",
                "-s",
                kind.scheme(),
                "-u",
                &public,
                "-n",
                &name,
            ],
        );
        Ak {
            kind,
            public: self.read(&public),
            name: self.read(&name),
            context,
        }
    }

    /// An unrestricted signing key (a primary in the owner hierarchy): it would sign anything,
    /// including bytes dressed up as a quote.
    pub(crate) fn unrestricted_signing_key_public(&self) -> Vec<u8> {
        let stem = self.fresh("signer");
        let (context, public) = (format!("{stem}.ctx"), format!("{stem}.pub"));
        self.run(
            "tpm2_createprimary",
            &[
                "-C",
                "o",
                "-G",
                "ecc",
                "-a",
                "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
                "-c",
                &context,
            ],
        );
        self.run("tpm2_readpublic", &["-c", &context, "-o", &public]);
        self.read(&public)
    }

    /// Extends SHA-256 PCR 16 (the debug PCR, resettable and unused by firmware) with `digest`.
    pub(crate) fn extend_pcr16(&self, digest: [u8; 32]) {
        self.run(
            "tpm2_pcrextend",
            &[&format!("16:sha256={}", hex::encode(digest))],
        );
    }

    /// Quotes PCRs 0, 1 and 16 of the SHA-256 bank with `ak` over `nonce`, and reads their
    /// values: what a device sends.
    pub(crate) fn quote(&self, ak: &Ak, nonce: &[u8]) -> Quote {
        let stem = self.fresh("quote");
        let (message, signature, pcrs) = (
            format!("{stem}.msg"),
            format!("{stem}.sig"),
            format!("{stem}.pcrs"),
        );
        self.run(
            "tpm2_quote",
            &[
                "-c",
                &ak.context,
                "-l",
                PCR_LIST,
                "-q",
                &hex::encode(nonce),
                "-m",
                &message,
                "-s",
                &signature,
                "-g",
                "sha256",
                "--scheme",
                ak.kind.scheme(),
            ],
        );
        self.run("tpm2_pcrread", &[PCR_LIST, "-o", &pcrs]);
        let values = self.read(&pcrs);
        assert_eq!(values.len(), 32 * PCRS.len(), "tpm2_pcrread -o output");
        Quote {
            attest: self.read(&message),
            signature: self.read(&signature),
            pcrs: PCRS
                .into_iter()
                .zip(values.chunks_exact(32))
                .map(|(index, value)| (index, value.try_into().unwrap()))
                .collect(),
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// A free loopback port whose successor is free too (as far as one can tell before binding).
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

//! Signal collectors for a Linux host.
//!
//! Each collector is a small function over a root directory (`/` on a real host, a fake tree in
//! tests) and the observation time, and returns one [`Signal`] with source `collector`. They
//! never panic and fail closed: a file that is missing or unreadable, or contents they do not
//! recognise, give `not-measurable`, never `ok`.
//!
//! The kinds collected, and why only these:
//!
//! | kind | evidence |
//! |---|---|
//! | `secure-boot` | the UEFI `SecureBoot` variable |
//! | `kernel-lockdown` | `/sys/kernel/security/lockdown` |
//! | `tpm` | `/sys/class/tpm/tpm0` |
//! | `disk-encryption` | dm-crypt mappings under `/sys/block/dm-*/dm/uuid` |
//! | `mandatory-access-control` | `/sys/kernel/security/lsm` with SELinux enforcing or AppArmor |
//! | `firewall` | netfilter tables in `/proc/net` and `/sys/module` |
//! | `encrypted-dns` | `DNSOverTLS=` in systemd-resolved's configuration |
//! | `security-service`, `signal-collector` | always `ok`, see [`agent_signals`] |
//!
//! Kinds a generic Linux host cannot show (device integrity, verified boot, screen lock, USB
//! restriction, ...) are left out of the report rather than reported `not-measurable`: the Trust
//! State Engine treats a missing critical signal exactly like an unmeasurable one (INACTIVE), and
//! a report that lists only what was measured stays small. Device integrity arrives with remote
//! attestation.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use enigm_trust::{Signal, SignalKind, SignalReport, SignalSource, SignalValue};
use enigm_types::Timestamp;

pub(crate) use crate::core::signals::report_from;

/// The largest file a collector reads; everything it reads is a few bytes of sysfs or a small
/// configuration file.
const MAX_READ: u64 = 64 * 1024;

/// The EFI global-variable GUID under which firmware publishes `SecureBoot`.
const SECURE_BOOT_VAR: &str =
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Runs every collector against `root` and returns their signals, one per kind.
pub(crate) fn collect_signals(root: &Path, now: Timestamp) -> Vec<Signal> {
    let mut signals = vec![
        secure_boot(root, now),
        kernel_lockdown(root, now),
        tpm(root, now),
        disk_encryption(root, now),
        mandatory_access_control(root, now),
        firewall(root, now),
        encrypted_dns(root, now),
    ];
    signals.extend(agent_signals(now));
    signals
}

/// The report of this host: every collector's signal, and no patch level (a generic Linux host
/// has no security patch level in the Android sense).
pub(crate) fn collect_report(root: &Path, now: Timestamp) -> SignalReport {
    report_from(collect_signals(root, now), None)
}

/// `security-service` and `signal-collector`: the agent is EnigmSecurityService and is, at this
/// moment, collecting signals, so both are `ok` by construction. When the agent is not running
/// there is no report at all, which the engine sees as missing or stale signals (INACTIVE); that
/// is how their failure shows, not through a value the agent could report about itself.
pub(crate) fn agent_signals(now: Timestamp) -> [Signal; 2] {
    [
        signal(SignalKind::SecurityService, SignalValue::Ok, now),
        signal(SignalKind::SignalCollector, SignalValue::Ok, now),
    ]
}

/// `secure-boot`: the fifth byte of the `SecureBoot` EFI variable (after four bytes of
/// attributes) is 1 when Secure Boot is enforcing, 0 when it is off. A host without
/// `/sys/firmware/efi` booted without UEFI and cannot show Secure Boot; an unreadable variable or
/// any other contents are not measurable.
pub(crate) fn secure_boot(root: &Path, now: Timestamp) -> Signal {
    let value = match read_bytes(&root.join(SECURE_BOOT_VAR)) {
        Some(bytes) if bytes.len() == 5 => match bytes.get(4) {
            Some(1) => SignalValue::Ok,
            Some(0) => SignalValue::Failed,
            _ => SignalValue::NotMeasurable,
        },
        _ => SignalValue::NotMeasurable,
    };
    signal(SignalKind::SecureBoot, value, now)
}

/// `kernel-lockdown`: `/sys/kernel/security/lockdown` lists the modes with the active one in
/// brackets, e.g. `none [integrity] confidentiality`. `integrity` or `confidentiality` is `ok`,
/// `none` is `failed`.
pub(crate) fn kernel_lockdown(root: &Path, now: Timestamp) -> Signal {
    let selected = read_text(&root.join("sys/kernel/security/lockdown")).and_then(|text| {
        text.split_whitespace()
            .find_map(|word| word.strip_prefix('[')?.strip_suffix(']').map(str::to_owned))
    });
    let value = match selected.as_deref() {
        Some("integrity" | "confidentiality") => SignalValue::Ok,
        Some("none") => SignalValue::Failed,
        _ => SignalValue::NotMeasurable,
    };
    signal(SignalKind::KernelLockdown, value, now)
}

/// `tpm`: the kernel registered a TPM as `/sys/class/tpm/tpm0`. Its absence may mean no TPM or
/// no driver, so it is not measurable rather than failed.
pub(crate) fn tpm(root: &Path, now: Timestamp) -> Signal {
    let value = match fs::metadata(root.join("sys/class/tpm/tpm0")) {
        Ok(_) => SignalValue::Ok,
        Err(_) => SignalValue::NotMeasurable,
    };
    signal(SignalKind::Tpm, value, now)
}

/// `disk-encryption`: some device-mapper device under `/sys/block/dm-*` has a `dm/uuid` that
/// cryptsetup gave an encrypting target (`CRYPT-LUKS2-…`, `CRYPT-PLAIN-…`, …). cryptsetup
/// also names dm-verity and dm-integrity devices `CRYPT-VERITY-`, `CRYPT-INTEGRITY-` and
/// `CRYPT-SUBDEV-`; those encrypt nothing and do not count.
///
/// `failed` needs evidence: disks are present (anything but `loop`, `ram` and `zram` devices)
/// and every device-mapper uuid was read and none is an encrypting one. A missing or unreadable
/// `/sys/block` is not measurable. This says that an encrypted volume exists, not that every
/// file system lives on one.
pub(crate) fn disk_encryption(root: &Path, now: Timestamp) -> Signal {
    let value = match fs::read_dir(root.join("sys/block")) {
        Err(_) => SignalValue::NotMeasurable,
        Ok(entries) => {
            let mut disks = false;
            let mut unreadable = false;
            let mut encrypted = false;
            for entry in entries {
                let Ok(entry) = entry else {
                    unreadable = true;
                    continue;
                };
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if ["loop", "ram", "zram"]
                    .iter()
                    .any(|virtual_device| name.starts_with(virtual_device))
                {
                    continue;
                }
                disks = true;
                if name.starts_with("dm-") {
                    match read_text(&entry.path().join("dm/uuid")) {
                        Some(uuid) if is_encrypting_dm_uuid(uuid.trim()) => encrypted = true,
                        Some(_) => {}
                        None => unreadable = true,
                    }
                }
            }
            if encrypted {
                SignalValue::Ok
            } else if unreadable || !disks {
                SignalValue::NotMeasurable
            } else {
                SignalValue::Failed
            }
        }
    };
    signal(SignalKind::DiskEncryption, value, now)
}

fn is_encrypting_dm_uuid(uuid: &str) -> bool {
    uuid.starts_with("CRYPT-")
        && !["CRYPT-VERITY", "CRYPT-INTEGRITY", "CRYPT-SUBDEV"]
            .iter()
            .any(|not_encrypting| uuid.starts_with(not_encrypting))
}

/// `mandatory-access-control`: `/sys/kernel/security/lsm` lists the active security modules.
/// `ok` when SELinux is listed and `/sys/fs/selinux/enforce` is `1`, or AppArmor is listed and
/// its securityfs directory `/sys/kernel/security/apparmor` exists. SELinux in permissive mode
/// (`enforce` is `0`) is `degraded`. Neither module listed is `failed`; a module listed whose
/// state cannot be read, or no readable `lsm`, is not measurable.
pub(crate) fn mandatory_access_control(root: &Path, now: Timestamp) -> Signal {
    let value = match read_text(&root.join("sys/kernel/security/lsm")) {
        None => SignalValue::NotMeasurable,
        Some(list) => {
            let listed = |module: &str| list.trim().split(',').any(|name| name == module);
            let selinux = listed("selinux").then(|| {
                match read_text(&root.join("sys/fs/selinux/enforce"))
                    .as_deref()
                    .map(str::trim)
                {
                    Some("1") => SignalValue::Ok,
                    Some("0") => SignalValue::Degraded,
                    _ => SignalValue::NotMeasurable,
                }
            });
            let apparmor = listed("apparmor").then(|| {
                match fs::metadata(root.join("sys/kernel/security/apparmor")) {
                    Ok(meta) if meta.is_dir() => SignalValue::Ok,
                    _ => SignalValue::NotMeasurable,
                }
            });
            let found = [selinux, apparmor];
            let any = |value| found.contains(&Some(value));
            if any(SignalValue::Ok) {
                SignalValue::Ok
            } else if any(SignalValue::Degraded) {
                SignalValue::Degraded
            } else if any(SignalValue::NotMeasurable) {
                SignalValue::NotMeasurable
            } else {
                SignalValue::Failed
            }
        }
    };
    signal(SignalKind::MandatoryAccessControl, value, now)
}

/// `firewall`, conservatively. An unprivileged process cannot read netfilter rules (that takes
/// netlink and `CAP_NET_ADMIN`), so the evidence is which tables the kernel has:
///
/// - `ok`: `/proc/net/ip_tables_names` or `/proc/net/ip6_tables_names` lists a `filter` table;
/// - `not-measurable`: otherwise, if nftables is loaded (`/sys/module/nf_tables`), since its
///   ruleset is not readable here;
/// - `failed`: iptables is loaded (a names file is readable) but has no `filter` table and
///   nftables is not loaded;
/// - `not-measurable`: nothing readable at all.
///
/// A `filter` table shows that packet filtering was set up, not what the rules allow.
pub(crate) fn firewall(root: &Path, now: Timestamp) -> Signal {
    let tables: Vec<String> = ["proc/net/ip_tables_names", "proc/net/ip6_tables_names"]
        .iter()
        .filter_map(|file| read_text(&root.join(file)))
        .collect();
    let filter = tables
        .iter()
        .any(|names| names.lines().any(|name| name.trim() == "filter"));
    let nftables = fs::metadata(root.join("sys/module/nf_tables")).is_ok();
    let value = if filter {
        SignalValue::Ok
    } else if nftables || tables.is_empty() {
        SignalValue::NotMeasurable
    } else {
        SignalValue::Failed
    };
    signal(SignalKind::Firewall, value, now)
}

/// `encrypted-dns`: systemd-resolved's `DNSOverTLS=` setting in the `[Resolve]` section of
/// `/etc/systemd/resolved.conf` and then `/etc/systemd/resolved.conf.d/*.conf` in lexical order,
/// the last one winning as in systemd. `yes` (or `true`, `1`, `on`) is `ok`, `opportunistic` is
/// `degraded` (it falls back to clear text), anything else or no setting is `failed` (resolved's
/// default is `no`). Without any of these files the host may use another resolver, so it is not
/// measurable. This reads the configuration, not whether resolved is the resolver in use.
pub(crate) fn encrypted_dns(root: &Path, now: Timestamp) -> Signal {
    let main = root.join("etc/systemd/resolved.conf");
    let mut files = vec![main];
    if let Ok(entries) = fs::read_dir(root.join("etc/systemd/resolved.conf.d")) {
        let mut drop_ins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
            .collect();
        drop_ins.sort();
        files.extend(drop_ins);
    }
    let mut seen = false;
    let mut setting: Option<String> = None;
    for file in &files {
        let Some(text) = read_text(file) else {
            continue;
        };
        seen = true;
        if let Some(value) = dns_over_tls(&text) {
            setting = Some(value);
        }
    }
    let value = if !seen {
        SignalValue::NotMeasurable
    } else {
        match setting.as_deref() {
            Some("yes" | "true" | "1" | "on") => SignalValue::Ok,
            Some("opportunistic") => SignalValue::Degraded,
            _ => SignalValue::Failed,
        }
    };
    signal(SignalKind::EncryptedDns, value, now)
}

/// The last `DNSOverTLS=` value of the `[Resolve]` section of one resolved.conf file.
fn dns_over_tls(text: &str) -> Option<String> {
    let mut in_resolve = false;
    let mut value = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_resolve = line == "[Resolve]";
            continue;
        }
        if let Some((key, setting)) = line.split_once('=')
            && in_resolve
            && key.trim() == "DNSOverTLS"
        {
            value = Some(setting.trim().to_ascii_lowercase());
        }
    }
    value
}

fn signal(kind: SignalKind, value: SignalValue, now: Timestamp) -> Signal {
    Signal {
        kind,
        value,
        observed_at: now,
        source: SignalSource::Measured,
    }
}

/// At most [`MAX_READ`] bytes of a file; `None` when it cannot be read or is larger.
fn read_bytes(path: &Path) -> Option<Vec<u8>> {
    let file = fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_READ).then_some(bytes)
}

fn read_text(path: &Path) -> Option<String> {
    String::from_utf8(read_bytes(path)?).ok()
}

#[cfg(test)]
mod tests;

use std::path::Path;

use enigm_trust::{SignalKind, SignalSource, SignalValue};
use enigm_types::Timestamp;
use tempfile::TempDir;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_millis(1_790_000_000_000);

/// A fake root: `"path"` entries ending in `/` are directories, the others files.
fn tree(entries: &[(&str, &[u8])]) -> TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, contents) in entries {
        let full = root.path().join(path);
        if path.ends_with('/') {
            fs::create_dir_all(&full).unwrap();
        } else {
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(&full, contents).unwrap();
        }
    }
    root
}

type Collector = fn(&Path, Timestamp) -> Signal;

/// A fake tree and the value a collector should read from it.
type Case<'a> = (&'a [(&'a str, &'a [u8])], SignalValue);

/// Runs `collector` over a tree of `entries` and checks the value, the kind, the source and the
/// observation time.
fn check(collector: Collector, kind: SignalKind, entries: &[(&str, &[u8])], expect: SignalValue) {
    let root = tree(entries);
    let signal = collector(root.path(), NOW);
    assert_eq!(signal.value, expect, "{kind} over {entries:?}");
    assert_eq!(signal.kind, kind);
    assert_eq!(signal.source, SignalSource::Measured);
    assert_eq!(signal.observed_at, NOW);
}

#[test]
fn secure_boot_reads_the_fifth_byte_of_the_efi_variable() {
    use SignalValue::*;
    let var = SECURE_BOOT_VAR;
    let cases: &[Case<'_>] = &[
        (&[(var, &[6, 0, 0, 0, 1])], Ok),
        (&[(var, &[6, 0, 0, 0, 0])], Failed),
        (&[(var, &[6, 0, 0, 0, 2])], NotMeasurable),
        (&[(var, &[6, 0, 0, 0])], NotMeasurable),
        (&[(var, &[6, 0, 0, 0, 1, 1])], NotMeasurable),
        (&[(var, b"")], NotMeasurable),
        (&[("sys/firmware/efi/efivars/", b"")], NotMeasurable),
        (&[("sys/firmware/", b"")], NotMeasurable),
        (&[], NotMeasurable),
    ];
    for (entries, expect) in cases {
        check(secure_boot, SignalKind::SecureBoot, entries, *expect);
    }
}

#[test]
fn kernel_lockdown_reads_the_bracketed_mode() {
    use SignalValue::*;
    let file = "sys/kernel/security/lockdown";
    let cases: &[(&[u8], SignalValue)] = &[
        (b"none [integrity] confidentiality\n", Ok),
        (b"none integrity [confidentiality]\n", Ok),
        (b"[none] integrity confidentiality\n", Failed),
        (b"none integrity confidentiality\n", NotMeasurable),
        (b"[bogus] integrity\n", NotMeasurable),
        (b"", NotMeasurable),
        (&[0xff, 0xfe, b'[', b']'], NotMeasurable),
    ];
    for (contents, expect) in cases {
        check(
            kernel_lockdown,
            SignalKind::KernelLockdown,
            &[(file, contents)],
            *expect,
        );
    }
    check(
        kernel_lockdown,
        SignalKind::KernelLockdown,
        &[],
        NotMeasurable,
    );
}

#[test]
fn tpm_is_ok_only_when_the_kernel_registered_one() {
    check(
        tpm,
        SignalKind::Tpm,
        &[("sys/class/tpm/tpm0/", b"")],
        SignalValue::Ok,
    );
    check(
        tpm,
        SignalKind::Tpm,
        &[("sys/class/tpm/", b"")],
        SignalValue::NotMeasurable,
    );
    check(tpm, SignalKind::Tpm, &[], SignalValue::NotMeasurable);
}

#[test]
fn disk_encryption_needs_an_encrypting_dm_crypt_mapping() {
    use SignalValue::*;
    let luks: &[u8] = b"CRYPT-LUKS2-1234abcd-root\n";
    let cases: &[Case<'_>] = &[
        (
            &[("sys/block/sda/", b""), ("sys/block/dm-0/dm/uuid", luks)],
            Ok,
        ),
        (&[("sys/block/dm-3/dm/uuid", b"CRYPT-PLAIN-swap")], Ok),
        (
            &[
                ("sys/block/dm-0/dm/uuid", b"LVM-abc"),
                ("sys/block/dm-1/dm/uuid", luks),
            ],
            Ok,
        ),
        (
            &[("sys/block/sda/", b""), ("sys/block/nvme0n1/", b"")],
            Failed,
        ),
        (
            &[
                ("sys/block/sda/", b""),
                ("sys/block/dm-0/dm/uuid", b"LVM-xyz"),
            ],
            Failed,
        ),
        (
            &[("sys/block/dm-0/dm/uuid", b"CRYPT-VERITY-abc-usr")],
            Failed,
        ),
        (
            &[("sys/block/dm-0/dm/uuid", b"CRYPT-INTEGRITY-abc")],
            Failed,
        ),
        (&[("sys/block/dm-0/dm/uuid", b"CRYPT-SUBDEV-abc")], Failed),
        // A device-mapper device whose uuid cannot be read could be the encrypted one.
        (
            &[("sys/block/sda/", b""), ("sys/block/dm-0/", b"")],
            NotMeasurable,
        ),
        // Only virtual devices: nothing to judge.
        (
            &[("sys/block/loop0/", b""), ("sys/block/zram0/", b"")],
            NotMeasurable,
        ),
        (&[("sys/block/", b"")], NotMeasurable),
        (&[], NotMeasurable),
    ];
    for (entries, expect) in cases {
        check(
            disk_encryption,
            SignalKind::DiskEncryption,
            entries,
            *expect,
        );
    }
}

#[test]
fn mandatory_access_control_needs_an_enforcing_module() {
    use SignalValue::*;
    let lsm = "sys/kernel/security/lsm";
    let enforce = "sys/fs/selinux/enforce";
    let apparmor = "sys/kernel/security/apparmor/";
    let cases: &[Case<'_>] = &[
        (&[(lsm, b"capability,selinux\n"), (enforce, b"1")], Ok),
        (&[(lsm, b"capability,selinux"), (enforce, b"0")], Degraded),
        (&[(lsm, b"capability,selinux")], NotMeasurable),
        (
            &[(lsm, b"capability,selinux"), (enforce, b"yes")],
            NotMeasurable,
        ),
        (
            &[(lsm, b"lockdown,capability,apparmor\n"), (apparmor, b"")],
            Ok,
        ),
        (&[(lsm, b"lockdown,capability,apparmor\n")], NotMeasurable),
        (
            &[(lsm, b"selinux,apparmor"), (enforce, b"0"), (apparmor, b"")],
            Ok,
        ),
        // The securityfs directory alone is not enough: the module must be active.
        (
            &[(lsm, b"capability,yama"), (apparmor, b""), (enforce, b"1")],
            Failed,
        ),
        (&[(lsm, b"capability,notselinux")], Failed),
        (&[(lsm, b"")], Failed),
        (&[], NotMeasurable),
    ];
    for (entries, expect) in cases {
        check(
            mandatory_access_control,
            SignalKind::MandatoryAccessControl,
            entries,
            *expect,
        );
    }
}

#[test]
fn firewall_is_ok_only_with_a_filter_table() {
    use SignalValue::*;
    let v4 = "proc/net/ip_tables_names";
    let v6 = "proc/net/ip6_tables_names";
    let nft = "sys/module/nf_tables/";
    let cases: &[Case<'_>] = &[
        (&[(v4, b"nat\nfilter\n")], Ok),
        (&[(v4, b""), (v6, b"filter\n")], Ok),
        (&[(v4, b"filter\n"), (nft, b"")], Ok),
        (&[(v4, b"nat\n")], Failed),
        (&[(v4, b"")], Failed),
        (&[(v4, b"nat\n"), (nft, b"")], NotMeasurable),
        (&[(nft, b"")], NotMeasurable),
        (&[(v4, b"filterx\n")], Failed),
        (&[], NotMeasurable),
    ];
    for (entries, expect) in cases {
        check(firewall, SignalKind::Firewall, entries, *expect);
    }
}

#[test]
fn encrypted_dns_follows_resolved_configuration() {
    use SignalValue::*;
    let main = "etc/systemd/resolved.conf";
    let cases: &[Case<'_>] = &[
        (&[(main, b"[Resolve]\nDNSOverTLS=yes\n")], Ok),
        (&[(main, b"[Resolve]\nDNSOverTLS = true\n")], Ok),
        (
            &[(main, b"[Resolve]\nDNSOverTLS=opportunistic\n")],
            Degraded,
        ),
        (&[(main, b"[Resolve]\nDNSOverTLS=no\n")], Failed),
        (&[(main, b"[Resolve]\n#DNSOverTLS=yes\n")], Failed),
        (&[(main, b"[Resolve]\nDNSOverTLS=maybe\n")], Failed),
        (&[(main, b"[Other]\nDNSOverTLS=yes\n")], Failed),
        (&[(main, b"")], Failed),
        // Drop-ins override the main file, the last in lexical order winning.
        (
            &[
                (main, b"[Resolve]\nDNSOverTLS=no\n"),
                (
                    "etc/systemd/resolved.conf.d/10-dot.conf",
                    b"[Resolve]\nDNSOverTLS=yes\n",
                ),
            ],
            Ok,
        ),
        (
            &[
                (
                    "etc/systemd/resolved.conf.d/10-dot.conf",
                    b"[Resolve]\nDNSOverTLS=yes\n",
                ),
                (
                    "etc/systemd/resolved.conf.d/20-off.conf",
                    b"[Resolve]\nDNSOverTLS=opportunistic\n",
                ),
            ],
            Degraded,
        ),
        // Files not ending in `.conf` are not read, as in systemd.
        (
            &[
                (main, b"[Resolve]\nDNSOverTLS=yes\n"),
                (
                    "etc/systemd/resolved.conf.d/off.conf.bak",
                    b"[Resolve]\nDNSOverTLS=no\n",
                ),
            ],
            Ok,
        ),
        (&[("etc/systemd/", b"")], NotMeasurable),
        (&[], NotMeasurable),
    ];
    for (entries, expect) in cases {
        check(encrypted_dns, SignalKind::EncryptedDns, entries, *expect);
    }
}

#[test]
fn oversized_files_are_not_read() {
    let huge = vec![b' '; 70 * 1024];
    let mut lockdown = huge.clone();
    lockdown.extend_from_slice(b"[integrity]");
    check(
        kernel_lockdown,
        SignalKind::KernelLockdown,
        &[("sys/kernel/security/lockdown", &lockdown)],
        SignalValue::NotMeasurable,
    );
}

#[test]
fn an_empty_root_reports_nothing_as_protected_but_the_agent_itself() {
    let root = tree(&[]);
    let report = collect_report(root.path(), NOW);
    assert_eq!(report.signals().len(), 9);
    assert_eq!(report.patch_level(), None);
    for signal in report.signals() {
        let expect = match signal.kind {
            SignalKind::SecurityService | SignalKind::SignalCollector => SignalValue::Ok,
            _ => SignalValue::NotMeasurable,
        };
        assert_eq!(signal.value, expect, "{}", signal.kind);
        assert_eq!(signal.source, SignalSource::Measured);
        assert_eq!(signal.observed_at, NOW);
    }
}

#[test]
fn a_hardened_host_reports_every_collected_protection_ok() {
    let root = tree(&[
        (SECURE_BOOT_VAR, &[6, 0, 0, 0, 1]),
        (
            "sys/kernel/security/lockdown",
            b"none [integrity] confidentiality\n",
        ),
        ("sys/class/tpm/tpm0/", b""),
        ("sys/block/nvme0n1/", b""),
        ("sys/block/dm-0/dm/uuid", b"CRYPT-LUKS2-0123-root\n"),
        ("sys/kernel/security/lsm", b"lockdown,capability,apparmor\n"),
        ("sys/kernel/security/apparmor/", b""),
        ("proc/net/ip_tables_names", b"filter\n"),
        ("etc/systemd/resolved.conf", b"[Resolve]\nDNSOverTLS=yes\n"),
    ]);
    let report = collect_report(root.path(), NOW);
    assert_eq!(report.signals().len(), 9);
    for signal in report.signals() {
        assert_eq!(signal.value, SignalValue::Ok, "{}", signal.kind);
    }
    // Device integrity needs attestation, so even this host is INACTIVE under the baseline.
    let evaluation = enigm_trust::evaluate(&report, &enigm_trust::TrustPolicy::baseline(), NOW);
    assert_eq!(evaluation.state, enigm_trust::TrustState::Inactive);
}

#[test]
fn report_from_keeps_the_first_signal_of_a_kind() {
    let first = Signal {
        kind: SignalKind::Tpm,
        value: SignalValue::Failed,
        observed_at: NOW,
        source: SignalSource::Declared,
    };
    let second = Signal {
        value: SignalValue::Ok,
        source: SignalSource::Measured,
        ..first
    };
    let report = report_from(vec![first, second], None);
    assert_eq!(report.signals(), &[first]);
}

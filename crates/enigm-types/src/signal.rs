//! The closed vocabulary of security signals: which protection a signal is about
//! ([`SignalKind`], each in one of the six [`SecurityLayer`]s), what it says ([`SignalValue`]) and
//! who produced it ([`SignalSource`]). The signals themselves, reports and their checks live in
//! `enigm-trust`; the names live here because findings name them and the store keeps findings.

use crate::device::SecurityLayer;
use crate::vocabulary::vocabulary;

vocabulary! {
    /// A kind of security signal.
    #[derive(PartialOrd, Ord)]
    pub enum SignalKind ("signal kind") {
        HardwareKeystore => "hardware-keystore",
        DeviceIntegrity => "device-integrity",
        BootloaderLocked => "bootloader-locked",
        Tpm => "tpm",
        SecureBoot => "secure-boot",
        VerifiedBoot => "verified-boot",
        OsSignature => "os-signature",
        RollbackProtection => "rollback-protection",
        OtaVerification => "ota-verification",
        KernelLockdown => "kernel-lockdown",
        MandatoryAccessControl => "mandatory-access-control",
        DiskEncryption => "disk-encryption",
        ScreenLock => "screen-lock",
        UsbRestricted => "usb-restricted",
        DebuggingDisabled => "debugging-disabled",
        UnknownSourcesBlocked => "unknown-sources-blocked",
        Firewall => "firewall",
        EncryptedDns => "encrypted-dns",
        Vpn => "vpn",
        Proxy => "proxy",
        NetworkPolicyCompliance => "network-policy-compliance",
        PolicyCompliance => "policy-compliance",
        SecurityService => "security-service",
        TrustEngine => "trust-engine",
        SignalCollector => "signal-collector",
        DeviceManagement => "device-management",
        AppIntegrity => "app-integrity",
        NoInstrumentation => "no-instrumentation",
        ActiveDefense => "active-defense",
        PrivacyMode => "privacy-mode",
    }
}

impl SignalKind {
    /// The number of kinds; a report holds at most one signal of each.
    pub const COUNT: usize = SignalKind::ALL.len();

    /// The security layer the protection belongs to (enigm-docs §5.1).
    pub const fn layer(self) -> SecurityLayer {
        use SecurityLayer as L;
        use SignalKind as S;
        match self {
            S::HardwareKeystore | S::DeviceIntegrity | S::BootloaderLocked | S::Tpm => {
                L::HardwareIntegrity
            }
            S::SecureBoot
            | S::VerifiedBoot
            | S::OsSignature
            | S::RollbackProtection
            | S::OtaVerification => L::VerifiedBoot,
            S::KernelLockdown
            | S::MandatoryAccessControl
            | S::DiskEncryption
            | S::ScreenLock
            | S::UsbRestricted
            | S::DebuggingDisabled
            | S::UnknownSourcesBlocked => L::OsHardening,
            S::Firewall
            | S::EncryptedDns
            | S::Vpn
            | S::Proxy
            | S::NetworkPolicyCompliance
            | S::PolicyCompliance => L::NetworkPolicy,
            S::SecurityService | S::TrustEngine | S::SignalCollector | S::DeviceManagement => {
                L::SecurityService
            }
            S::AppIntegrity | S::NoInstrumentation | S::ActiveDefense | S::PrivacyMode => {
                L::Application
            }
        }
    }

    /// Privacy Mode (camera and microphone blocked) is reported but is never a protection the
    /// trust state rests on (enigm-docs §5.4, §20 item 25).
    pub const fn is_informational(self) -> bool {
        matches!(self, SignalKind::PrivacyMode)
    }

    /// The kind's position in [`SignalKind::ALL`], below [`SignalKind::COUNT`]: its bit in a
    /// set of kinds.
    pub const fn index(self) -> u32 {
        self as u32
    }
}

vocabulary! {
    /// What a signal says about its protection.
    pub enum SignalValue ("signal value") {
        /// Active and behaving as expected.
        Ok => "ok",
        /// Active but weakened, or needing attention.
        Degraded => "degraded",
        /// Measured and not in place.
        Failed => "failed",
        /// The service that provides it is not running.
        Unavailable => "unavailable",
        /// The device cannot measure it.
        NotMeasurable => "not-measurable",
    }
}

vocabulary! {
    /// Which component produced a signal.
    pub enum SignalSource ("signal source") {
        /// A collector of EnigmSecurityService that measured the device.
        Collector => "collector",
        /// Declared by a device profile (simulated devices, and platforms without a collector).
        Profile => "profile",
        /// The Trust State Engine itself, e.g. for a signal it found missing or stale.
        Engine => "engine",
    }
}

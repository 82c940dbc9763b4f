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
    /// Which component produced a signal, strongest first (see [`SignalSource::strength`]).
    ///
    /// `measured` and `declared` were spelled `collector` and `profile` before provenance; the
    /// old names are still read (stored postures, older agents) and never written.
    pub enum SignalSource ("signal source") {
        /// Derived by Command from the claims of the device's attestation (boot state,
        /// bootloader lock, patch levels, TPM PCRs): evidence the device cannot forge.
        Attested => "attested",
        /// A collector of EnigmSecurityService that measured the device.
        #[serde(alias = "collector")]
        Measured => "measured",
        /// Declared by a device profile (simulated devices, and platforms without a collector).
        #[serde(alias = "profile")]
        Declared => "declared",
        /// The Trust State Engine itself, e.g. for a signal it found missing or stale.
        Engine => "engine",
    }
}

impl SignalSource {
    /// How much a value from this source can be believed: attested > measured > declared.
    /// The engine's own findings carry no evidence of a protection, so it ranks lowest.
    pub const fn strength(self) -> u8 {
        match self {
            SignalSource::Attested => 3,
            SignalSource::Measured => 2,
            SignalSource::Declared => 1,
            SignalSource::Engine => 0,
        }
    }

    /// Whether a value from this source meets a policy's `minimum`.
    pub const fn meets(self, minimum: SignalSource) -> bool {
        self.strength() >= minimum.strength()
    }

    /// The source spelled `text`, also under the names used before provenance (`collector`,
    /// `profile`): what stored rows and older agents say.
    pub fn from_name_or_alias(text: &str) -> Result<Self, crate::vocabulary::UnknownName> {
        match text {
            "collector" => Ok(SignalSource::Measured),
            "profile" => Ok(SignalSource::Declared),
            other => other.parse(),
        }
    }
}

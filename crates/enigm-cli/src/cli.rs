//! The command line of `enigm`: global flags and the top-level subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{admin, agent, audit, login, up};

/// Enigm: run Command (`enigm up`) and administer it.
#[derive(Debug, Parser)]
#[command(name = "enigm", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Command server URL, e.g. https://command.example:8443 (default: the one of the last login).
    /// `enigm simulate` takes it more than once and spreads its devices over the servers.
    #[arg(long = "server", env = "ENIGM_SERVER", global = true, value_name = "URL",
        action = clap::ArgAction::Append)]
    pub(crate) servers: Vec<String>,
    /// Print the raw JSON body of the response instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// PEM file with an extra CA certificate to trust (for a self-signed server certificate).
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Format of the log on stderr; the level comes from RUST_LOG (default: info for `up`,
    /// warn otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run Enigm Command, the control-plane server.
    // Boxed: its many flags would make every other variant as large.
    Up(Box<up::UpArgs>),
    /// Log in to a Command server and store the session token.
    Login(login::LoginArgs),
    /// End the stored session on the server and forget its token.
    Logout,
    /// Administer Command: accounts, roles, approvals, sessions and own credentials.
    Admin(admin::AdminArgs),
    /// Read the audit log, verify that it was not tampered with, and hold its bodies.
    Audit(audit::AuditArgs),
    /// Run the device agent (EnigmSecurityService): enroll once, then check in signed reports.
    Agent(agent::AgentArgs),
    /// Record the device's required setup steps (strong PIN, terms, network readiness); a
    /// device is "ready" for Command only when all are done.
    AgentSetup(agent::AgentSetupArgs),
    /// Ask Command for a VPN location (or leave the VPN) and write the device's WireGuard
    /// configuration with its own key; the key pair is generated on the device.
    AgentVpn(agent::AgentVpnArgs),
    /// Generate the device's firewall (nftables, default drop) from its network policy; print
    /// it, or apply it with `--apply`.
    AgentFirewall(agent::AgentFirewallArgs),
    /// Run the device's encrypted-DNS stub: names the network policy blocks are refused, the
    /// rest go to a DNS-over-TLS upstream.
    AgentDns(agent::AgentDnsArgs),
    /// Show the local Trust Security Center: the device's last trust evaluation.
    Tsc(agent::TscArgs),
    /// Verify Android Key Attestation chains offline; create a development attestation root.
    Attest(crate::attest::AttestArgs),
    /// OTA releases: create (pipeline), sign (signing workstation), publish, status, the
    /// controlled rollout (plan, steps, live status) and version pins per device group.
    Release(crate::release::ReleaseArgs),
    /// Policies: versions, diffs and assignments to device groups (changes need an approval).
    Policy(crate::policy::PolicyArgs),
    /// Network policy: where a flow goes and which rule decided (offline, or on Command for an
    /// enrolled device).
    Net(crate::net::NetArgs),
    /// Run the reference Enigm Proxy: a CONNECT front for devices with a credential from
    /// Command and a fresh proof.
    Proxy(crate::proxy::ProxyArgs),
    /// The OTA repository's signing keys (PKCS#11 token) and a static export.
    Ota(crate::ota::OtaArgs),
    /// Simulate a fleet of devices that enroll and check in, and measure the server.
    Simulate(crate::simulate::SimulateArgs),
    /// Print a completion script for a shell, e.g. `enigm completions bash >
    /// ~/.local/share/bash-completion/completions/enigm`.
    Completions(CompletionsArgs),
    /// Print the signal report the device agent would send, as JSON (debugging; no network).
    #[command(hide = true)]
    AgentReport(agent::AgentReportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

impl GlobalArgs {
    /// The one server of a command that talks to one (the first given).
    pub(crate) fn server(&self) -> Option<&str> {
        self.servers.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("enigm").chain(args.iter().copied()))
    }

    #[test]
    fn global_flags_are_accepted_after_subcommands() {
        let cli = parse(&[
            "admin",
            "users",
            "list",
            "--json",
            "--server",
            "https://c.example",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.server(), Some("https://c.example"));
    }

    #[test]
    fn pin_is_never_a_plain_argument() {
        // Only a file can carry the PIN; a `--pin 123456` flag must not exist anywhere.
        assert!(parse(&["admin", "--pin", "123456", "users", "disable", "bob"]).is_err());
        assert!(parse(&["admin", "users", "disable", "bob", "--pin", "123456"]).is_err());
        let cli = parse(&["admin", "users", "disable", "bob", "--pin-file", "/run/pin"]).unwrap();
        let Command::Admin(admin) = cli.command else {
            panic!("expected the admin command")
        };
        assert_eq!(
            admin.pin_file().map(|p| p.to_path_buf()),
            Some(PathBuf::from("/run/pin"))
        );
    }

    /// The long help of `enigm PATH…`.
    fn help_of(path: &[&str]) -> String {
        let mut command = Cli::command();
        command.build();
        let mut current = &mut command;
        for name in path {
            current = current.find_subcommand_mut(name).unwrap();
        }
        current.render_long_help().to_string()
    }

    #[test]
    fn each_pin_file_help_says_what_its_file_holds() {
        let set = help_of(&["admin", "pin", "set"]);
        assert!(
            set.contains("File whose content is the NEW 6-digit PIN"),
            "{set}"
        );
        for path in [
            &["admin", "users", "disable"][..],
            &["admin", "approvals", "approve"],
            &["admin", "password", "change"],
        ] {
            let help = help_of(path);
            assert!(
                help.contains("your 6-digit critical-operation PIN (the one in force)"),
                "{path:?}: {help}"
            );
            assert!(!help.contains("new PIN"), "{path:?}: {help}");
        }
        // `pin set --pin-file` is the new PIN, wherever the flag stands.
        for args in [
            &["admin", "pin", "set", "--pin-file", "/run/new-pin"][..],
            &["admin", "--pin-file", "/run/new-pin", "pin", "set"],
        ] {
            let cli = parse(args).unwrap();
            let Command::Admin(admin) = cli.command else {
                panic!("expected the admin command")
            };
            assert_eq!(
                admin.pin_file().map(|p| p.to_path_buf()),
                Some(PathBuf::from("/run/new-pin")),
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_bad_state_lists_the_valid_ones() {
        let devices = parse(&["admin", "devices", "list", "--state", "bogus"])
            .unwrap_err()
            .to_string();
        assert!(
            devices.contains(
                "[possible values: pending-enrollment, trusted, restricted, revoked, replaced, retired]"
            ),
            "{devices}"
        );
        let approvals = parse(&["admin", "approvals", "list", "--state", "bogus"])
            .unwrap_err()
            .to_string();
        assert!(
            approvals.contains("[possible values: pending, executed, rejected, expired]"),
            "{approvals}"
        );
    }

    #[test]
    fn roles_kinds_and_states_are_checked_by_the_parser() {
        assert!(
            parse(&[
                "admin",
                "roles",
                "grant",
                "bob",
                "auditor",
                "--justification",
                "audit q3"
            ])
            .is_ok()
        );
        assert!(
            parse(&[
                "admin",
                "roles",
                "grant",
                "bob",
                "root",
                "--justification",
                "x"
            ])
            .is_err()
        );
        assert!(parse(&["admin", "roles", "grant", "bob", "auditor"]).is_err());
        assert!(parse(&["admin", "approvals", "list", "--state", "pending"]).is_ok());
        assert!(parse(&["admin", "approvals", "list", "--state", "done"]).is_err());
        let set = [
            "admin",
            "approval-rules",
            "set",
            "role-grant",
            "--required",
            "2",
            "--approver-roles",
            "owner,security-admin",
            "--justification",
            "two-person rule",
        ];
        assert!(parse(&set).is_ok());
        assert!(
            parse(&[
                "audit",
                "events",
                "--action",
                "auth.login",
                "--outcome",
                "denied"
            ])
            .is_ok()
        );
        assert!(parse(&["audit", "events", "--action", "auth.nothing"]).is_err());
    }

    #[test]
    fn audit_log_commands_are_parsed() {
        assert!(parse(&["audit", "key"]).is_ok());
        assert!(parse(&["audit", "key", "--data-dir", "/srv/enigm", "--json"]).is_ok());
        assert!(parse(&["audit", "key", "--remote"]).is_ok());
        assert!(parse(&["audit", "verify", "--data-dir", "/srv/enigm"]).is_ok());
        assert!(
            parse(&[
                "audit",
                "verify",
                "--database-url",
                "postgres://db/enigm",
                "--log-key",
                "k",
                "--trusted-checkpoint",
                "/tmp/cp.note",
            ])
            .is_ok()
        );
        assert!(parse(&["audit", "verify", "--log-key", "k", "--no-scan"]).is_ok());
        // Skipping the leaf scan means nothing offline, where everything is read anyway.
        assert!(parse(&["audit", "verify", "--data-dir", "d", "--no-scan"]).is_err());
        assert!(parse(&["audit", "legal-hold"]).is_ok());
        assert!(parse(&["audit", "legal-hold", "on", "--pin-file", "/run/pin"]).is_ok());
        assert!(parse(&["audit", "legal-hold", "off"]).is_ok());
        assert!(parse(&["audit", "legal-hold", "maybe"]).is_err());
        assert!(parse(&["audit", "legal-hold", "on", "--pin", "123456"]).is_err());
    }

    #[test]
    fn agent_and_device_commands_are_parsed() {
        let agent = [
            "agent",
            "--server",
            "https://c.example",
            "--state-dir",
            "/var/lib/enigm",
        ];
        assert!(parse(&agent).is_ok());
        assert!(parse(&[&agent[..], &["--once", "--interval", "30"]].concat()).is_ok());
        assert!(parse(&[&agent[..], &["--enrollment-token-file", "/run/token"]].concat()).is_ok());
        // The enrollment token is never an argument, and the interval is at least a second.
        assert!(parse(&[&agent[..], &["--enrollment-token", "enigm_x"]].concat()).is_err());
        assert!(parse(&[&agent[..], &["--interval", "0"]].concat()).is_err());
        assert!(parse(&["agent", "--once"]).is_err());
        assert!(parse(&["tsc", "--state-dir", "/var/lib/enigm", "--json"]).is_ok());
        assert!(parse(&["tsc"]).is_err());

        let token = ["admin", "enrollment-token", "create", "--group", "phones"];
        assert!(parse(&token).is_ok());
        assert!(
            parse(&[&token[..], &["--uses", "3", "--expires-in-minutes", "30"]].concat()).is_ok()
        );
        assert!(parse(&[&token[..], &["--uses", "0"]].concat()).is_err());
        assert!(parse(&[&token[..], &["--expires-in-minutes", "10081"]].concat()).is_err());
        assert!(parse(&["admin", "enrollment-token", "create"]).is_err());

        assert!(parse(&["admin", "devices", "list", "--state", "revoked"]).is_ok());
        assert!(
            parse(&[
                "admin",
                "devices",
                "list",
                "--trust-state",
                "REVIEW_REQUIRED"
            ])
            .is_ok()
        );
        assert!(
            parse(&[
                "admin",
                "devices",
                "list",
                "--trust-state",
                "review-required"
            ])
            .is_ok()
        );
        assert!(parse(&["admin", "devices", "list", "--trust-state", "fine"]).is_err());
        assert!(parse(&["admin", "devices", "list", "--state", "asleep"]).is_err());
        assert!(
            parse(&[
                "admin",
                "devices",
                "show",
                "dev_n66ye47icmfs5ffeje6df6jt5eeejiss"
            ])
            .is_ok()
        );
        assert!(parse(&["admin", "devices", "show", "serial-123"]).is_err());
    }

    #[test]
    fn release_rollout_commands_are_parsed() {
        let plan = [
            "release",
            "rollout",
            "plan",
            "0193a8f2",
            "--model",
            "limited-rollout",
            "--justification",
            "december",
        ];
        assert!(parse(&plan).is_ok());
        assert!(parse(&[&plan[..], &["--wave", "10:24h", "--wave", "100:0s"]].concat()).is_ok());
        assert!(
            parse(
                &[
                    &plan[..],
                    &["--validation-group", "lab,qa", "--halt-above", "5"]
                ]
                .concat()
            )
            .is_ok()
        );
        assert!(parse(&[&plan[..], &["--halt-min-reports", "20"]].concat()).is_ok());
        for bad in [
            &["--wave", "10"][..],
            &["--wave", "0:1h"],
            &["--wave", "10:1y"],
            &["--halt-above", "0"],
            &["--halt-above", "101"],
            &["--halt-min-reports", "0"],
            &["--validation-group", "Not A Group"],
        ] {
            assert!(parse(&[&plan[..], bad].concat()).is_err(), "{bad:?}");
        }
        assert!(
            parse(&[
                "release",
                "rollout",
                "plan",
                "0193a8f2",
                "--model",
                "yolo",
                "--justification",
                "x"
            ])
            .is_err()
        );
        assert!(parse(&plan[..6]).is_err(), "a justification is required");
        for step in [
            "validate", "start", "advance", "promote", "pause", "resume", "withdraw",
        ] {
            let args = [
                "release",
                "rollout",
                step,
                "0193a8f2",
                "--justification",
                "why",
            ];
            assert!(parse(&args).is_ok(), "{step}");
            assert!(
                parse(&[&args[..], &["--pin-file", "/run/pin"]].concat()).is_ok(),
                "{step}"
            );
            // The PIN is never an argument, and a step says why.
            assert!(
                parse(&[&args[..], &["--pin", "123456"]].concat()).is_err(),
                "{step}"
            );
            assert!(parse(&args[..4]).is_err(), "{step}");
        }
        assert!(
            parse(&[
                "release",
                "rollout",
                "rewind",
                "0193a8f2",
                "--justification",
                "x"
            ])
            .is_err()
        );
        assert!(parse(&["release", "rollout", "status", "0193a8f2", "--watch"]).is_ok());
        assert!(
            parse(&[
                "release",
                "status",
                "0193a8f2",
                "--watch",
                "--interval",
                "5s"
            ])
            .is_ok()
        );
        assert!(parse(&["release", "status", "0193a8f2", "--interval", "5s"]).is_err());
        assert!(
            parse(&[
                "release",
                "status",
                "0193a8f2",
                "--watch",
                "--interval",
                "0s"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "release",
                "pin",
                "field",
                "0193a8f2",
                "--justification",
                "hold"
            ])
            .is_ok()
        );
        assert!(parse(&["release", "pin", "field", "0193a8f2"]).is_err());
        assert!(parse(&["release", "unpin", "field"]).is_ok());
        assert!(parse(&["release", "pins"]).is_ok());
    }

    #[test]
    fn audit_retention_is_at_least_a_day() {
        assert!(parse(&["up", "--audit-retention-days", "1"]).is_ok());
        assert!(parse(&["up", "--audit-retention-days", "365"]).is_ok());
        assert!(parse(&["up", "--audit-retention-days", "0"]).is_err());
        assert!(parse(&["up", "--audit-retention-days", "-3"]).is_err());
    }
}

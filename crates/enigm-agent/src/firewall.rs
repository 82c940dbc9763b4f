//! Applies the device's firewall (`enigm_netpolicy::firewall`) with `nft`, and reads its
//! counters back. The ruleset replaces the agent's table in one `nft -f` transaction, so the
//! device is never without rules while they change; a ruleset `nft` refuses leaves the one in
//! force, and the caller is told.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use enigm_netpolicy::firewall::TABLE;

/// Applies `ruleset` and checks that the table is in force afterwards.
pub fn apply(ruleset: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not run `nft` (install the nftables package)")?;
    child
        .stdin
        .take()
        .context("no stdin for `nft`")?
        .write_all(ruleset.as_bytes())
        .context("could not hand the ruleset to `nft`")?;
    let output = child.wait_with_output().context("`nft` did not finish")?;
    if !output.status.success() {
        anyhow::bail!(
            "`nft` refused the ruleset ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let listed = Command::new("nft")
        .args(["list", "chain", "inet", TABLE, "output"])
        .output()
        .context("could not run `nft list`")?;
    if !listed.status.success() {
        anyhow::bail!("the firewall table is not in force after `nft -f`");
    }
    Ok(())
}

/// Whether the agent's table is in the kernel with its output chain; an error when `nft`
/// cannot be asked.
pub fn in_force() -> anyhow::Result<bool> {
    let listed = Command::new("nft")
        .args(["list", "chain", "inet", TABLE, "output"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("could not run `nft list`")?;
    Ok(listed.success())
}

/// The packets counted by the counter `name` of the agent's table.
pub fn counter(name: &str) -> anyhow::Result<u64> {
    let listed = Command::new("nft")
        .args(["-j", "list", "counter", "inet", TABLE, name])
        .output()
        .context("could not run `nft list counter`")?;
    if !listed.status.success() {
        anyhow::bail!("the firewall counter `{name}` is not in force");
    }
    let value: serde_json::Value =
        serde_json::from_slice(&listed.stdout).context("`nft -j` printed no JSON")?;
    value
        .get("nftables")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|item| item.pointer("/counter/packets")?.as_u64())
        .with_context(|| format!("`nft -j` named no packets for counter `{name}`"))
}

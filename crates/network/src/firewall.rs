//! The host firewall's FORWARD chain. Docker (and ufw) set its policy to
//! drop, and a drop in any table is final: an accept in Keel's own
//! nftables table cannot overrule it, so a bridge's forwarded traffic
//! (out to the world, between its containers, to published ports) would
//! be lost. Where the policy drops, a bridge gets accepting rules there,
//! as Podman's and libvirt's networks do.
//!
//! Through the `iptables` command: it writes to whichever backend,
//! nf_tables or legacy, the firewall was made with, and in a form
//! iptables reads back. (Rules written by `nft` with conntrack matches
//! make iptables-nft 1.8 call the whole chain incompatible, which would
//! break Docker's own use of it.) Each rule is marked with the comment
//! `keel-BRIDGE`, after the bridge's nftables table.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::netlink::Netlink;

const CHAIN: &str = "FORWARD";

/// The rules that let `bridge`'s traffic through, as iptables arguments
/// after the chain.
fn rules(bridge: &str) -> [Vec<String>; 2] {
    let comment = format!("keel-{bridge}");
    let args = |rule: &[&str]| -> Vec<String> {
        rule.iter()
            .copied()
            .chain(["-m", "comment", "--comment", &comment, "-j", "ACCEPT"])
            .map(str::to_owned)
            .collect()
    };
    [
        // Out of the bridge: to the world, and between its containers
        // (with br_netfilter, bridged traffic passes FORWARD too).
        args(&["-i", bridge]),
        // Into it: answers, and connections to its published ports.
        args(&[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
        ]),
    ]
}

/// Whether the FORWARD chain drops what no rule accepts, read over
/// netlink (no process to start) where iptables writes to nftables;
/// `None` where it cannot be read so (iptables-legacy, or no such chain).
pub fn forward_drops() -> Option<bool> {
    Netlink::open_netfilter()
        .ok()?
        .ipv4_chain_drops("filter", CHAIN)
        .ok()?
}

/// Hears the FORWARD chain's changes where iptables writes to nftables.
#[derive(Debug)]
pub struct PolicyWatch(Netlink);

impl PolicyWatch {
    /// Starts hearing them (nothing is heard from iptables-legacy).
    pub fn open() -> Result<Self> {
        Netlink::watch_nftables().map(PolicyWatch)
    }

    /// Waits for the chain to be made or changed, and says whether its
    /// policy drops now.
    pub fn wait_for_change(&mut self) -> Result<bool> {
        self.0.wait_for_ipv4_chain("filter", CHAIN)?;
        Ok(forward_drops() == Some(true))
    }
}

/// Lets `bridge`'s traffic through the FORWARD chain if its policy drops,
/// by rules at its head (once: rules already there are kept), and says
/// whether it did. Nothing to do without iptables or with an accepting
/// policy.
pub fn let_through(bridge: &str) -> Result<bool> {
    if forward_drops() == Some(false) {
        return Ok(false);
    }
    let Some(chain) = iptables(&["-S", CHAIN])? else {
        return Ok(false);
    };
    if !chain.lines().any(|line| line.trim() == "-P FORWARD DROP") {
        return Ok(false);
    }
    // Inserted last first, so that they read in order.
    for rule in rules(bridge).into_iter().rev() {
        if !present(&rule) {
            // First in the chain: the bridge's packets skip the rules of
            // others (Docker's are a dozen, read for every packet), and a
            // later drop of theirs cannot catch them.
            on_chain("-I", &rule)?;
        }
    }
    Ok(true)
}

/// Removes the rules [`let_through`] added for `bridge`, if any.
pub fn stop_letting_through(bridge: &str) {
    for rule in rules(bridge) {
        // Until none is left (iptables refuses to delete what is not
        // there, and makes no table for it).
        while matches!(on_chain("-D", &rule), Ok(Some(_))) {}
    }
}

fn present(rule: &[String]) -> bool {
    matches!(on_chain("-C", rule), Ok(Some(_)))
}

/// `iptables -w VERB FORWARD RULE...`.
fn on_chain(verb: &str, rule: &[String]) -> Result<Option<String>> {
    let args: Vec<&str> = [verb, CHAIN]
        .into_iter()
        .chain(rule.iter().map(String::as_str))
        .collect();
    iptables(&args)
}

/// Runs `iptables -w ARGS`: its output, `None` when iptables is not
/// installed, an error naming the command when it fails.
fn iptables(args: &[&str]) -> Result<Option<String>> {
    let failed = |message: String| Error::Firewall {
        command: format!("iptables -w {}", args.join(" ")),
        message,
    };
    let output = match Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failed(error.to_string())),
    };
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

//! The name files Docker writes for each container and binds over its
//! /etc/hosts, /etc/hostname and /etc/resolv.conf.

use std::fmt::Write as _;
use std::net::IpAddr;

/// The embedded DNS server's address, inside each container on a user
/// network.
pub const EMBEDDED_DNS: &str = "127.0.0.11";

/// Docker's fallback when the host has only loopback resolvers (which a
/// container cannot reach).
const FALLBACK_SERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// /etc/hosts: loopback names, then `extra` lines (`--add-host`, links)
/// as `(address, names)`, then the container's own addresses.
pub fn hosts(extra: &[(String, String)], own: &[(String, String)]) -> String {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (address, names) in extra.iter().chain(own) {
        let _ = writeln!(text, "{address}\t{names}");
    }
    text
}

/// What a container resolves names with.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// `--dns`; else the host's.
    pub servers: Vec<String>,
    /// `--dns-search`; else the host's.
    pub search: Vec<String>,
    /// `--dns-option`; else the host's.
    pub options: Vec<String>,
}

impl Resolver {
    /// The host's resolv.conf, overridden by what the container asks for.
    pub fn new(host_conf: &str, servers: &[String], search: &[String], options: &[String]) -> Self {
        let mut host = Resolver::default();
        for line in host_conf.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => host.servers.extend(words.next().map(str::to_owned)),
                Some("search" | "domain") => host.search = words.map(str::to_owned).collect(),
                Some("options") => host.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        let pick = |own: &[String], host: Vec<String>| match own.is_empty() {
            true => host,
            false => own.to_vec(),
        };
        Resolver {
            servers: pick(servers, host.servers),
            search: pick(search, host.search),
            options: pick(options, host.options),
        }
    }

    /// The servers a container can reach: the host's loopback ones are
    /// dropped (they are not in the container's namespace), and Docker's
    /// fallback used if none are left.
    pub fn reachable_servers(&self) -> Vec<String> {
        let reachable: Vec<String> = self
            .servers
            .iter()
            .filter(|s| s.parse::<IpAddr>().is_ok_and(|ip| !ip.is_loopback()))
            .cloned()
            .collect();
        match reachable.is_empty() {
            true => FALLBACK_SERVERS.map(str::to_owned).to_vec(),
            false => reachable,
        }
    }

    /// resolv.conf for a container: straight to the servers, or through
    /// the embedded server (user networks), as Docker writes it.
    pub fn resolv_conf(&self, embedded: bool) -> String {
        let mut text = String::new();
        let mut options = self.options.clone();
        if embedded {
            let _ = writeln!(text, "nameserver {EMBEDDED_DNS}");
            if !options.iter().any(|o| o.starts_with("ndots:")) {
                options.insert(0, "ndots:0".to_owned());
            }
        } else {
            for server in self.reachable_servers() {
                let _ = writeln!(text, "nameserver {server}");
            }
        }
        if !self.search.is_empty() {
            let _ = writeln!(text, "search {}", self.search.join(" "));
        }
        if !options.is_empty() {
            let _ = writeln!(text, "options {}", options.join(" "));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_loopback_then_extra_then_own_names() {
        let text = hosts(
            &[("10.0.0.9".into(), "site abc web".into())],
            &[("10.0.0.2".into(), "0123456789ab".into())],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.0.0.9\tsite abc web\n10.0.0.2\t0123456789ab\n"));
    }

    #[test]
    fn resolv_conf_drops_loopback_servers_and_honours_overrides() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp\noptions edns0\n";
        let resolver = Resolver::new(host, &[], &[], &[]);
        assert_eq!(
            resolver.resolv_conf(false),
            "nameserver 10.0.0.1\nsearch corp\noptions edns0\n"
        );
        assert_eq!(
            resolver.resolv_conf(true),
            "nameserver 127.0.0.11\nsearch corp\noptions ndots:0 edns0\n"
        );
        let only_loopback = Resolver::new("nameserver 127.0.0.53\n", &[], &[], &[]);
        assert_eq!(only_loopback.reachable_servers(), ["8.8.8.8", "8.8.4.4"]);
        let own = Resolver::new(host, &["1.1.1.1".into()], &["example".into()], &[]);
        assert_eq!(
            own.resolv_conf(false),
            "nameserver 1.1.1.1\nsearch example\noptions edns0\n"
        );
    }
}

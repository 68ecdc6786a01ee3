//! Every name the lab puts on the machine, and how to read the owner back
//! out of one. Names embed the owning process id and a per-process counter,
//! so labs of parallel tests (and parallel `cargo test` runs) never collide,
//! and a later run can tell a dead run's leftovers from a live one's.
//!
//! Only namespace names and temp directories are global; interface names
//! live inside lab namespaces and so only need to be unique per namespace.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::bail;

/// Prefix of every lab id, namespace and temp directory.
pub const PREFIX: &str = "xlab";
/// Prefix of a segment's bridge inside its switch namespace.
pub const BRIDGE_PREFIX: &str = "xbr-";
/// Prefix of a bridge-side veth port inside a switch namespace.
pub const PORT_PREFIX: &str = "xp-";
/// Linux's interface name limit (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh lab id `xlab-<pid>-<n>`, unique on this machine while this
/// process lives.
pub fn next_lab_id() -> String {
    lab_id(std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The id a lab of process `pid` with counter `n` gets.
pub fn lab_id(pid: u32, n: u32) -> String {
    format!("{PREFIX}-{pid}-{n}")
}

/// Namespace of host `host` in lab `id`.
pub fn host_netns(id: &str, host: &str) -> String {
    format!("{id}-{host}")
}

/// Namespace holding segment `segment`'s bridge in lab `id`. Host names may
/// not start with `sw-`, so this never equals a host namespace.
pub fn switch_netns(id: &str, segment: &str) -> String {
    format!("{id}-sw-{segment}")
}

/// Bridge of a segment, inside its switch namespace.
pub fn bridge(segment: &str) -> String {
    format!("{BRIDGE_PREFIX}{segment}")
}

/// Bridge-side veth of `host`'s port, inside the segment's switch namespace.
pub fn port(host: &str) -> String {
    format!("{PORT_PREFIX}{host}")
}

/// Host-side name of a host's `index`-th port: configs can say `eth0`.
pub fn host_iface(index: usize) -> String {
    format!("eth{index}")
}

/// The lab id (`xlab-<pid>-<n>`) a lab-made name starts with, if it is one.
pub fn lab_id_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (pid, rest) = rest.split_once('-')?;
    let n_len = rest.find('-').unwrap_or(rest.len());
    let n = &rest[..n_len];
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || !all_digits(n) {
        return None;
    }
    Some(&name[..PREFIX.len() + 1 + pid.len() + 1 + n_len])
}

/// The process id that owns a lab-made name, if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    let id = lab_id_of(name)?;
    id[PREFIX.len() + 1..].split('-').next()?.parse().ok()
}

/// Checks a host name: it becomes part of a namespace name and of the
/// 15-byte port name `xp-<host>`.
pub fn check_host_name(name: &str) -> anyhow::Result<()> {
    check_word("host", name, IFNAME_MAX - PORT_PREFIX.len())?;
    if name.starts_with("sw-") {
        bail!("host name {name:?}: `sw-` is reserved for switch namespaces");
    }
    Ok(())
}

/// Checks a segment name: it becomes part of a namespace name and of the
/// 15-byte bridge name `xbr-<segment>`.
pub fn check_segment_name(name: &str) -> anyhow::Result<()> {
    check_word("segment", name, IFNAME_MAX - BRIDGE_PREFIX.len())
}

fn check_word(what: &str, name: &str, max: usize) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > max {
        bail!("{what} name {name:?}: must be 1..={max} characters");
    }
    let ok_first = name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0].is_ascii_digit();
    let ok_rest = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok_first || !ok_rest {
        bail!("{what} name {name:?}: use a-z, 0-9, '-' and '_', starting with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_carry_the_pid() {
        let a = next_lab_id();
        let b = next_lab_id();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert_eq!(lab_id_of(&a), Some(a.as_str()));
    }

    #[test]
    fn owner_is_read_back_from_every_derived_name() {
        let id = lab_id(4_194_304, 17);
        assert_eq!(id, "xlab-4194304-17");
        for name in [host_netns(&id, "mutante10"), switch_netns(&id, "lan"), id.clone()] {
            assert_eq!(lab_id_of(&name), Some(id.as_str()), "{name}");
            assert_eq!(owner_pid(&name), Some(4_194_304), "{name}");
        }
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in
            ["", "xlab", "xlab-", "xlab-12", "xlab-12-", "xlab-a-1-h", "xlab-1-b-h", "xlabs-1-2-h", "blue", "cni-1234"]
        {
            assert_eq!(lab_id_of(name), None, "{name:?}");
            assert_eq!(owner_pid(name), None, "{name:?}");
        }
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        check_host_name("mutante10").unwrap();
        check_host_name("abcdefghijkl").unwrap();
        assert!(check_host_name("abcdefghijklm").is_err());
        assert_eq!(port("abcdefghijkl").len(), IFNAME_MAX);
        check_segment_name("abcdefghijk").unwrap();
        assert!(check_segment_name("abcdefghijkl").is_err());
        assert_eq!(bridge("abcdefghijk").len(), IFNAME_MAX);
        assert!(check_host_name("sw-lan").is_err());
        assert!(check_host_name("Lobezno").is_err());
        assert!(check_host_name("-x").is_err());
        assert!(check_host_name("a/b").is_err());
    }
}

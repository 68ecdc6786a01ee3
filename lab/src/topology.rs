//! Declarative topologies: which hosts exist, which L2 segments connect
//! them, with which addresses, and what each host is for. A [`Topology`] is
//! plain data; [`crate::Lab::up`] turns it into namespaces and links.

use std::collections::BTreeSet;

use anyhow::{Context, bail};

use crate::addr::{Ipv4Cidr, Mac};
use crate::names;

/// An L2 segment: one bridge in its own switch namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Short name (≤ 11 chars; the bridge is `xbr-<name>`).
    pub name: String,
    /// The segment's subnet; documentation for tests and configs, the lab
    /// puts no address on the bridge.
    pub subnet: Ipv4Cidr,
}

/// What a host is for, so tests and tools can pick e.g. every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs a DHCP server (Kea or xdhcpd); has static addresses.
    Server,
    /// Runs dhclient; gets its address by DHCP.
    Client,
    /// Anything else (a relay, a traffic source).
    Other,
}

/// One interface of a host on one segment. The host sees it as `eth<i>`,
/// `i` being its position in [`Host::ports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The segment it plugs into.
    pub segment: String,
    /// Static address, or `None` for a DHCP client's interface.
    pub address: Option<Ipv4Cidr>,
    /// Fixed MAC, or `None` for a kernel-chosen one.
    pub mac: Option<Mac>,
}

/// A host: one network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Short name (≤ 12 chars; the bridge-side port is `xp-<name>`).
    pub name: String,
    /// What it runs.
    pub role: Role,
    /// Its interfaces, `eth0` first.
    pub ports: Vec<Port>,
}

impl Host {
    /// A host with no ports yet.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Host { name: name.into(), role, ports: Vec::new() }
    }

    /// Adds the next `eth<i>`, on `segment`.
    pub fn port(mut self, segment: impl Into<String>, address: Option<Ipv4Cidr>, mac: Option<Mac>) -> Self {
        self.ports.push(Port { segment: segment.into(), address, mac });
        self
    }

    /// The host-side interface name of its port on `segment`.
    pub fn iface_on(&self, segment: &str) -> Option<String> {
        self.ports.iter().position(|p| p.segment == segment).map(names::host_iface)
    }
}

/// What the lab puts on the bridge-side veth of every port. A server
/// answering with native XDP_TX hands its frame to that veth; the kernel
/// delivers it only if the veth runs a native XDP program (see
/// `crate::xdp_pass`). `Plain` and `GroOnly` are how Docker, LXC and most
/// VM hosts leave their bridge ports, for tests that xdhcpd copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BridgePorts {
    /// GRO on and an XDP_PASS program: native XDP_TX replies get through.
    #[default]
    XdpPass,
    /// Nothing: no XDP program, GRO off. Native XDP_TX replies are dropped.
    Plain,
    /// GRO on, no XDP program: the peer has NAPI (the kernel reports
    /// `ndo-xmit` on the server's veth) yet native XDP_TX replies stay
    /// queued, undelivered (kernel 6.18).
    GroOnly,
}

/// A whole lab layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Segments, in creation order.
    pub segments: Vec<Segment>,
    /// Hosts, in creation order.
    pub hosts: Vec<Host>,
    /// How every bridge-side veth is set up.
    pub bridge_ports: BridgePorts,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Topology::default()
    }

    /// Adds a segment.
    pub fn segment(mut self, name: impl Into<String>, subnet: Ipv4Cidr) -> Self {
        self.segments.push(Segment { name: name.into(), subnet });
        self
    }

    /// Sets up every bridge-side veth as `ports` says (default
    /// [`BridgePorts::XdpPass`]).
    pub fn bridge_ports(mut self, ports: BridgePorts) -> Self {
        self.bridge_ports = ports;
        self
    }

    /// Adds a host.
    pub fn host(mut self, host: Host) -> Self {
        self.hosts.push(host);
        self
    }

    /// Looks a host up by name.
    pub fn get_host(&self, name: &str) -> anyhow::Result<&Host> {
        self.hosts.iter().find(|h| h.name == name).with_context(|| format!("no host {name:?} in this topology"))
    }

    /// Names of the hosts with `role`, in order.
    pub fn hosts_with(&self, role: Role) -> Vec<&str> {
        self.hosts.iter().filter(|h| h.role == role).map(|h| h.name.as_str()).collect()
    }

    /// Rejects what would fail half-way through `up`: bad or duplicate
    /// names, ports on unknown segments, two ports of a host on one segment
    /// (their bridge-side names would clash), addresses outside the subnet.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut segs = BTreeSet::new();
        for s in &self.segments {
            names::check_segment_name(&s.name)?;
            if !segs.insert(s.name.as_str()) {
                bail!("segment {:?} declared twice", s.name);
            }
        }
        let mut hosts = BTreeSet::new();
        for h in &self.hosts {
            names::check_host_name(&h.name)?;
            if !hosts.insert(h.name.as_str()) {
                bail!("host {:?} declared twice", h.name);
            }
            let mut on = BTreeSet::new();
            for p in &h.ports {
                let seg = self
                    .segments
                    .iter()
                    .find(|s| s.name == p.segment)
                    .with_context(|| format!("host {:?}: unknown segment {:?}", h.name, p.segment))?;
                if !on.insert(p.segment.as_str()) {
                    bail!("host {:?} has two ports on segment {:?}", h.name, p.segment);
                }
                if let Some(a) = p.address
                    && !seg.subnet.contains(a.addr)
                {
                    bail!("host {:?}: address {a} is outside segment {:?} ({})", h.name, seg.name, seg.subnet);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn lan() -> Ipv4Cidr {
        Ipv4Cidr::new(Ipv4Addr::new(10, 1, 0, 0), 24)
    }

    fn addr(last: u8) -> Option<Ipv4Cidr> {
        Some(Ipv4Cidr::new(Ipv4Addr::new(10, 1, 0, last), 24))
    }

    #[test]
    fn a_good_topology_validates() {
        let t = Topology::new()
            .segment("lan", lan())
            .host(Host::new("srv", Role::Server).port("lan", addr(2), None))
            .host(Host::new("cli", Role::Client).port("lan", None, Some(Mac::local(0, 1))));
        t.validate().unwrap();
        assert_eq!(t.hosts_with(Role::Client), ["cli"]);
        assert_eq!(t.get_host("srv").unwrap().iface_on("lan").as_deref(), Some("eth0"));
        assert!(t.get_host("nope").is_err());
    }

    #[test]
    fn mistakes_are_caught_before_anything_is_built() {
        let base = Topology::new().segment("lan", lan());
        let cases = [
            base.clone().host(Host::new("a", Role::Other).port("wan", None, None)),
            base.clone().host(Host::new("a", Role::Other).port("lan", None, None).port("lan", None, None)),
            base.clone().host(Host::new("a", Role::Other)).host(Host::new("a", Role::Other)),
            base.clone().segment("lan", lan()),
            base.clone().host(Host::new("a", Role::Other).port("lan", Some("10.2.0.1/24".parse().unwrap()), None)),
            base.clone().host(Host::new("much-too-long", Role::Other)),
        ];
        for t in cases {
            assert!(t.validate().is_err(), "{t:?}");
        }
    }
}

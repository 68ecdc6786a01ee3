//! Subnet selection, exactly in Kea 2.2's order (`CfgSubnets4::initSelector`
//! and `selectSubnet`), so a Kea config picks the same subnet here:
//!
//! 1. A relay's link-selection sub-option (82.5), else the subnet-selection
//!    option (118): the subnet holding that address, and nothing else.
//! 2. Relayed (giaddr set): the first subnet whose relay addresses (its
//!    own, else its shared network's) list giaddr.
//! 3. An address from the packet: giaddr; for a packet not sent to the
//!    broadcast address, ciaddr, else its source address. The first subnet
//!    whose prefix holds it.
//! 4. Otherwise (a broadcast from a local client) the receiving interface:
//!    a subnet (or its shared network) bound to it by `interface`, else the
//!    subnet holding one of the interface's addresses.
//!
//! At every step a subnet (or its shared network) restricted to a client
//! class the packet is not in is passed over, as Kea's `clientSupported`
//! does; the packet's classes are those of its first classification pass.
//!
//! Pure: the caller passes what the packet and the socket said.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, OptionCode, relay::RelayCode, relay::RelayInfo};

use super::policy::{Policy, SubnetPolicy};
use crate::classify::ClientClasses;

/// What selection looks at, besides the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Selector<'a> {
    /// The request.
    pub msg: &'a Message,
    /// IP source address of the datagram.
    pub from: Ipv4Addr,
    /// IP destination (`None` when the socket could not tell: treated as
    /// broadcast, the safe reading for a local client).
    pub to: Option<Ipv4Addr>,
    /// Name of the receiving interface.
    pub iface: &'a str,
    /// Its IPv4 addresses and prefix lengths.
    pub iface_addrs: &'a [(Ipv4Addr, u8)],
}

/// The address a relay or client asked selection to use (RFC 3527
/// link-selection in option 82, else RFC 3011 option 118).
pub fn option_select(msg: &Message) -> Option<Ipv4Addr> {
    if let Some(DhcpOption::RelayAgentInformation(rai)) =
        msg.opts().get(OptionCode::RelayAgentInformation)
        && let Some(RelayInfo::LinkSelection(a)) = rai.get(RelayCode::LinkSelection)
    {
        return Some(*a);
    }
    match msg.opts().get(OptionCode::SubnetSelection) {
        Some(DhcpOption::SubnetSelection(a)) => Some(*a),
        _ => None,
    }
}

/// The subnet of an unclassified request (see the module docs for the order).
pub fn select<'a>(policy: &'a Policy, sel: &Selector<'_>) -> Option<&'a SubnetPolicy> {
    select_for(policy, sel, &ClientClasses::none())
}

/// The subnet of a request in `classes` (see the module docs).
pub fn select_for<'a>(policy: &'a Policy, sel: &Selector<'_>, classes: &ClientClasses) -> Option<&'a SubnetPolicy> {
    let mut candidates = policy.subnets.iter().filter(|s| s.allows(classes));
    let by_prefix = |a: Ipv4Addr| policy.subnets.iter().filter(|s| s.allows(classes)).find(|s| s.contains(a));
    if let Some(a) = option_select(sel.msg) {
        return by_prefix(a);
    }
    let giaddr = sel.msg.giaddr();
    if !giaddr.is_unspecified() {
        return candidates.find(|s| s.relay_addresses.contains(&giaddr)).or_else(|| by_prefix(giaddr));
    }
    let unicast = sel.to.is_some_and(|a| a != Ipv4Addr::BROADCAST);
    let ciaddr = sel.msg.ciaddr();
    if unicast && !ciaddr.is_unspecified() {
        return by_prefix(ciaddr);
    }
    if unicast && !sel.from.is_unspecified() {
        return by_prefix(sel.from);
    }
    candidates
        .find(|s| s.interface.as_deref() == Some(sel.iface))
        .or_else(|| sel.iface_addrs.iter().find_map(|(a, _)| by_prefix(*a)))
}

#[cfg(test)]
mod tests {
    use dhcproto::v4::{MessageType, relay::RelayAgentInformation};

    use super::*;

    /// Lobezno's LAN as a shared network of two subnets bound to eth0, one
    /// subnet behind a relay at 192.168.60.1, and a shared network reached
    /// through relay 10.0.0.1 declared at the network level.
    fn policy() -> Policy {
        let cfg = crate::config::parse(
            r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
                "subnet4": [ { "id": 2, "subnet": "192.168.60.0/24", "pools": [ { "pool": "192.168.60.100-192.168.60.149" } ] } ],
                "shared-networks": [
                  { "name": "lan", "interface": "eth0", "subnet4": [
                    { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.100-192.168.50.199" } ] },
                    { "id": 3, "subnet": "172.16.0.0/24", "pools": [ { "pool": "172.16.0.10-172.16.0.20" } ] } ] },
                  { "name": "far", "relay": { "ip-addresses": [ "10.0.0.1" ] }, "subnet4": [
                    { "id": 4, "subnet": "10.1.0.0/24" },
                    { "id": 5, "subnet": "10.2.0.0/24", "relay": { "ip-addresses": [ "10.0.0.9" ] } } ] } ] } }"#,
            "test",
        )
        .unwrap();
        crate::glue::compile(&cfg)
    }

    const ADDRS: &[(Ipv4Addr, u8)] = &[(Ipv4Addr::new(192, 168, 50, 2), 24)];
    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const SERVER: Option<Ipv4Addr> = Some(Ipv4Addr::new(192, 168, 50, 2));
    const BCAST: Option<Ipv4Addr> = Some(Ipv4Addr::BROADCAST);

    fn msg(ciaddr: [u8; 4], giaddr: [u8; 4]) -> Message {
        let mut m = Message::new(
            ciaddr.into(),
            ZERO,
            ZERO,
            giaddr.into(),
            &[2, 0, 0, 0, 0x60, 0x11],
        );
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Request));
        m
    }

    fn id(
        p: &Policy,
        m: &Message,
        from: Ipv4Addr,
        to: Option<Ipv4Addr>,
        iface: &str,
    ) -> Option<u32> {
        select(
            p,
            &Selector {
                msg: m,
                from,
                to,
                iface,
                iface_addrs: ADDRS,
            },
        )
        .map(|s| s.id)
    }

    #[test]
    fn relayed_requests_follow_relay_addresses_then_prefix() {
        let p = policy();
        let relay = Ipv4Addr::new(10, 0, 0, 1);
        // The network's relay address selects its first subnet; a subnet
        // with relays of its own must match them instead.
        assert_eq!(
            id(&p, &msg([0; 4], [10, 0, 0, 1]), relay, SERVER, "eth0"),
            Some(4)
        );
        assert_eq!(
            id(&p, &msg([0; 4], [10, 0, 0, 9]), relay, SERVER, "eth0"),
            Some(5)
        );
        // No relay address matches: giaddr's prefix does.
        assert_eq!(
            id(&p, &msg([0; 4], [192, 168, 60, 1]), relay, SERVER, "eth0"),
            Some(2)
        );
        assert_eq!(
            id(&p, &msg([0; 4], [10, 9, 9, 9]), relay, SERVER, "eth0"),
            None
        );
    }

    #[test]
    fn link_selection_and_subnet_selection_options_come_first() {
        let p = policy();
        let mut m = msg([0; 4], [10, 0, 0, 1]);
        let mut rai = RelayAgentInformation::default();
        rai.insert(RelayInfo::LinkSelection(Ipv4Addr::new(192, 168, 60, 7)));
        m.opts_mut().insert(DhcpOption::RelayAgentInformation(rai));
        assert_eq!(id(&p, &m, ZERO, BCAST, "eth0"), Some(2));
        let mut m = msg([0; 4], [0; 4]);
        m.opts_mut()
            .insert(DhcpOption::SubnetSelection(Ipv4Addr::new(172, 16, 0, 1)));
        assert_eq!(id(&p, &m, ZERO, BCAST, "eth0"), Some(3));
    }

    #[test]
    fn unicast_uses_ciaddr_then_source_and_broadcast_uses_the_interface() {
        let p = policy();
        let remote = Ipv4Addr::new(192, 168, 60, 100);
        assert_eq!(
            id(
                &p,
                &msg([192, 168, 60, 100], [0; 4]),
                remote,
                SERVER,
                "eth0"
            ),
            Some(2)
        );
        assert_eq!(
            id(&p, &msg([0; 4], [0; 4]), remote, SERVER, "eth0"),
            Some(2)
        );
        assert_eq!(
            id(
                &p,
                &msg([10, 0, 0, 1], [0; 4]),
                Ipv4Addr::new(10, 0, 0, 1),
                SERVER,
                "eth0"
            ),
            None
        );
        // A renewal in the second subnet of the shared network.
        let second = Ipv4Addr::new(172, 16, 0, 10);
        assert_eq!(
            id(&p, &msg([172, 16, 0, 10], [0; 4]), second, SERVER, "eth0"),
            Some(3)
        );
        // Broadcasts (and unknown destinations) belong to the interface's
        // network: its first subnet, whatever ciaddr says.
        assert_eq!(
            id(&p, &msg([192, 168, 60, 100], [0; 4]), remote, BCAST, "eth0"),
            Some(1)
        );
        assert_eq!(id(&p, &msg([0; 4], [0; 4]), ZERO, None, "eth0"), Some(1));
        // Another interface: by its address (none here).
        assert_eq!(id(&p, &msg([0; 4], [0; 4]), ZERO, BCAST, "eth1"), Some(1));
    }

    #[test]
    fn link_subnets_walk_the_shared_network_from_the_selected_subnet() {
        let p = policy();
        let ids = |id: u32| {
            p.link_subnets(p.subnet(id).unwrap())
                .map(|s| s.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(1), [1, 3]);
        assert_eq!(ids(3), [3, 1]);
        assert_eq!(ids(2), [2]);
        assert_eq!(ids(5), [5, 4]);
    }
}

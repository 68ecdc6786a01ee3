//! What Kea logs about each packet (and about the lease database it opens),
//! with Kea's message ids, texts, loggers
//! and debug levels, so an operator's `loggers` setting (say
//! `kea-dhcp4.packets` at DEBUG 50) shows the lines their Kea showed, and
//! tools that grep them keep working.
//!
//! The packet pipeline calls these at the points where Kea logs: the
//! buffer parsed (`options`), the packet received and the subnet selected
//! (`packets`), the host lookup (`hosts`), what the allocation engine does
//! (`alloc-engine`), the lease outcome (`leases`, `bad-packets`), the
//! memfile operation (`dhcpsrv`) and the reply sent (`options`, `packets`).
//! Each function first asks tracing whether anyone listens, so a server
//! without debug logging pays one cached check per call.
//!
//! Debug levels are Kea's (`dhcp4_log.h`): 40 basic trace, 45 basic data,
//! 50 detail, 55 detail data.

use std::net::Ipv4Addr;

use dhcproto::v4::{Message, MessageType};

use crate::config::HostIdentifierType;
use crate::dhcp::{
    engine::{Destination, LeaseWrite},
    inbound::{DropReason, Inbound, Kind},
    policy::SubnetPolicy,
};

use super::pipeline::Arrival;
use crate::leases::{Lease, LeaseState, model::colon_hex as hex};

/// Kea's `DBGLVL_PKT_HANDLING`.
const PKT_HANDLING: u8 = 15;
/// Kea's `DBGLVL_TRACE_BASIC`.
const BASIC: u8 = 40;
/// Kea's `DBGLVL_TRACE_BASIC_DATA`.
const BASIC_DATA: u8 = 45;
/// Kea's `DBGLVL_TRACE_DETAIL`.
const DETAIL: u8 = 50;

/// Kea's packet label (`Pkt4::makeLabel`): `[hwtype=1 aa:bb:…], cid=[…], tid=0x…`.
pub fn label(req: &Inbound) -> String {
    let cid = req.client_id.as_deref().map_or_else(|| "no info".to_owned(), hex);
    format!("[hwtype={} {}], cid=[{cid}], tid=0x{:x}", req.htype, hex(&req.hwaddr), req.msg.xid())
}

/// Kea's name of a message type (`Pkt4::getName`).
fn type_name(t: MessageType) -> (&'static str, u8) {
    let code = u8::from(t);
    let name = match t {
        MessageType::Discover => "DHCPDISCOVER",
        MessageType::Offer => "DHCPOFFER",
        MessageType::Request => "DHCPREQUEST",
        MessageType::Decline => "DHCPDECLINE",
        MessageType::Ack => "DHCPACK",
        MessageType::Nak => "DHCPNAK",
        MessageType::Release => "DHCPRELEASE",
        MessageType::Inform => "DHCPINFORM",
        _ => "UNKNOWN",
    };
    (name, code)
}

fn kind_type(k: Kind) -> MessageType {
    match k {
        Kind::Discover => MessageType::Discover,
        Kind::Request => MessageType::Request,
        Kind::Decline => MessageType::Decline,
        Kind::Release => MessageType::Release,
        Kind::Inform => MessageType::Inform,
    }
}

/// Whether anyone listens to debug lines of `target` (any level: the
/// layer filters on the event's own `debuglevel`).
macro_rules! listening {
    ($target:literal) => {
        tracing::enabled!(target: $target, tracing::Level::DEBUG)
    };
}

/// A datagram is about to be parsed (`options`), or failed to parse
/// (`packets`, DHCP4_PACKET_DROP_0001).
pub fn buffer(at: &Arrival<'_>, failed: Option<DropReason>) {
    let to = at.to.unwrap_or(Ipv4Addr::BROADCAST);
    if listening!("kea-dhcp4.options") {
        tracing::debug!(target: "kea-dhcp4.options", msgid = "DHCP4_BUFFER_UNPACK", debuglevel = DETAIL,
            "parsing buffer received from {} to {to} over interface {}", at.from, at.iface);
    }
    if let Some(why) = failed
        && listening!("kea-dhcp4.packets")
    {
        tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_DROP_0001", debuglevel = BASIC,
            "failed to parse packet from {} to {to}, received over interface {}, reason: {}", at.from, at.iface, why.label());
    }
}

/// A request was received and a subnet selected for it, or none.
pub fn received(req: &Inbound, at: &Arrival<'_>, subnet: Option<&SubnetPolicy>) {
    if listening!("kea-dhcp4.packets") {
        let (name, code) = type_name(kind_type(req.kind));
        let to = at.to.unwrap_or(Ipv4Addr::BROADCAST);
        let l = label(req);
        tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_RECEIVED", debuglevel = BASIC,
            "{l}: {name} (type {code}) received from {} to {to} on interface {}", at.from, at.iface);
        if let Some(s) = subnet {
            tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_SUBNET_SELECTED", debuglevel = BASIC_DATA,
                "{l}: the subnet with ID {} was selected for client assignments", s.id);
        }
    }
    if subnet.is_none() && listening!("kea-dhcp4.bad-packets") {
        tracing::debug!(target: "kea-dhcp4.bad-packets", msgid = "DHCP4_SUBNET_SELECTION_FAILED", debuglevel = BASIC,
            "{}: failed to select subnet for the client", label(req));
    }
    if let Some(s) = subnet
        && listening!("kea-dhcp4.hosts")
    {
        // The engine looks the client up by each configured identifier the
        // packet carries.
        for id in s.identifiers.iter().filter_map(|t| identified_by(*t, req)) {
            tracing::debug!(target: "kea-dhcp4.hosts", msgid = "HOSTS_CFG_GET_ONE_SUBNET_ID_IDENTIFIER", debuglevel = BASIC,
                "get one host with IPv4 reservation for subnet id {}, identified by {id}", s.id);
        }
    }
}

/// Kea's `Host::getIdentifierAsText` of the packet's identifier of type
/// `t`, when the packet has one.
fn identified_by(t: HostIdentifierType, req: &Inbound) -> Option<String> {
    let upper = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    match t {
        HostIdentifierType::HwAddress => Some(format!("hwaddr={}", upper(&req.hwaddr))),
        HostIdentifierType::ClientId => req.client_id.as_deref().map(|c| format!("client-id={}", upper(c))),
        // RFC 4361: type 255, IAID (4 bytes), then the DUID.
        HostIdentifierType::Duid => {
            req.client_id.as_deref().filter(|c| c.len() > 5 && c[0] == 255).map(|c| format!("duid={}", upper(&c[5..])))
        }
        HostIdentifierType::CircuitId => req.circuit_id().map(|c| format!("circuit-id={}", upper(c))),
    }
}

/// What the allocation engine did for `req`, the lease outcome and the
/// memfile operation, read from the decision: `reply` (OFFER, ACK or NAK)
/// and `write`. `lookup` reads the store as it was before the decision; it
/// is asked only when a line needs it.
pub fn decided(req: &Inbound, reply: Option<&Message>, write: Option<&LeaseWrite>, lookup: impl Fn(Ipv4Addr) -> Option<Lease>) {
    let l = || label(req);
    // Whether the address answered (or released) was already the client's
    // (a renewal), or, for a RELEASE, held by anyone.
    let owned = || match req.kind {
        Kind::Release => lookup(req.msg.ciaddr()).is_some(),
        _ => reply.is_some_and(|m| {
            lookup(m.yiaddr()).is_some_and(|h| {
                h.hwaddr.as_ref().is_some_and(|hw| hw.bytes() == req.hwaddr) && h.state == LeaseState::Default
            })
        }),
    };
    if req.kind == Kind::Decline {
        declined(req, write, &lookup);
    }
    let replied = reply.and_then(|m| m.opts().msg_type());
    let yiaddr = reply.map(Message::yiaddr);
    if listening!("kea-dhcp4.alloc-engine") {
        match (req.kind, replied) {
            (Kind::Discover, Some(MessageType::Offer)) => {
                let (id, text) = if owned() {
                    ("ALLOC_ENGINE_V4_OFFER_EXISTING_LEASE", format!("allocation engine will try to offer existing lease to the client {}", l()))
                } else if let Some(a) = req.requested_ip {
                    ("ALLOC_ENGINE_V4_OFFER_REQUESTED_LEASE", format!("allocation engine will try to offer requested lease {a} to the client {}", l()))
                } else {
                    ("ALLOC_ENGINE_V4_OFFER_NEW_LEASE", format!("allocation engine will try to offer new lease to the client {}", l()))
                };
                tracing::debug!(target: "kea-dhcp4.alloc-engine", msgid = id, debuglevel = BASIC, "{text}");
            }
            (Kind::Request, Some(MessageType::Ack)) => {
                let a = yiaddr.unwrap_or(Ipv4Addr::UNSPECIFIED);
                if owned() {
                    tracing::debug!(target: "kea-dhcp4.alloc-engine", msgid = "ALLOC_ENGINE_V4_REQUEST_EXTEND_LEASE", debuglevel = DETAIL,
                        "{}: extending lifetime of the lease for address {a}", l());
                } else {
                    tracing::debug!(target: "kea-dhcp4.alloc-engine", msgid = "ALLOC_ENGINE_V4_REQUEST_ALLOC_REQUESTED", debuglevel = DETAIL,
                        "{}: trying to allocate requested address {a}", l());
                }
            }
            _ => {}
        }
    }
    match (req.kind, replied) {
        (Kind::Discover, Some(MessageType::Offer)) => {
            tracing::info!(target: "kea-dhcp4.leases", msgid = "DHCP4_LEASE_ADVERT", "{}: lease {} will be advertised", l(), yiaddr.unwrap_or(Ipv4Addr::UNSPECIFIED));
        }
        (Kind::Request, Some(MessageType::Ack)) if !req.bootp => {
            let a = yiaddr.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let secs = reply.and_then(lease_time).unwrap_or(0);
            if write.is_some() {
                tracing::info!(target: "kea-dhcp4.leases", msgid = "DHCP4_LEASE_ALLOC", "{}: lease {a} has been allocated for {secs} seconds", l());
            } else {
                tracing::info!(target: "kea-dhcp4.leases", msgid = "DHCP4_LEASE_REUSE", "{}: lease {a} has been reused for {secs} seconds", l());
            }
        }
        (Kind::Request, Some(MessageType::Nak)) if listening!("kea-dhcp4.bad-packets") => {
            let (id, what) = if req.server_id.is_none() && req.requested_ip.is_some() && req.msg.ciaddr().is_unspecified() {
                ("DHCP4_PACKET_NAK_0002", format!("invalid address {} requested by INIT-REBOOT", req.requested_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)))
            } else {
                let asked = req.requested_ip.map_or_else(|| "(no address)".to_owned(), |a| a.to_string());
                ("DHCP4_PACKET_NAK_0004", format!("failed to grant a lease, client sent ciaddr {}, requested-ip-address {asked}", req.msg.ciaddr()))
            };
            tracing::debug!(target: "kea-dhcp4.bad-packets", msgid = id, debuglevel = DETAIL, "{}: {what}", l());
        }
        (Kind::Release, _) => match write {
            Some(LeaseWrite::Remove(a)) => {
                tracing::info!(target: "kea-dhcp4.leases", msgid = "DHCP4_RELEASE", "{}: address {a} was released properly.", l());
            }
            _ if listening!("kea-dhcp4.leases") => {
                let a = req.msg.ciaddr();
                if owned() {
                    tracing::debug!(target: "kea-dhcp4.leases", msgid = "DHCP4_RELEASE_FAIL_WRONG_CLIENT", debuglevel = DETAIL,
                        "{}: client is trying to release the lease {a} which belongs to a different client", l());
                } else {
                    tracing::debug!(target: "kea-dhcp4.leases", msgid = "DHCP4_RELEASE_FAIL_NO_LEASE", debuglevel = DETAIL,
                        "{}: client is trying to release non-existing lease {a}", l());
                }
            }
            _ => {}
        },
        _ => {}
    }
    if let Some(w) = write
        && listening!("kea-dhcp4.dhcpsrv")
    {
        match w {
            LeaseWrite::Upsert(n) if owned() => tracing::debug!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_MEMFILE_UPDATE_ADDR4",
                debuglevel = DETAIL, "updating IPv4 lease for address {}", n.address),
            LeaseWrite::Upsert(n) => tracing::debug!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_MEMFILE_ADD_ADDR4",
                debuglevel = DETAIL, "adding IPv4 lease with address {}", n.address),
            LeaseWrite::Remove(a) => tracing::debug!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_MEMFILE_DELETE_ADDR",
                debuglevel = DETAIL, "deleting lease for address {a}"),
        }
    }
}

/// Kea's lines for a DECLINE: refused without option 50, accepted, or
/// ignored because the lease is not the client's (`processDecline`).
fn declined(req: &Inbound, write: Option<&LeaseWrite>, lookup: &impl Fn(Ipv4Addr) -> Option<Lease>) {
    let l = label(req);
    let Some(a) = req.requested_ip else {
        tracing::debug!(target: "kea-dhcp4.bad-packets", msgid = "DHCP4_PACKET_DROP_0007", debuglevel = PKT_HANDLING,
            "{l}: failed to process packet: Mandatory 'Requested IP address' option missing in DHCPDECLINE sent from {l}");
        return;
    };
    if let Some(LeaseWrite::Upsert(n)) = write {
        tracing::info!(target: "kea-dhcp4.leases", msgid = "DHCP4_DECLINE_LEASE",
            "Received DHCPDECLINE for addr {a} from client {l}. The lease will be unavailable for {} seconds.", n.valid_lifetime);
        return;
    }
    match lookup(a) {
        None => tracing::warn!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DECLINE_LEASE_NOT_FOUND",
            "Received DHCPDECLINE for addr {a} from client {l}, but no such lease found."),
        Some(h) => {
            let lease_hw = h.hwaddr.as_ref().map_or_else(|| "(none)".to_owned(), |hw| hw.to_string());
            let cid = req.client_id.as_deref().map_or_else(|| "(none)".to_owned(), hex);
            let lease_cid = h.client_id.as_ref().map_or_else(|| "(none)".to_owned(), |c| c.to_string());
            tracing::warn!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DECLINE_LEASE_MISMATCH",
                "Received DHCPDECLINE for addr {a} from client {l}, but the data doesn't match: received hwaddr: {}, lease \
                 hwaddr: {lease_hw}, received client-id: {cid}, lease client-id: {lease_cid}", hex(&req.hwaddr));
        }
    }
}

fn lease_time(m: &Message) -> Option<u32> {
    match m.opts().get(dhcproto::v4::OptionCode::AddressLeaseTime) {
        Some(dhcproto::v4::DhcpOption::AddressLeaseTime(t)) => Some(*t),
        _ => None,
    }
}

/// A reply is about to go out (`options`: packing; `packets`: sending).
pub fn sending(req: &Inbound, reply: &Message, dest: &Destination, at: &Arrival<'_>) {
    if listening!("kea-dhcp4.options") {
        tracing::debug!(target: "kea-dhcp4.options", msgid = "DHCP4_PACKET_PACK", debuglevel = DETAIL,
            "{}: preparing on-wire format of the packet to be sent", label(req));
    }
    if listening!("kea-dhcp4.packets") {
        let (name, code) = reply.opts().msg_type().map_or(("BOOTREPLY", 0), type_name);
        let (to, port) = match *dest {
            Destination::Relay(a) => (a, 67),
            Destination::Ciaddr(a) => (a, 68),
            Destination::Broadcast => (Ipv4Addr::BROADCAST, 68),
            Destination::Chaddr { ip, .. } => (ip, 68),
        };
        tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_SEND", debuglevel = BASIC,
            "{}: trying to send packet {name} (type {code}) from {}:67 to {to}:{port} on interface {}", label(req), at.server_id, at.iface);
    }
}

/// The lease database was opened and the configuration's subnets and
/// interfaces taken in (`dhcpsrv`), as Kea logs them at start-up and on
/// every reconfiguration.
pub fn configured(cfg: &crate::config::Config) {
    match cfg.lease_database() {
        crate::config::LeaseDatabase::Memfile(db) => {
            let name = if db.persist { db.name.display().to_string() } else { "(none)".to_owned() };
            tracing::info!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_MEMFILE_DB",
                "opening memory file lease database: lfc-interval={} name={name} persist={} type=memfile universe=4",
                db.lfc_interval, db.persist);
            if db.persist && db.lfc_interval > 0 {
                tracing::info!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_MEMFILE_LFC_SETUP",
                    "setting up the Lease File Cleanup interval to {} sec", db.lfc_interval);
            }
        }
        // Kea's redacted access string: keys in order, the password as stars.
        crate::config::LeaseDatabase::Postgresql(db) => {
            let password = if db.password.is_some() { " password=*****" } else { "" };
            let user = db.user.as_deref().map(|u| format!(" user={u}")).unwrap_or_default();
            tracing::info!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_PGSQL_DB",
                "opening PostgreSQL lease database: host={} name={}{password} port={} type=postgresql universe=4{user}",
                db.host, db.name, db.port);
        }
    }
    if listening!("kea-dhcp4.dhcpsrv") {
        for s in cfg.subnets() {
            tracing::debug!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_CFGMGR_NEW_SUBNET4", debuglevel = BASIC,
                "a new subnet has been added to configuration: {} with params: valid-lifetime={}", s.prefix(),
                s.lifetimes().valid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_is_keas() {
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &[0xff, 1, 2, 3, 0xff, 4]);
        m.set_xid(0x1a2b);
        m.opts_mut().insert(dhcproto::v4::DhcpOption::MessageType(MessageType::Discover));
        let mut bytes = Vec::new();
        dhcproto::Encodable::encode(&m, &mut dhcproto::Encoder::new(&mut bytes)).unwrap();
        let mut req = crate::dhcp::inbound::classify(&bytes).unwrap();
        assert_eq!(label(&req), "[hwtype=1 ff:01:02:03:ff:04], cid=[no info], tid=0x1a2b");
        req.client_id = Some(vec![0, 1, 2]);
        assert_eq!(label(&req), "[hwtype=1 ff:01:02:03:ff:04], cid=[00:01:02], tid=0x1a2b");
    }
}

/// When a packet in the special class `DROP` was found: on receipt, after
/// the early global reservation lookup, or after the host lookup (Kea's
/// DHCP4_PACKET_DROP_0010, _0014, _0013).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropStage {
    /// Classified on receipt.
    OnReceipt,
    /// After the early global reservation lookup.
    EarlyGlobal,
    /// After the host reservation lookup.
    HostLookup,
}

/// Kea's `Pkt4::toText` first line: addresses, ports, type and xid (Kea
/// goes on with one line per option; the id and the first line are what
/// tools match).
pub fn packet_text(req: &Inbound, at: &Arrival<'_>) -> String {
    let (name, code) = type_name(kind_type(req.kind));
    let to = at.to.unwrap_or(Ipv4Addr::BROADCAST);
    let from_port = if req.msg.giaddr().is_unspecified() { 68 } else { 67 };
    format!("local_address={to}:67, remote_address={}:{from_port}, msg_type={name} ({code}), transid=0x{:x}", at.from, req.msg.xid())
}

/// A packet dropped as a member of `DROP` (`packets`, debug level 15).
pub fn class_drop(req: &Inbound, at: &Arrival<'_>, stage: DropStage) {
    if listening!("kea-dhcp4.packets") {
        let text = packet_text(req, at);
        match stage {
            DropStage::OnReceipt => tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_DROP_0010",
                debuglevel = PKT_HANDLING, "dropped as member of the special class 'DROP': {text}"),
            DropStage::EarlyGlobal => tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_DROP_0014",
                debuglevel = PKT_HANDLING, "dropped as member of the special class 'DROP' after early global host reservations lookup: {text}"),
            DropStage::HostLookup => tracing::debug!(target: "kea-dhcp4.packets", msgid = "DHCP4_PACKET_DROP_0013",
                debuglevel = PKT_HANDLING, "dropped as member of the special class 'DROP' after host reservation lookup: {text}"),
        }
    }
}

/// A request naming another server's identifier (`bad-packets`, DROP_0003).
pub fn foreign_server_id(req: &Inbound, at: &Arrival<'_>) {
    if listening!("kea-dhcp4.bad-packets") {
        tracing::debug!(target: "kea-dhcp4.bad-packets", msgid = "DHCP4_PACKET_DROP_0003", debuglevel = PKT_HANDLING,
            "{}, from interface {}: it contains a foreign server identifier", label(req), at.iface);
    }
}

/// Kea's label of a datagram not parsed yet: what it logs when the
/// service is disabled, since it checks before unpacking.
pub const UNPARSED_LABEL: &str = "[hwtype=1 ], cid=[no info], tid=0x0";

/// A datagram dropped because DHCP is disabled (`dhcp-disable`, or HA's
/// network state): `bad-packets`, DROP_0008. `req` is `None` when the
/// datagram was not parsed (the operator's switch is checked first).
pub fn service_disabled(req: Option<&Inbound>) {
    if listening!("kea-dhcp4.bad-packets") {
        let l = req.map_or_else(|| UNPARSED_LABEL.to_owned(), label);
        tracing::debug!(target: "kea-dhcp4.bad-packets", msgid = "DHCP4_PACKET_DROP_0008", debuglevel = PKT_HANDLING,
            "{l}: DHCP service is globally disabled");
    }
}

/// A query HA leaves to the partner (`ha-hooks`, debug level 40).
pub fn not_for_us(req: &Inbound) {
    if listening!("kea-dhcp4.ha-hooks") {
        tracing::debug!(target: "kea-dhcp4.ha-hooks", msgid = "HA_BUFFER4_RECEIVE_NOT_FOR_US", debuglevel = BASIC,
            "{}: dropping query to be processed by another server", label(req));
    }
}

//! Reading what [`super::delivery`] decides on, from the kernel: the
//! driver's `xdp_features` (generic netlink family `netdev`), a veth
//! peer's XDP attachment (rtnetlink, also in another namespace), and the
//! driver's name and private statistics (the ethtool ioctl, the only
//! interface that has `ethtool -S`'s per-driver counters). Thin I/O: every
//! error becomes part of the facts or a [`ProbeError`], never a panic.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use netlink_packet_core::{
    DecodeError, Emitable, NLA_TYPE_MASK, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NetlinkSerializable, Nla, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{
    GenlFamily, GenlHeader, GenlMessage,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
};
use netlink_sys::{Socket, SocketAddr, protocols};
use thiserror::Error;

use super::delivery::{LinkFacts, Peer, PeerXdp, VETH};

/// A failed query.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// A socket or ioctl call failed.
    #[error("{what}: {source}")]
    Io {
        /// Which call.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered with something we could not read.
    #[error("{what}: {detail}")]
    Reply {
        /// Which query.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ProbeError {
    move |source| ProbeError::Io { what, source }
}

/// Everything [`super::delivery::decide`] needs about `iface`.
pub fn facts(iface: &str) -> LinkFacts {
    let driver = driver_info(iface).ok().map(|d| d.driver);
    let index = ifindex(iface);
    let xdp_features = match &index {
        Ok(i) => xdp_features(*i).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let peer = match (driver.as_deref(), &index) {
        (Some(VETH), Ok(i)) => Some(veth_peer(*i)),
        (Some(VETH), Err(e)) => Some(Peer { name: None, xdp: PeerXdp::Unknown(e.to_string()) }),
        _ => None,
    };
    LinkFacts { driver, xdp_features, peer }
}

/// The kernel's index of `iface` in this namespace.
pub fn ifindex(iface: &str) -> Result<u32, ProbeError> {
    let name = CString::new(iface)
        .map_err(|_| ProbeError::Reply { what: "interface name", detail: format!("{iface:?} contains NUL") })?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if i == 0 {
        return Err(ProbeError::Io { what: "if_nametoindex", source: io::Error::last_os_error() });
    }
    Ok(i)
}

// ---------------------------------------------------------------- netlink

/// Sends `msg` on a fresh socket of `protocol` and returns the replies up
/// to the first that is neither multipart nor ours (a `do` request gets one
/// message; an error is returned as [`ProbeError::Io`]).
fn request<T>(protocol: isize, mut msg: NetlinkMessage<T>, what: &'static str) -> Result<Vec<T>, ProbeError>
where
    T: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
{
    let mut socket = Socket::new(protocol).map_err(io_err(what))?;
    socket.bind_auto().map_err(io_err(what))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(io_err(what))?;
    msg.header.flags = NLM_F_REQUEST;
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0).map_err(io_err(what))?;
    let mut out = Vec::new();
    // The kernel handles a request inside sendmsg: its answer is queued
    // before send returns, so this recv does not wait on anything else.
    let (data, _) = socket.recv_from_full().map_err(io_err(what))?;
    let mut at = 0;
    while at < data.len() {
        let m = NetlinkMessage::<T>::deserialize(&data[at..])
            .map_err(|e| ProbeError::Reply { what, detail: e.to_string() })?;
        let len = m.header.length as usize;
        match m.payload {
            NetlinkPayload::InnerMessage(inner) => out.push(inner),
            NetlinkPayload::Error(e) if e.code.is_some() => {
                return Err(ProbeError::Io { what, source: e.to_io() });
            }
            NetlinkPayload::Done(_) => break,
            _ => {}
        }
        if len == 0 {
            break;
        }
        at += len;
    }
    Ok(out)
}

/// `NETDEV_CMD_DEV_GET` (include/uapi/linux/netdev.h).
const NETDEV_CMD_DEV_GET: u8 = 1;
/// `NETDEV_A_DEV_IFINDEX`.
const NETDEV_A_DEV_IFINDEX: u16 = 1;
/// `NETDEV_A_DEV_XDP_FEATURES` (u64).
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;

/// One attribute, kept raw: its type and value bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attr {
    kind: u16,
    value: Vec<u8>,
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        self.value.len()
    }
    fn kind(&self) -> u16 {
        self.kind
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        buffer[..self.value.len()].copy_from_slice(&self.value);
    }
}

/// A message of the `netdev` generic netlink family (Linux 6.3+), with its
/// attributes left raw: only two of them are read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Netdev {
    cmd: u8,
    attrs: Vec<Attr>,
}

impl GenlFamily for Netdev {
    fn family_name() -> &'static str {
        "netdev"
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        1
    }
}

impl Emitable for Netdev {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Netdev {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|nla| {
                nla.map(|nla| Attr {
                    // Without the nested / byte-order flag bits.
                    kind: nla.kind() & NLA_TYPE_MASK,
                    value: nla.value().to_vec(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { cmd: header.cmd, attrs })
    }
}

/// The id the kernel gave generic netlink family `name`.
fn genl_family_id(name: &str) -> Result<u16, ProbeError> {
    let msg = NetlinkMessage::from(GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
    }));
    let replies =
        request(protocols::NETLINK_GENERIC, msg, "resolving a generic netlink family").map_err(|e| match e {
            ProbeError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOENT) => {
                ProbeError::Reply { what: "generic netlink", detail: format!("no family {name:?} (kernel before 6.3)") }
            }
            e => e,
        })?;
    replies
        .iter()
        .flat_map(|m| m.payload.nlas.iter())
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| ProbeError::Reply { what: "generic netlink", detail: format!("no id for family {name:?}") })
}

/// `NETDEV_A_DEV_XDP_FEATURES` of interface `ifindex` (bits in
/// [`super::delivery::act`]).
pub fn xdp_features(ifindex: u32) -> Result<u64, ProbeError> {
    let family = genl_family_id("netdev")?;
    let mut genl = GenlMessage::from_payload(Netdev {
        cmd: NETDEV_CMD_DEV_GET,
        attrs: vec![Attr { kind: NETDEV_A_DEV_IFINDEX, value: ifindex.to_ne_bytes().to_vec() }],
    });
    genl.set_resolved_family_id(family);
    genl.finalize();
    let replies = request(protocols::NETLINK_GENERIC, NetlinkMessage::from(genl), "netdev dev-get")?;
    replies
        .iter()
        .flat_map(|m| m.payload.attrs.iter())
        .find(|a| a.kind == NETDEV_A_DEV_XDP_FEATURES)
        .and_then(|a| <[u8; 8]>::try_from(a.value.as_slice()).ok())
        .map(u64::from_ne_bytes)
        .ok_or_else(|| ProbeError::Reply { what: "netdev dev-get", detail: "no xdp-features attribute".into() })
}

/// `RTM_GETLINK` for `index`, in the namespace with id `netnsid` as seen
/// from ours (`IFLA_TARGET_NETNSID`, Linux 4.20+) or in ours.
fn get_link(index: u32, netnsid: Option<i32>) -> Result<LinkMessage, ProbeError> {
    let mut link = LinkMessage::default();
    link.header.index = index;
    if let Some(id) = netnsid {
        link.attributes.push(LinkAttribute::IfNetnsId(id));
    }
    let msg = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(RouteNetlinkMessage::GetLink(link)));
    request(protocols::NETLINK_ROUTE, msg, "rtnetlink getlink")?
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .ok_or_else(|| ProbeError::Reply { what: "rtnetlink getlink", detail: format!("no link {index}") })
}

/// The peer of veth `ifindex`: its name and whether a native XDP program
/// is attached to it. The peer is found by `IFLA_LINK` (veth's
/// `ndo_get_iflink` is the peer's index) and `IFLA_LINK_NETNSID` when it
/// lives in another namespace.
pub fn veth_peer(ifindex: u32) -> Peer {
    match read_peer(ifindex) {
        Ok(p) => p,
        Err(e) => Peer { name: None, xdp: PeerXdp::Unknown(e.to_string()) },
    }
}

fn read_peer(ifindex: u32) -> Result<Peer, ProbeError> {
    let ours = get_link(ifindex, None)?;
    let mut peer_index = None;
    let mut netnsid = None;
    for a in &ours.attributes {
        match a {
            LinkAttribute::Link(i) => peer_index = Some(*i),
            LinkAttribute::LinkNetNsId(id) => netnsid = Some(*id),
            _ => {}
        }
    }
    let peer_index = peer_index
        .filter(|i| *i != 0)
        .ok_or_else(|| ProbeError::Reply { what: "veth peer", detail: "the veth has no peer".into() })?;
    let peer = get_link(peer_index, netnsid)?;
    Ok(peer_of(&peer.attributes))
}

/// Reads a peer's name and XDP state from its `RTM_NEWLINK` attributes.
fn peer_of(attributes: &[LinkAttribute]) -> Peer {
    let mut name = None;
    let mut xdp = PeerXdp::NotNative;
    for a in attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Xdp(list) => {
                let attached = list.iter().find_map(|x| match x {
                    LinkXdp::Attached(a) => Some(a),
                    _ => None,
                });
                let drv_prog = list.iter().any(|x| matches!(x, LinkXdp::DrvProgId(id) if *id != 0));
                if matches!(attached, Some(XdpAttached::Driver)) || drv_prog {
                    xdp = PeerXdp::Native;
                }
            }
            _ => {}
        }
    }
    Peer { name, xdp }
}

// ---------------------------------------------------------------- ethtool

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_drvinfo` (include/uapi/linux/ethtool.h).
#[repr(C)]
struct DrvInfoRaw {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with the `ifr_data` member of the union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// The ethtool driver info the probe uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrvInfo {
    /// Driver name, e.g. `veth`, `virtio_net`, `mlx5_core`.
    pub driver: String,
    /// How many private statistics `ethtool -S` lists.
    pub n_stats: u32,
}

fn ethtool(iface: &str, data: *mut libc::c_void, what: &'static str) -> Result<(), ProbeError> {
    let bytes = iface.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(ProbeError::Reply { what, detail: format!("interface name {iface:?} too long") });
    }
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], data, _pad: [0; 16] };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(ProbeError::Io { what, source: io::Error::last_os_error() });
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `req` is a valid ifreq whose data points at a buffer the
    // caller sized for the command (checked against the kernel's counts).
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if r < 0 {
        return Err(ProbeError::Io { what, source: io::Error::last_os_error() });
    }
    Ok(())
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `ETHTOOL_GDRVINFO` of `iface`.
pub fn driver_info(iface: &str) -> Result<DrvInfo, ProbeError> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: DrvInfoRaw = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    ethtool(iface, (&raw mut info).cast(), "ethtool drvinfo")?;
    Ok(DrvInfo { driver: c_str(&info.driver), n_stats: info.n_stats })
}

/// `ethtool -S iface`: every private statistic with its name.
pub fn stats(iface: &str) -> Result<Vec<(String, u64)>, ProbeError> {
    let n = driver_info(iface)?.n_stats as usize;
    if n == 0 {
        return Ok(Vec::new());
    }
    // The kernel writes as many entries as the driver counts at the time
    // of each call (queues can change in between): room for some more.
    let room = n + 64;
    let mut strings = vec![0u8; 12 + room * ETH_GSTRING_LEN];
    strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    // Keep the buffer 8-byte aligned for the u64 statistics below.
    let mut values = vec![0u64; 1 + room];
    let mut head = [0u8; 8];
    head[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
    values[0] = u64::from_ne_bytes(head);
    ethtool(iface, strings.as_mut_ptr().cast(), "ethtool gstrings")?;
    ethtool(iface, values.as_mut_ptr().cast(), "ethtool gstats")?;
    let n_strings = u32::from_ne_bytes(strings[8..12].try_into().expect("4 bytes")) as usize;
    // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }
    let head = values[0].to_ne_bytes();
    let n_values = u32::from_ne_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
    if n_strings != n_values || n_strings > room {
        return Err(ProbeError::Reply {
            what: "ethtool stats",
            detail: format!("{n_strings} names for {n_values} values (the driver's queues changed?)"),
        });
    }
    Ok((0..n_strings)
        .map(|i| {
            let name = c_str(&strings[12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN]);
            (name, values[1 + i])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_state_from_link_attributes() {
        let native = peer_of(&[
            LinkAttribute::IfName("xp-lobezno".into()),
            LinkAttribute::Xdp(vec![LinkXdp::Attached(XdpAttached::Driver), LinkXdp::ProgId(7)]),
        ]);
        assert_eq!(native.name.as_deref(), Some("xp-lobezno"));
        assert_eq!(native.xdp, PeerXdp::Native);
        let multi = peer_of(&[LinkAttribute::Xdp(vec![
            LinkXdp::Attached(XdpAttached::Multiple),
            LinkXdp::DrvProgId(7),
            LinkXdp::SkbProgId(8),
        ])]);
        assert_eq!(multi.xdp, PeerXdp::Native);
        // Generic only, or nothing: no NAPI on the peer.
        let generic =
            peer_of(&[LinkAttribute::Xdp(vec![LinkXdp::Attached(XdpAttached::SocketBuffer), LinkXdp::ProgId(8)])]);
        assert_eq!(generic.xdp, PeerXdp::NotNative);
        let none = peer_of(&[LinkAttribute::Xdp(vec![LinkXdp::Attached(XdpAttached::None)])]);
        assert_eq!(none.xdp, PeerXdp::NotNative);
        assert_eq!(peer_of(&[]).xdp, PeerXdp::NotNative);
    }

    #[test]
    fn netdev_messages_round_trip() {
        let m = Netdev {
            cmd: NETDEV_CMD_DEV_GET,
            attrs: vec![
                Attr { kind: NETDEV_A_DEV_IFINDEX, value: 4u32.to_ne_bytes().to_vec() },
                Attr { kind: NETDEV_A_DEV_XDP_FEATURES, value: 0x67u64.to_ne_bytes().to_vec() },
            ],
        };
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        // Two attributes: 4-byte header + 4 (ifindex), 4 + 8 (features).
        assert_eq!(buf.len(), 8 + 12);
        let back = Netdev::parse_with_param(&buf, GenlHeader { cmd: NETDEV_CMD_DEV_GET, version: 1 }).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn loopback_is_probed_without_root() {
        // Loopback exists in every namespace; it has no ethtool driver
        // info and no peer. Its xdp_features are 0 where the kernel has the
        // netdev family.
        let f = facts("lo");
        assert_eq!(f.peer, None);
        if let Ok(bits) = f.xdp_features {
            assert_eq!(bits & super::super::delivery::act::BASIC, 0);
        }
        assert!(ifindex("no-such-if0").is_err());
    }
}

//! Maps of the renewal fast path: the daemon writes a copy of its leases
//! and a precomputed reply per subnet; the kernel answers a renewal only
//! when that copy lets it build exactly the reply the daemon would send,
//! and tells the daemon about every renewal it answered. Reserved clients
//! get a reply template of their own, keyed by MAC.

/// Name of the lease map.
pub const LEASES_MAP: &str = "XDHCP_LEASES";
/// Capacity of the lease map (entries); the daemon skips leases beyond it
/// and those clients are served by the daemon.
pub const LEASES_CAPACITY: u32 = 1 << 20;
/// Name of the per-subnet reply map.
pub const SUBNETS_MAP: &str = "XDHCP_SUBNETS";
/// Capacity of the subnet map.
pub const SUBNETS_CAPACITY: u32 = 4096;
/// Name of the reservation map.
pub const RESERVATIONS_MAP: &str = "XDHCP_RESERVATIONS";
/// Capacity of the reservation map; reservations beyond it are served by
/// the daemon.
pub const RESERVATIONS_CAPACITY: u32 = 16384;
/// Name of the one-slot settings array.
pub const SETTINGS_MAP: &str = "XDHCP_SETTINGS";
/// Name of the renewal event ring buffer.
pub const EVENTS_MAP: &str = "XDHCP_EVENTS";
/// Ring buffer size in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;

/// Longest client identifier the kernel compares and echoes; leases with a
/// longer one stay out of the map (the daemon answers those clients).
pub const MAX_CLIENT_ID: usize = 32;
/// Room for the reply's options with codes below 61.
pub const MAX_HEAD: usize = 256;
/// Room for the reply's options with codes above 61, and END.
pub const MAX_TAIL: usize = 64;

/// Lease map key: the leased address, network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// IPv4 address as on the wire.
    pub addr: [u8; 4],
}

/// What the kernel needs to know about one lease.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseEntry {
    /// When the lease ends, Unix seconds (the kernel extends it on renewal).
    pub expire: u64,
    /// Subnet id: selects the reply in the subnet map.
    pub subnet_id: u32,
    /// Hardware address length (bytes of `hwaddr` in use).
    pub hlen: u8,
    /// Client identifier length (0: none).
    pub client_id_len: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// Owner's hardware address.
    pub hwaddr: [u8; 16],
    /// Owner's client identifier.
    pub client_id: [u8; MAX_CLIENT_ID],
}

const _: () = assert!(core::mem::size_of::<LeaseEntry>() == 64);

/// A subnet's precomputed ACK, as the daemon would build it for a renewing
/// client of that subnet that asks for nothing extra.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubnetReply {
    /// Interface the subnet is served on (replies leave where requests came).
    pub ifindex: u32,
    /// 1 when this server answers this subnet right now (written on every
    /// HA state change); 0 makes the kernel pass every request.
    pub serving: u32,
    /// Our address on that interface: IP source and option 54.
    pub server_ip: [u8; 4],
    /// Our MAC on that interface: Ethernet source of replies.
    pub server_mac: [u8; 6],
    /// Explicit padding.
    pub _pad_mac: [u8; 2],
    /// `siaddr` of replies.
    pub next_server: [u8; 4],
    /// Lease time granted on renewal (seconds).
    pub lease_time: u32,
    /// 1: identify clients by client-id when both sides have one.
    pub match_client_id: u32,
    /// 1: echo option 61 (RFC 6842).
    pub echo_client_id: u32,
    /// Bytes of `head` in use (options with codes below 61).
    pub head_len: u32,
    /// Bytes of `tail` in use (options with codes above 61, then END).
    pub tail_len: u32,
    /// One's-complement sum of `head` as 16-bit big-endian words from an
    /// even offset (unfolded): the kernel adds it to the UDP checksum.
    pub head_sum: u32,
    /// The same for `tail`.
    pub tail_sum: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Bit `c` set: a client listing option `c` in its parameter request
    /// list gets a different reply from the daemon, so the kernel passes.
    pub prl_pass: [u8; 32],
    /// Options before the client-id echo.
    pub head: [u8; MAX_HEAD],
    /// Options after it.
    pub tail: [u8; MAX_TAIL],
}

const _: () = assert!(core::mem::size_of::<SubnetReply>() == 56 + 32 + MAX_HEAD + MAX_TAIL);

/// Sum of `bytes` as big-endian 16-bit words from an even offset (a last
/// odd byte is the high half of a word), not folded: what
/// [`SubnetReply::head_sum`] holds.
pub fn word_sum(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        let hi = bytes[i] as u32;
        let lo = if i + 1 < bytes.len() { bytes[i + 1] as u32 } else { 0 };
        sum += (hi << 8) | lo;
        i += 2;
    }
    sum
}

/// Reservation map key: the reserved client's MAC on the interface its
/// requests arrive on (a MAC may be reserved in subnets on two links).
/// Client-id reservations stay with the daemon: the kernel passes requests
/// carrying option 61 in subnets that have any.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReservationKey {
    /// Client hardware address (Ethernet).
    pub mac: [u8; 6],
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// Receiving interface index.
    pub ifindex: u32,
}

const _: () = assert!(core::mem::size_of::<ReservationKey>() == 12);

/// Everything the kernel needs to answer a reserved client's DISCOVER or
/// REQUEST exactly as the daemon would.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservationEntry {
    /// The reserved address, network order.
    pub addr: [u8; 4],
    /// Subnet id of the reservation.
    pub subnet_id: u32,
    /// Offset in `reply.head` of option 53's value byte: the template is an
    /// OFFER (2); the kernel writes 5 there for an ACK and adjusts the sum.
    pub type_off: u32,
    /// 1: the store holds nothing that makes the daemon answer differently
    /// (the reserved address is free or this client's, and the client holds
    /// no other address). 0: the kernel passes.
    pub clean: u32,
    /// 1: the store's lease of `addr` is this client's (by MAC); its
    /// client-id is `held_cid` (ownership then follows the client-id rule).
    pub held: u32,
    /// 1: the subnet is authoritative (an unknown INIT-REBOOT or renewal is
    /// answered; else the daemon stays silent, so the kernel passes).
    pub authoritative: u32,
    /// 1: the reservation has no hostname, so the daemon stores the
    /// client's option 12: the kernel passes requests carrying one.
    pub client_hostname: u32,
    /// 1: the subnet has client-id reservations: requests with option 61
    /// could match one, so the kernel passes them.
    pub cid_reservations: u32,
    /// Bytes of `held_cid` in use (0: the lease has no client-id).
    pub held_cid_len: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Client-id of the held lease.
    pub held_cid: [u8; MAX_CLIENT_ID],
    /// The reply template (an OFFER), as for dynamic renewals.
    pub reply: SubnetReply,
}

const _: () = assert!(core::mem::size_of::<ReservationEntry>() == 40 + MAX_CLIENT_ID + core::mem::size_of::<SubnetReply>());

/// Settings shared by all packets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Unix time minus `CLOCK_BOOTTIME`, seconds: the kernel has only the
    /// boot clock, leases carry Unix time.
    pub unix_minus_boot: i64,
}

/// [`RenewEvent::kind`]: a lease in the lease map was renewed (extend it).
pub const EVENT_RENEWED: u8 = 0;
/// [`RenewEvent::kind`]: a reserved client was ACKed: the daemon writes the
/// lease as its engine's ACK would (created when absent).
pub const EVENT_RESERVED_ACK: u8 = 1;

/// One ACK sent by the kernel, for the daemon to store.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenewEvent {
    /// New expiry, Unix seconds.
    pub expire: u64,
    /// Leased address, network order.
    pub addr: [u8; 4],
    /// Subnet id.
    pub subnet_id: u32,
    /// Lease time granted.
    pub valid_lifetime: u32,
    /// [`EVENT_RENEWED`] or [`EVENT_RESERVED_ACK`].
    pub kind: u8,
    /// Bytes of `client_id` in use (reserved ACKs; 0: none).
    pub client_id_len: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// Client MAC (reserved ACKs).
    pub mac: [u8; 6],
    /// Explicit padding.
    pub _pad_mac: [u8; 2],
    /// Client identifier the client sent (reserved ACKs).
    pub client_id: [u8; MAX_CLIENT_ID],
}

const _: () = assert!(core::mem::size_of::<RenewEvent>() == 32 + MAX_CLIENT_ID);

// SAFETY: all of them are repr(C) with explicit padding fields and only
// integer/byte-array members (sizes asserted above): any bytes are valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for LeaseKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LeaseEntry {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SubnetReply {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for Settings {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ReservationKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ReservationEntry {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RenewEvent {}

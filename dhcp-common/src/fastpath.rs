//! Maps of the renewal fast path: the daemon writes a copy of its leases
//! and a precomputed reply per subnet and receiving interface; the kernel
//! answers a renewal only when that copy lets it build exactly the reply
//! the daemon would send, and tells the daemon about every ACK it sent.
//! Reserved clients get a reply template of their own, keyed by MAC or
//! client-id. Relayed requests find their subnet by giaddr in an LPM trie
//! that reproduces the daemon's subnet selection.

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
/// Name of the relay map (LPM trie: giaddr → subnet id).
pub const RELAYS_MAP: &str = "XDHCP_RELAYS";
/// Capacity of the relay map (one entry per subnet prefix and per
/// configured relay address).
pub const RELAYS_CAPACITY: u32 = 8192;
/// Name of the one-slot settings array.
pub const SETTINGS_MAP: &str = "XDHCP_SETTINGS";
/// Name of the renewal event ring buffer.
pub const EVENTS_MAP: &str = "XDHCP_EVENTS";
/// Ring buffer size in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;
/// The kernel wakes the daemon once per this many pending events (not per
/// event; ~290 KB of the 1 MB ring: a backstop, each wakeup costs a VM
/// exit here); the daemon drains on a timer of [`EVENTS_POLL_MS`], so a
/// renewal waits at most that long for its row to be queued.
pub const EVENTS_WAKE_EVERY: u64 = 4096;
/// Period of the daemon's ring-buffer poll, in milliseconds.
pub const EVENTS_POLL_MS: u64 = 5;

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
    /// 1: no other lease of the subnet has this hardware address or this
    /// client-id, so an INIT-REBOOT for this address finds no other lease
    /// of its client (the daemon NAKs when it does). 0: the kernel passes
    /// INIT-REBOOTs for it.
    pub sole: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// Owner's hardware address.
    pub hwaddr: [u8; 16],
    /// Owner's client identifier.
    pub client_id: [u8; MAX_CLIENT_ID],
}

const _: () = assert!(core::mem::size_of::<LeaseEntry>() == 64);

/// Subnet map key: one template per subnet and receiving interface, since
/// the reply carries the receiving interface's address (option 54) and
/// leaves from its MAC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubnetKey {
    /// Subnet id.
    pub subnet_id: u32,
    /// Receiving interface index.
    pub ifindex: u32,
}

const _: () = assert!(core::mem::size_of::<SubnetKey>() == 8);

/// [`SubnetReply::serving`] bit: the primary's HA scope is served (the only
/// scope outside load balancing; without HA, "serve everything").
pub const SERVE_PRIMARY: u32 = 1;
/// [`SubnetReply::serving`] bit: the secondary's HA scope is served.
pub const SERVE_SECONDARY: u32 = 2;
/// [`SubnetReply::serving`] bit: load balancing: the RFC 3074 hash of the
/// client's key picks the scope (even: primary, odd: secondary).
pub const SERVE_LOAD_BALANCING: u32 = 4;

/// [`SubnetReply::cid_pass`] bit: some client-id reservations of the
/// subnet are not in the reservation map for this interface.
pub const CID_PASS_MISSING: u32 = 1;
/// [`SubnetReply::cid_pass`] bit: the subnet has client-id reservations
/// (a unicast renewal off the subnet's link has no reservation entries).
pub const CID_PASS_ANY: u32 = 2;

/// A subnet's precomputed ACK, as the daemon would build it for a renewing
/// client of that subnet that asks for nothing extra.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubnetReply {
    /// Interface the template is for (requests received there).
    pub ifindex: u32,
    /// This server's HA scope for the subnet, `SERVE_*` bits, rewritten on
    /// every HA transition; 0 makes the kernel pass every request.
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
    /// 1: the interface is the subnet's own link: a request received there
    /// without giaddr, broadcast, selects this subnet in the daemon. 0: the
    /// template only serves relayed requests and unicast renewals.
    pub link: u32,
    /// `CID_PASS_*` bits: a request carrying option 61 could match a
    /// client-id reservation the kernel would not find, so it is passed.
    pub cid_pass: u32,
    /// Bit `c` set: a client listing option `c` in its parameter request
    /// list gets a different reply from the daemon, so the kernel passes.
    pub prl_pass: [u8; 32],
    /// Options before the client-id echo.
    pub head: [u8; MAX_HEAD],
    /// Options after it.
    pub tail: [u8; MAX_TAIL],
}

const _: () = assert!(core::mem::size_of::<SubnetReply>() == 60 + 32 + MAX_HEAD + MAX_TAIL);

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

/// [`ReservationKey::kind`]: reserved by hardware address (6 bytes).
pub const RES_BY_MAC: u32 = 0;
/// [`ReservationKey::kind`]: reserved by client identifier (option 61).
pub const RES_BY_CLIENT_ID: u32 = 1;

/// Reservation map key: the reserved client's identifier, the interface
/// its requests arrive on, and how that request selects its subnet (a
/// client may be reserved in subnets on two links, or behind relays).
/// The kernel looks a request up by client-id first, then by MAC, as the
/// daemon's engine does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReservationKey {
    /// Receiving interface index.
    pub ifindex: u32,
    /// 0: received directly (the subnet is the interface's); else the id of
    /// the subnet a relayed request's giaddr selects.
    pub relay_subnet: u32,
    /// [`RES_BY_MAC`] or [`RES_BY_CLIENT_ID`].
    pub kind: u32,
    /// Bytes of `id` in use.
    pub len: u32,
    /// The MAC or client-id, zero-padded.
    pub id: [u8; MAX_CLIENT_ID],
}

const _: () = assert!(core::mem::size_of::<ReservationKey>() == 16 + MAX_CLIENT_ID);

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
    /// 1: the store's lease of `addr` is this client's (by MAC; for a
    /// client-id reservation, by client-id under match-client-id); its
    /// client-id is `held_cid` (ownership then follows the client-id rule).
    pub held: u32,
    /// 1: the subnet is authoritative (an unknown INIT-REBOOT or renewal is
    /// answered; else the daemon stays silent, so the kernel passes).
    pub authoritative: u32,
    /// 1: the reservation has no hostname, so the daemon stores the
    /// client's option 12: the kernel passes requests carrying one.
    pub client_hostname: u32,
    /// 1: a client-id reservation (the key's kind): an INIT-REBOOT is only
    /// answered when `held` (the daemon looks the client up by MAC too).
    pub by_client_id: u32,
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
    /// Unix time minus `CLOCK_BOOTTIME`, nanoseconds: the kernel has only
    /// the boot clock, leases carry Unix time. Nanoseconds, so that the
    /// kernel's whole second is the wall clock's (an offset in whole
    /// seconds made it up to one second early).
    pub unix_minus_boot_ns: i64,
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
unsafe impl aya::Pod for SubnetKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for Settings {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ReservationKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ReservationEntry {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RenewEvent {}

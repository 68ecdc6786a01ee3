//! Every map of the program. Names, sizes and layouts come from
//! `dhcp-common` so the daemon opens exactly these.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    btf_maps::{Array, HashMap, LpmTrie, PerCpuArray, RingBuf},
    macros::btf_map,
};
use dhcp_common::{
    counters::{Counters, Outcome},
    fastpath::{
        EVENTS_BYTES, LEASES_CAPACITY, LeaseEntry, LeaseKey, RELAYS_CAPACITY, RESERVATIONS_CAPACITY, RenewEvent,
        ReservationEntry, ReservationKey, SUBNETS_CAPACITY, Settings, SubnetKey, SubnetReply,
    },
};

/// This CPU's [`Counters`] (one slot); read and summed by the daemon for
/// the status page and metrics.
#[btf_map]
static XDHCP_COUNTERS: PerCpuArray<Counters, 1> = PerCpuArray::new();

/// The daemon's leases (copy): address → owner, expiry, subnet. The kernel
/// extends `expire` when it answers a renewal.
///
/// Not preallocated: preallocation reserves every one of the million
/// elements (~100 MB) in one virtually mapped area, where each lookup of a
/// scattered element also misses the TLB; allocated on insert, elements
/// come from the slab (direct map) and only as many as there are leases.
#[btf_map]
pub static XDHCP_LEASES: HashMap<LeaseKey, LeaseEntry, { LEASES_CAPACITY as usize }, { BPF_F_NO_PREALLOC as usize }> =
    HashMap::new();

/// (Subnet id, receiving interface) → the precomputed ACK and the HA scope
/// we serve in that subnet now.
#[btf_map]
pub static XDHCP_SUBNETS: HashMap<SubnetKey, SubnetReply, { SUBNETS_CAPACITY as usize }> = HashMap::new();

/// giaddr → the subnet the daemon selects for a request relayed from it
/// (longest prefix; entries written so that it equals the daemon's
/// first-match rule).
#[btf_map]
pub static XDHCP_RELAYS: LpmTrie<[u8; 4], u32, { RELAYS_CAPACITY as usize }> = LpmTrie::new();

/// Reserved clients (MAC or client-id, interface, relayed subnet) → their
/// reply template and what the store says about their address; written by
/// the daemon on start-up, config reload and every store change touching
/// them.
#[btf_map]
pub static XDHCP_RESERVATIONS: HashMap<ReservationKey, ReservationEntry, { RESERVATIONS_CAPACITY as usize }> =
    HashMap::new();

/// Clock offset written by the daemon.
#[btf_map]
pub static XDHCP_SETTINGS: Array<Settings, 1> = Array::new();

/// One event per ACK sent here; the daemon makes each durable.
#[btf_map]
pub static XDHCP_EVENTS: RingBuf<RenewEvent, { EVENTS_BYTES as usize }> = RingBuf::new();

/// Scratch space: the request's options are copied here to be scanned, so
/// no variable-offset access touches packet memory (the verifier loses
/// track of those).
#[repr(C)]
pub struct Scratch {
    /// The request's options.
    pub req: [u8; SCRATCH],
    /// Bytes of `req` holding options.
    pub n: u32,
    /// One's-complement sum so far of the checksum being verified
    /// (`parse::delivered`), and the bytes of `req` it covers.
    pub csum: u32,
    /// Bytes of `req` summed into `csum`.
    pub csum_len: u32,
    /// Scan position in `req`.
    pub pos: u32,
    /// Scan result: 0 running, 1 reached END, 2 gave up.
    pub state: u32,
    /// Option 53 value.
    pub msg_type: u32,
    /// 1 when an option only the daemon handles was seen (51, 52, or a
    /// malformed 50/54).
    pub needs_daemon: u32,
    /// One bit per option the scan reads (12, 50, 53, 54, 55, 61) seen so
    /// far, to notice a repeat.
    pub seen: u32,
    /// 1 when option 50 (requested address) was seen; its value.
    pub has_req_ip: u32,
    /// Option 50 value.
    pub req_ip: [u8; 4],
    /// 1 when option 54 (server identifier) was seen.
    pub has_server_id: u32,
    /// Option 54 value.
    pub server_id: [u8; 4],
    /// 1 when option 12 (host name) was seen.
    pub has_hostname: u32,
    /// Offset and length of option 61 in `req`.
    pub cid_off: u32,
    /// Length of option 61.
    pub cid_len: u32,
    /// Offset of option 55 in `req`.
    pub prl_off: u32,
    /// Length of option 55.
    pub prl_len: u32,
    /// The client-id echo (option 61 header and value) of the reply.
    pub echo: [u8; ECHO_BUF],
    /// The event of an ACK, built here to keep it off the 512-byte stack.
    pub event: RenewEvent,
    /// Reservation lookup key, built here for the same reason.
    pub rkey: ReservationKey,
    /// The request's IP source and destination addresses.
    pub ips: [u8; 8],
    /// Never written, so zero (map values start zeroed): the source of the
    /// reply's zeroed BOOTP fields.
    pub zeros: [u8; ZEROS],
}

/// Bytes of [`Scratch::zeros`].
pub const ZEROS: usize = 256;

/// Buffer of the client-id echo (option 61 header + up to 32 bytes), a
/// power of two so its size can be masked for the verifier.
pub const ECHO_BUF: usize = 64;

/// Bytes of options we copy or build (a power of two: indexes are masked).
pub const SCRATCH: usize = 512;

/// Per-CPU [`Scratch`].
#[btf_map]
pub static XDHCP_SCRATCH: PerCpuArray<Scratch, 1> = PerCpuArray::new();

/// Adds one to this CPU's counter of `outcome`.
#[inline(always)]
pub fn count(outcome: Outcome) {
    if let Some(c) = XDHCP_COUNTERS.get_ptr_mut(0) {
        // Per-CPU slot: no other writer while this program runs on this CPU.
        unsafe { (*c).bump(outcome) };
    }
}

//! The fast path. Two kinds of requests are answered here (XDP_TX) with
//! exactly the reply the daemon would send; anything else is passed with
//! the reason counted:
//!
//! - a REQUEST from a client in RENEWING or REBINDING (ciaddr) or
//!   INIT-REBOOT (option 50) whose lease is in the lease map, unexpired,
//!   owned by it, in a subnet we serve now, and asking for nothing the
//!   precomputed reply lacks → ACK;
//! - a DISCOVER or REQUEST from a client with a reservation (by client-id
//!   or MAC) in the reservation map, for its reserved address, while the
//!   store holds nothing that would change the daemon's answer → OFFER /
//!   ACK.
//!
//! Both may arrive relayed (giaddr): the subnet is then the one the relay
//! map gives for giaddr, as the daemon selects it, and the reply goes to
//! giaddr:67 via the frame's sender. Otherwise replies go per RFC 2131 §4.1
//! (ciaddr, broadcast flag, else chaddr/yiaddr). Every answer is subject
//! to the subnet's HA scope (Kea's load-balancing hash).
//!
//! Variable-offset work happens in a per-CPU scratch buffer: the request's
//! options are copied in with `bpf_xdp_load_bytes`, the reply's options are
//! built there and copied out with `bpf_xdp_store_bytes`; packet memory is
//! only touched at offsets fixed relative to the IP header.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    btf_maps::lpm_trie::Key,
    helpers::{
        bpf_ktime_get_boot_ns, bpf_loop, bpf_ringbuf_query, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    programs::XdpContext,
};
use dhcp_common::{
    counters::Outcome,
    fastpath::{
        CID_PASS_ANY, CID_PASS_MISSING, EVENT_RENEWED, EVENTS_WAKE_EVERY as WAKE_EVERY, EVENT_RESERVED_ACK, LeaseEntry, LeaseKey, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL, RES_BY_CLIENT_ID,
        RES_BY_MAC, ReservationEntry, SubnetKey, SubnetReply,
    },
    ha::{mix, serves},
};

use crate::{
    maps::{
        ECHO_BUF, SCRATCH, Scratch, XDHCP_EVENTS, ZEROS, XDHCP_LEASES, XDHCP_RELAYS, XDHCP_RESERVATIONS, XDHCP_SCRATCH,
        XDHCP_SETTINGS, XDHCP_SUBNETS,
    },
    parse::{BOOTP_FIXED_LEN, DhcpRequest, ptr_at},
};

use dhcp_common::dhcp::msg_type::{ACK as DHCPACK, DISCOVER as DHCPDISCOVER, OFFER as DHCPOFFER, REQUEST as DHCPREQUEST};
/// Options we look at before giving up (a REQUEST carries about ten).
const MAX_SCANNED_OPTIONS: usize = 48;
/// Longest parameter request list we check.
const MAX_PRL: usize = 64;
const MASK: usize = SCRATCH - 1;

/// `buf[i & MASK]` as a BPF subprogram: inlined, LLVM turns the masked
/// index into a pointer increment whose bound the verifier cannot see.
#[inline(never)]
fn at(buf: &[u8; SCRATCH], i: usize) -> u8 {
    buf[i & MASK]
}

const SCAN_RUNNING: u32 = 0;
const SCAN_END: u32 = 1;
const SCAN_GAVE_UP: u32 = 2;

/// One option per call, driven by `bpf_loop` so the verifier checks the
/// body once instead of once per iteration and per path. State lives in
/// the per-CPU scratch value.
extern "C" fn scan_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(s) = XDHCP_SCRATCH.get_ptr_mut(0) else { return 1 };
    let s = unsafe { &mut *s };
    let i = s.pos as usize;
    let n = s.n as usize;
    if i >= n || i >= SCRATCH {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    let code = at(&s.req, i);
    if code == 0 {
        s.pos += 1;
        return 0;
    }
    if code == 255 {
        s.state = SCAN_END;
        return 1;
    }
    if i + 1 >= n {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    let len = at(&s.req, i + 1) as usize;
    if i + 2 + len > n {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    // A length the daemon refuses, a structured option only its parser can
    // check, or a second copy of an option read here
    // (the daemon's parser joins or replaces repeats, RFC 3396): the
    // daemon decides, so both answer the same way.
    let read_bit = match code {
        12 => 1,
        50 => 2,
        53 => 4,
        54 => 8,
        55 => 16,
        61 => 32,
        _ => 0,
    };
    if !dhcp_common::dhcp::option_len_ok(code, len as u8)
        || matches!(dhcp_common::dhcp::option_shape(code), dhcp_common::dhcp::Shape::Parsed)
        || s.seen & read_bit != 0
    {
        s.needs_daemon = 1;
    }
    s.seen |= read_bit;
    match code {
        53 => s.msg_type = at(&s.req, i + 2) as u32,
        50 | 54 if len != 4 => s.needs_daemon = 1,
        50 => {
            s.has_req_ip = 1;
            s.req_ip = [at(&s.req, i + 2), at(&s.req, i + 3), at(&s.req, i + 4), at(&s.req, i + 5)];
        }
        54 => {
            s.has_server_id = 1;
            s.server_id = [at(&s.req, i + 2), at(&s.req, i + 3), at(&s.req, i + 4), at(&s.req, i + 5)];
        }
        // Lease time and overload change the answer; relay agent
        // information and subnet selection are echoed (and may select
        // another subnet), and a client FQDN is answered with a sanitised,
        // qualified name, which only the daemon does.
        51 | 52 | 81 | 82 | 118 => s.needs_daemon = 1,
        12 => s.has_hostname = 1,
        61 => {
            s.cid_off = (i + 2) as u32;
            s.cid_len = len as u32;
        }
        55 => {
            s.prl_off = (i + 2) as u32;
            s.prl_len = len as u32;
        }
        _ => {}
    }
    s.pos = (i + 2 + len) as u32;
    0
}

/// What `try_answer` did with a frame it kept.
pub enum Verdict {
    /// Answered (XDP_TX); the outcome to count.
    Tx(Outcome),
    /// Half-built when a write failed: dropped (counted as malformed).
    Drop,
}

/// Everything the one reply writer needs, decided by either path.
struct Plan<'a> {
    /// Template: addresses of this server, option bytes and their sums.
    tmpl: &'a SubnetReply,
    /// Ethernet and IP destination and UDP port (RFC 2131 §4.1).
    dst_mac: [u8; 6],
    dst_ip: [u8; 4],
    dst_port: u8,
    /// `ciaddr` and `giaddr` of the reply (kept from the request) and `yiaddr`.
    ciaddr: [u8; 4],
    giaddr: [u8; 4],
    yiaddr: [u8; 4],
    /// Sum of the head as written (the template's, adjusted for a patch).
    head_sum: u32,
    /// 1: write `DHCPACK` at head offset `type_off` (template is an OFFER).
    patch: u32,
    type_off: usize,
    /// The lease map entry to extend (renewals), or null (reservations).
    lease: *mut LeaseEntry,
    /// What to count.
    answered: Outcome,
}

/// What the request says about how it reached us, which is how the daemon
/// selects its subnet (`server::select_subnet`).
struct Arrival {
    /// Receiving interface.
    ifindex: u32,
    /// Subnet giaddr selects (0: not relayed).
    relay_subnet: u32,
    /// IP destination is not the limited broadcast.
    unicast: bool,
    /// IP source.
    src_ip: [u8; 4],
    /// Ethernet source: the client, or the relay / router that forwarded.
    src_mac: [u8; 6],
}

const CLIENT_PORT: u8 = 68;
const SERVER_PORT: u8 = 67;

/// Handles a DHCP request frame.
#[inline(always)]
pub fn try_answer(ctx: &XdpContext, req: &DhcpRequest) -> Result<Verdict, Outcome> {
    // Read first, at a fixed offset from the frame start: read later, LLVM
    // derives its bound from the BOOTP checks and the verifier cannot.
    let dst_mac = unsafe { *ptr_at::<[u8; 6]>(ctx, 0).ok_or(Outcome::Malformed)? };
    let src_mac = unsafe { *ptr_at::<[u8; 6]>(ctx, 6).ok_or(Outcome::Malformed)? };
    let b = req.bootp_off;
    if req.ihl != 20 || b > 64 {
        return Err(Outcome::PassedNotRenewal);
    }
    let scratch = XDHCP_SCRATCH.get_ptr_mut(0).ok_or(Outcome::PassedNotRenewal)?;
    let scratch = unsafe { &mut *scratch };
    let opt_off = b + BOOTP_FIXED_LEN;
    // Options end where the UDP payload does (the daemon reads no further).
    let frame_len = ctx.data_end() - ctx.data();
    let end = if req.udp_end < frame_len { req.udp_end } else { frame_len };
    if end <= opt_off {
        return Err(Outcome::PassedNotRenewal);
    }
    let mut n = end - opt_off;
    if n > SCRATCH {
        n = SCRATCH;
    }
    if n == 0
        || unsafe { bpf_xdp_load_bytes(ctx.ctx, opt_off as u32, scratch.req.as_mut_ptr().cast(), sized(n, SCRATCH)) }
            != 0
    {
        return Err(Outcome::PassedNotRenewal);
    }
    // IP source and destination, copied too: read through a packet pointer
    // at the IP header's variable offset, LLVM merges the bound checks into
    // one the verifier does not accept.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, (req.ip_off + 12) as u32, scratch.ips.as_mut_ptr().cast(), 8) } != 0 {
        return Err(Outcome::Malformed);
    }
    let src_ip = [scratch.ips[0], scratch.ips[1], scratch.ips[2], scratch.ips[3]];
    let dst_ip = [scratch.ips[4], scratch.ips[5], scratch.ips[6], scratch.ips[7]];
    // Volatile: merged, these stores become a byte-at-a-time memset call.
    for (field, value) in [
        (&mut scratch.n, n as u32),
        (&mut scratch.pos, 0),
        (&mut scratch.state, SCAN_RUNNING),
        (&mut scratch.msg_type, 0),
        (&mut scratch.needs_daemon, 0),
        (&mut scratch.seen, 0),
        (&mut scratch.has_req_ip, 0),
        (&mut scratch.has_server_id, 0),
        (&mut scratch.has_hostname, 0),
        (&mut scratch.cid_len, 0),
        (&mut scratch.cid_off, 0),
        (&mut scratch.prl_len, 0),
        (&mut scratch.prl_off, 0),
    ] {
        unsafe { core::ptr::write_volatile(field, value) };
    }
    unsafe { bpf_loop(MAX_SCANNED_OPTIONS as u32, scan_step as *mut _, core::ptr::null_mut(), 0) };
    // Not ended within the scanned options: not sure, let the daemon decide.
    if scratch.state != SCAN_END {
        return Err(Outcome::PassedNotRenewal);
    }
    let fixed = unsafe { *ptr_at::<[u8; 28]>(ctx, b).ok_or(Outcome::Malformed)? };
    let (op, htype, hlen) = (fixed[0], fixed[1], fixed[2]);
    let giaddr = [fixed[24], fixed[25], fixed[26], fixed[27]];
    // A BOOTREPLY to port 67 is dropped by the daemon; only Ethernet
    // clients have templates.
    if op != 1 || htype != 1 || hlen != 6 || scratch.cid_len as usize > MAX_CLIENT_ID {
        return Err(Outcome::PassedNotRenewal);
    }
    let chaddr = unsafe { *ptr_at::<[u8; 6]>(ctx, b + 28).ok_or(Outcome::Malformed)? };
    let settings = XDHCP_SETTINGS.get(0).ok_or(Outcome::PassedNotServing)?;
    // Unsigned division only (BPF has no signed one); Unix time is positive.
    let now = (unsafe { bpf_ktime_get_boot_ns() }).wrapping_add(settings.unix_minus_boot_ns as u64) / 1_000_000_000;
    // Relayed: the subnet is giaddr's (none: the daemon is silent).
    let relay_subnet = if giaddr != [0; 4] {
        *XDHCP_RELAYS.get(&Key::new(32, giaddr)).ok_or(Outcome::PassedNotServing)?
    } else {
        0
    };
    if giaddr != [0; 4] && relay_subnet == 0 {
        return Err(Outcome::PassedNotServing);
    }
    let arrival = Arrival {
        ifindex: ctx.ingress_ifindex() as u32,
        relay_subnet,
        unicast: dst_ip != [0xff; 4],
        src_ip,
        src_mac,
    };

    let plan = match reservation(scratch, &arrival, &chaddr)? {
        Some(res) => reserved(scratch, res, &fixed, &chaddr, &arrival)?,
        None => renewal(scratch, &fixed, &chaddr, &arrival, now)?,
    };
    let tmpl = plan.tmpl;
    // Only what the stack delivers to the daemon's socket: a bridge port
    // is promiscuous, so XDP also sees frames meant for other hosts.
    if (dst_mac != [0xff; 6] && dst_mac != tmpl.server_mac) || (dst_ip != [0xff; 4] && dst_ip != tmpl.server_ip) {
        return Err(Outcome::PassedOtherDestination);
    }
    // Kea's HA query filter: DISCOVER and REQUEST are load balanced.
    if !serves(tmpl.serving, lb_hash(scratch, &chaddr)) {
        return Err(Outcome::PassedOutOfScope);
    }

    // The reply's options: head (codes < 61), client-id echo, tail.
    let cid_len = scratch.cid_len as usize;
    let head = tmpl.head_len as usize;
    let tail = tmpl.tail_len as usize;
    if head == 0 || head > MAX_HEAD || tail == 0 || tail > MAX_TAIL || cid_len > MAX_CLIENT_ID {
        return Err(Outcome::PassedNotServing);
    }
    let echo = if tmpl.echo_client_id == 1 && cid_len > 0 { 2 + cid_len } else { 0 };
    scratch.echo[0] = 61;
    scratch.echo[1] = cid_len as u8;
    let cid_off = scratch.cid_off as usize;
    for i in 0..MAX_CLIENT_ID {
        if i >= cid_len {
            break;
        }
        scratch.echo[2 + i] = at(&scratch.req, cid_off + i);
    }

    // The daemon learns what the kernel answered only through the event
    // ring: without room for the event, the daemon answers instead.
    let needs_event = !(plan.lease.is_null() && plan.answered == Outcome::AnsweredOffer);
    if needs_event && ring_free() < RING_HEADROOM {
        return Err(Outcome::PassedRingFull);
    }

    let new_len = opt_off + head + echo + tail;
    let delta = new_len as i32 - frame_len as i32;
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Err(Outcome::PassedNotRenewal);
    }
    // From here on the frame is ours: a failure leaves it half-built, so it
    // is dropped (the client retransmits) and counted as malformed.
    // xid, flags, and hops (kept in place, summed for the checksum).
    let xid_flags = [fixed[4], fixed[5], fixed[6], fixed[7], fixed[10], fixed[11], fixed[3]];
    let parts = Parts { head, echo, tail, echo_bytes: &scratch.echo, zeros: &scratch.zeros };
    if write_reply(ctx, req, &plan, &xid_flags, &chaddr, &parts, new_len).is_none() {
        crate::maps::count(Outcome::Malformed);
        return Ok(Verdict::Drop);
    }

    let valid = tmpl.lease_time;
    let mut expire = now + valid as u64;
    // Never move an expiry back: `now` comes from an offset the daemon
    // rewrites every second, which can step back by one.
    if !plan.lease.is_null() {
        let held = unsafe { (*plan.lease).expire };
        if held > expire {
            expire = held;
        }
    }
    let ev = &mut scratch.event;
    ev.expire = expire;
    ev.addr = plan.yiaddr;
    ev.valid_lifetime = valid;
    ev._pad = [0; 2];
    ev._pad_mac = [0; 2];
    if plan.lease.is_null() {
        if plan.answered == Outcome::AnsweredOffer {
            return Ok(Verdict::Tx(plan.answered));
        }
        ev.kind = EVENT_RESERVED_ACK;
        ev.mac = chaddr;
        ev.client_id_len = cid_len as u8;
        for i in 0..MAX_CLIENT_ID {
            ev.client_id[i] = if i < cid_len { scratch.echo[2 + i] } else { 0 };
        }
    } else {
        unsafe { (*plan.lease).expire = expire };
        ev.kind = EVENT_RENEWED;
        ev.client_id_len = 0;
        // mac, _pad_mac and client_id: 40 bytes from a 4-aligned offset.
        unsafe { zero_words(ev.mac.as_mut_ptr(), (6 + 2 + MAX_CLIENT_ID) / 4) };
    }
    // subnet_id was set by the path that chose the template. Borrowed: by
    // value it would be copied onto the 512-byte stack.
    #[allow(clippy::needless_borrows_for_generic_args)]
    if XDHCP_EVENTS.output(&scratch.event, wakeup_flag()).is_err() {
        crate::maps::count(Outcome::EventLost);
    }
    Ok(Verdict::Tx(plan.answered))
}

/// Free bytes the ring must have before the kernel answers something the
/// daemon has to learn: 256 events, more than CPUs can race for between
/// this check and the write.
const RING_HEADROOM: u64 = 256 * EVENT_RECORD;

/// Bytes of the event ring not yet consumed by the daemon's drain.
#[inline(always)]
fn ring_free() -> u64 {
    let ring = core::ptr::from_ref(&XDHCP_EVENTS).cast_mut().cast();
    let pending = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA as u64) };
    (dhcp_common::fastpath::EVENTS_BYTES as u64).saturating_sub(pending)
}

/// Bytes one event takes in the ring (its 8-byte record header included).
const EVENT_RECORD: u64 = (core::mem::size_of::<dhcp_common::fastpath::RenewEvent>() as u64 + 8 + 7) & !7;

/// The ring's wakeup for the event about to be written. With flags 0 the
/// kernel wakes the daemon whenever it has caught up, which at high rates
/// is once per ACK: an irq_work (a self-IPI, a VM exit here) plus a
/// cross-CPU wakeup per packet. Instead the daemon is woken once per
/// [`WAKE_EVERY`] pending events and otherwise polls on a short timer
/// (`daemon::drain_renewals`), which bounds how long a renewal waits.
/// Concurrent CPUs may both skip a multiple; the timer covers that.
#[inline(always)]
fn wakeup_flag() -> u64 {
    let ring = core::ptr::from_ref(&XDHCP_EVENTS).cast_mut().cast();
    let pending = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA as u64) } / EVENT_RECORD;
    if (pending + 1) % WAKE_EVERY == 0 { BPF_RB_FORCE_WAKEUP as u64 } else { BPF_RB_NO_WAKEUP as u64 }
}

/// Kea's load-balancing hash of the request: over option 61's payload when
/// present and non-empty, else over chaddr (the shared `mix` step, walked
/// from the last byte).
#[inline(always)]
fn lb_hash(scratch: &Scratch, chaddr: &[u8; 6]) -> u8 {
    let len = scratch.cid_len as usize;
    if len == 0 || len > MAX_CLIENT_ID {
        let mut h = 6u8;
        for i in 0..6 {
            h = mix(h, chaddr[5 - i]);
        }
        return h;
    }
    let off = scratch.cid_off as usize;
    let mut h = len as u8;
    for i in 0..MAX_CLIENT_ID {
        if i >= len {
            break;
        }
        h = mix(h, at(&scratch.req, off + len - 1 - i));
    }
    h
}

/// The reservation the daemon's engine would apply: the client's
/// client-id or MAC entry for this interface and (relayed) subnet. When
/// both have one, the configured `host-reservation-identifiers` order
/// picks (Kea's default puts the MAC first): the daemon's call.
#[inline(always)]
fn reservation<'a>(
    scratch: &mut Scratch,
    arrival: &Arrival,
    chaddr: &[u8; 6],
) -> Result<Option<&'a ReservationEntry>, Outcome> {
    let cid_len = scratch.cid_len as usize;
    let off = scratch.cid_off as usize;
    scratch.rkey.ifindex = arrival.ifindex;
    scratch.rkey.relay_subnet = arrival.relay_subnet;
    if cid_len > 0 && cid_len <= MAX_CLIENT_ID {
        scratch.rkey.kind = RES_BY_CLIENT_ID;
        scratch.rkey.len = cid_len as u32;
        for i in 0..MAX_CLIENT_ID {
            scratch.rkey.id[i] = if i < cid_len { at(&scratch.req, off + i) } else { 0 };
        }
        if let Some(r) = unsafe { XDHCP_RESERVATIONS.get(&scratch.rkey) } {
            mac_key(scratch, chaddr);
            if unsafe { XDHCP_RESERVATIONS.get(&scratch.rkey) }.is_some() {
                return Err(Outcome::PassedReservation);
            }
            return Ok(Some(r));
        }
    }
    mac_key(scratch, chaddr);
    Ok(unsafe { XDHCP_RESERVATIONS.get(&scratch.rkey) })
}

/// Turns the scratch reservation key into `chaddr`'s MAC key.
#[inline(always)]
fn mac_key(scratch: &mut Scratch, chaddr: &[u8; 6]) {
    scratch.rkey.kind = RES_BY_MAC;
    scratch.rkey.len = 6;
    unsafe { zero_words(scratch.rkey.id.as_mut_ptr(), MAX_CLIENT_ID / 4) };
    for i in 0..6 {
        scratch.rkey.id[i] = chaddr[i];
    }
}

/// The lease path: RENEWING / REBINDING (ciaddr) or INIT-REBOOT (option
/// 50) of an address in the lease map.
#[inline(always)]
fn renewal<'a>(
    scratch: &mut Scratch,
    fixed: &[u8; 28],
    chaddr: &[u8; 6],
    arrival: &Arrival,
    now: u64,
) -> Result<Plan<'a>, Outcome> {
    let ciaddr = [fixed[12], fixed[13], fixed[14], fixed[15]];
    let giaddr = [fixed[24], fixed[25], fixed[26], fixed[27]];
    if scratch.msg_type != DHCPREQUEST as u32 || scratch.needs_daemon != 0 || scratch.has_server_id != 0 {
        return Err(Outcome::PassedNotRenewal);
    }
    let reboot = ciaddr == [0; 4];
    if (reboot && scratch.has_req_ip == 0) || (!reboot && scratch.has_req_ip != 0) {
        return Err(Outcome::PassedNotRenewal);
    }
    let addr = if reboot { scratch.req_ip } else { ciaddr };
    let relayed = arrival.relay_subnet != 0;
    // Unrelayed, the daemon selects by ciaddr for a unicast renewal (the
    // map only holds leases whose address's first subnet is theirs), by
    // the source address for other unicasts (not mirrored), else by the
    // receiving interface.
    if !relayed && reboot && arrival.unicast && arrival.src_ip != [0; 4] {
        return Err(Outcome::PassedNotRenewal);
    }
    let by_link = !relayed && (reboot || !arrival.unicast);
    let lease = XDHCP_LEASES.get_ptr_mut(LeaseKey { addr }).ok_or(Outcome::PassedNoLease)?;
    let lease_ref = unsafe { &*lease };
    if relayed && arrival.relay_subnet != lease_ref.subnet_id {
        return Err(Outcome::PassedNotRenewal);
    }
    let key = SubnetKey { subnet_id: lease_ref.subnet_id, ifindex: arrival.ifindex };
    let subnet: &'a SubnetReply = unsafe { XDHCP_SUBNETS.get(key) }.ok_or(Outcome::PassedNotServing)?;
    if subnet.serving == 0 || (by_link && subnet.link != 1) {
        return Err(Outcome::PassedNotServing);
    }
    // On its link, the daemon answers a ciaddr with a frame to chaddr; the
    // kernel to the frame's sender: the same only when they agree.
    if !relayed && !reboot && subnet.link == 1 && arrival.src_mac != *chaddr {
        return Err(Outcome::PassedNotRenewal);
    }

    let cid_len = scratch.cid_len as usize;
    // A client-id reservation the reservation map would have found first
    // is not this client's; one it lacks could be.
    let cid_pass = subnet.cid_pass & CID_PASS_MISSING != 0 || (!relayed && !by_link && subnet.cid_pass & CID_PASS_ANY != 0);
    if cid_len > MAX_CLIENT_ID || (cid_len > 0 && cid_pass) {
        return Err(Outcome::PassedNotRenewal);
    }
    // Ownership, as the daemon's `owns`: by client-id when both have one
    // and match-client-id is on, else by hardware address.
    let cid_rule = subnet.match_client_id == 1 && cid_len > 0;
    if cid_rule && lease_ref.client_id_len > 0 {
        if lease_ref.client_id_len as usize != cid_len {
            return Err(Outcome::PassedNotOwner);
        }
        if !same_cid(scratch, &lease_ref.client_id, cid_len) {
            return Err(Outcome::PassedNotOwner);
        }
    } else if lease_ref.hlen != 6 || lease_ref.hwaddr[..6] != *chaddr {
        return Err(Outcome::PassedNotOwner);
    }
    // INIT-REBOOT: the daemon NAKs a client holding another address; it
    // finds the client's lease by client-id (which must then be this one's)
    // or by MAC, and `sole` says no other lease shares either.
    if reboot && (lease_ref.sole != 1 || (cid_rule && lease_ref.client_id_len == 0)) {
        return Err(Outcome::PassedNotRenewal);
    }
    if lease_ref.expire <= now {
        return Err(Outcome::PassedExpired);
    }
    if asks_for_more(scratch, subnet) {
        return Err(Outcome::PassedNotRenewal);
    }
    scratch.event.subnet_id = lease_ref.subnet_id;
    let (dst_mac, dst_ip, dst_port) = destination(fixed, chaddr, arrival, addr);
    Ok(Plan {
        tmpl: subnet,
        dst_mac,
        dst_ip,
        dst_port,
        ciaddr,
        giaddr,
        yiaddr: addr,
        head_sum: subnet.head_sum,
        patch: 0,
        type_off: 0,
        lease,
        answered: Outcome::AnsweredAck,
    })
}

/// RFC 2131 §4.1, as the engine's `destination` for an OFFER or ACK of
/// `yiaddr`: the relay (its port 67, via the frame's sender), ciaddr (via
/// the frame's sender), broadcast when asked, else chaddr.
#[inline(always)]
fn destination(fixed: &[u8; 28], chaddr: &[u8; 6], arrival: &Arrival, yiaddr: [u8; 4]) -> ([u8; 6], [u8; 4], u8) {
    let ciaddr = [fixed[12], fixed[13], fixed[14], fixed[15]];
    let giaddr = [fixed[24], fixed[25], fixed[26], fixed[27]];
    if arrival.relay_subnet != 0 {
        (arrival.src_mac, giaddr, SERVER_PORT)
    } else if ciaddr != [0; 4] {
        (arrival.src_mac, ciaddr, CLIENT_PORT)
    } else if fixed[10] & 0x80 != 0 {
        ([0xff; 6], [0xff; 4], CLIENT_PORT)
    } else {
        (*chaddr, yiaddr, CLIENT_PORT)
    }
}

/// The reservation path: the client's client-id or MAC has an entry for
/// this interface and subnet. Mirrors the engine's `decide` for a reserved
/// client whose address is free or its own; every other case is passed.
#[inline(always)]
fn reserved<'a>(
    scratch: &mut Scratch,
    res: &'a ReservationEntry,
    fixed: &[u8; 28],
    chaddr: &[u8; 6],
    arrival: &Arrival,
) -> Result<Plan<'a>, Outcome> {
    let t = &res.reply;
    let ciaddr = [fixed[12], fixed[13], fixed[14], fixed[15]];
    let giaddr = [fixed[24], fixed[25], fixed[26], fixed[27]];
    if t.serving == 0 {
        return Err(Outcome::PassedNotServing);
    }
    // Options 51/52, a client host name the daemon would store, a
    // client-id that could select a client-id reservation the kernel
    // lacks: the daemon.
    let cid_len = scratch.cid_len as usize;
    if scratch.needs_daemon != 0
        || (res.client_hostname == 1 && scratch.has_hostname != 0)
        || cid_len > MAX_CLIENT_ID
        || (cid_len > 0 && res.by_client_id == 0 && t.cid_pass & CID_PASS_MISSING != 0)
    {
        return Err(Outcome::PassedReservation);
    }
    // An unrelayed request without ciaddr from a configured source address
    // selects its subnet by that address in the daemon; one with a ciaddr
    // is answered by a frame to chaddr, so only from chaddr itself.
    if arrival.relay_subnet == 0
        && ((ciaddr == [0; 4] && arrival.src_ip != [0; 4]) || (ciaddr != [0; 4] && arrival.src_mac != *chaddr))
    {
        return Err(Outcome::PassedReservation);
    }
    let addr = res.addr;
    let ack = match scratch.msg_type as u8 {
        DHCPDISCOVER => {
            if ciaddr != [0; 4] {
                return Err(Outcome::PassedReservation);
            }
            false
        }
        DHCPREQUEST => {
            if scratch.has_server_id != 0 {
                // SELECTING: our OFFER, for the reserved address.
                if scratch.server_id != t.server_ip
                    || ciaddr != [0; 4]
                    || scratch.has_req_ip == 0
                    || scratch.req_ip != addr
                {
                    return Err(Outcome::PassedReservation);
                }
            } else if ciaddr != [0; 4] {
                // RENEWING / REBINDING the reserved address. With option
                // 50 as well (RFC 2131 forbids it), the daemon treats the
                // client as INIT-REBOOT, as Kea does: its call.
                if ciaddr != addr || scratch.has_req_ip != 0 {
                    return Err(Outcome::PassedReservation);
                }
            } else {
                // INIT-REBOOT: the daemon looks the client up by client-id
                // (MAC reservation) or by MAC (client-id reservation) too;
                // the kernel knows only the reserved address's lease.
                if scratch.has_req_ip == 0
                    || scratch.req_ip != addr
                    || (res.by_client_id == 0 && cid_len > 0 && t.match_client_id == 1)
                    || (res.by_client_id == 1 && res.held != 1)
                {
                    return Err(Outcome::PassedReservation);
                }
            }
            true
        }
        _ => return Err(Outcome::PassedReservation),
    };
    if res.clean != 1 {
        return Err(Outcome::PassedReservedHeld);
    }
    // The stored lease of the address is this client's; under the
    // client-id rule it is another client's when the client-ids differ.
    let cid_rule = t.match_client_id == 1 && cid_len > 0 && res.held_cid_len > 0;
    if res.held == 1 && cid_rule && (res.held_cid_len as usize != cid_len || !same_cid(scratch, &res.held_cid, cid_len)) {
        return Err(Outcome::PassedReservedHeld);
    }
    // No record of the client: in INIT-REBOOT the daemon NAKs it (or, not
    // authoritative, stays silent); otherwise a non-authoritative daemon
    // may decide differently. Either way the daemon's call.
    if ack && scratch.has_server_id == 0 && res.held != 1 && (ciaddr == [0; 4] || res.authoritative != 1) {
        return Err(Outcome::PassedReservation);
    }
    if asks_for_more(scratch, t) {
        return Err(Outcome::PassedReservation);
    }
    let type_off = res.type_off as usize;
    if type_off >= MAX_HEAD || type_off >= t.head_len as usize {
        return Err(Outcome::PassedNotServing);
    }
    let (dst_mac, dst_ip, dst_port) = destination(fixed, chaddr, arrival, addr);
    // OFFER (2) → ACK (5): +3 in the high or low half of its word.
    let bump = if type_off & 1 == 0 { ((DHCPACK - DHCPOFFER) as u32) << 8 } else { (DHCPACK - DHCPOFFER) as u32 };
    scratch.event.subnet_id = res.subnet_id;
    Ok(Plan {
        tmpl: t,
        dst_mac,
        dst_ip,
        dst_port,
        ciaddr,
        giaddr,
        yiaddr: addr,
        head_sum: if ack { t.head_sum + bump } else { t.head_sum },
        patch: ack as u32,
        type_off,
        lease: core::ptr::null_mut(),
        answered: if ack { Outcome::AnsweredReservedAck } else { Outcome::AnsweredOffer },
    })
}

/// Whether the request's client-id (in scratch) equals `id[..len]`.
#[allow(clippy::needless_range_loop)] // a constant trip count the verifier bounds
#[inline(always)]
fn same_cid(scratch: &Scratch, id: &[u8; MAX_CLIENT_ID], len: usize) -> bool {
    let off = scratch.cid_off as usize;
    for i in 0..MAX_CLIENT_ID {
        if i >= len {
            break;
        }
        if id[i] != at(&scratch.req, off + i) {
            return false;
        }
    }
    true
}

/// Whether the parameter request list asks for an option the daemon would
/// add to the template.
#[inline(always)]
fn asks_for_more(scratch: &Scratch, t: &SubnetReply) -> bool {
    let (off, len) = (scratch.prl_off as usize, scratch.prl_len as usize);
    if len > MAX_PRL {
        return true;
    }
    for i in 0..MAX_PRL {
        if i >= len {
            break;
        }
        let code = at(&scratch.req, off + i);
        if t.prl_pass[(code >> 3) as usize] & (1 << (code & 7)) != 0 {
            return true;
        }
    }
    false
}

#[inline(always)]
fn put<T: Copy>(ctx: &XdpContext, off: usize, v: T) -> Option<()> {
    let p = ptr_at::<T>(ctx, off)? as *mut T;
    unsafe { p.write_unaligned(v) };
    Some(())
}

#[inline(always)]
fn write_reply(
    ctx: &XdpContext,
    req: &DhcpRequest,
    plan: &Plan,
    xid_flags: &[u8; 7],
    src_chaddr: &[u8; 6],
    parts: &Parts,
    new_len: usize,
) -> Option<()> {
    let subnet = plan.tmpl;
    let ip = req.ip_off;
    let udp = ip + 20;
    let b = req.bootp_off;
    if b != udp + 8 || ip > 18 {
        return None;
    }
    // Ethernet: to the destination, from us. A VLAN tag keeps its VLAN id
    // and loses the request's priority bits: the daemon's reply leaves
    // through the VLAN device with priority 0 (found by the differential
    // fuzzer).
    put(ctx, 0, plan.dst_mac)?;
    put(ctx, 6, subnet.server_mac)?;
    if ip == 18 {
        put(ctx, 14, [crate::parse::byte(ctx, 14)? & 0x0f])?;
    }
    // IPv4, as `frame::build` writes it.
    let ip_len = ((new_len - ip) as u16).to_be_bytes();
    put(ctx, ip, [0x45u8, 0x10, ip_len[0], ip_len[1], 0, 0, 0, 0, 64, 17, 0, 0])?;
    put(ctx, ip + 12, subnet.server_ip)?;
    put(ctx, ip + 16, plan.dst_ip)?;
    // UDP 67 → 68 (67 to a relay), checksum filled below.
    let udp_len = (new_len - udp) as u16;
    let ul = udp_len.to_be_bytes();
    put(ctx, udp, [0u8, SERVER_PORT, 0, plan.dst_port, ul[0], ul[1], 0, 0])?;
    // BOOTP: reply, Ethernet, 6, hops kept (as Kea copies them); xid
    // kept; no secs, flags kept; ciaddr kept; yiaddr; siaddr from config;
    // giaddr kept.
    put(ctx, b, [2u8, 1, 6])?;
    put(ctx, b + 8, [0u8, 0])?;
    put(ctx, b + 16, plan.yiaddr)?;
    put(ctx, b + 20, subnet.next_server)?;
    let store = |off: u32, from: *const u8, len: u32| unsafe { bpf_xdp_store_bytes(ctx.ctx, off, from as *mut _, len) };
    // chaddr past the 6 MAC bytes, sname and file: zeros, as dhcproto
    // writes; one copy from never-written scratch instead of ~200 bounds
    // checked byte stores.
    if store((b + 34) as u32, parts.zeros.as_ptr(), CHADDR_PAD_SNAME_FILE as u32) != 0 {
        return None;
    }
    // Options straight from the template (and the echo), no byte loops.
    let opt_off = (b + BOOTP_FIXED_LEN) as u32;
    let (head, echo, tail) = (parts.head, parts.echo, parts.tail);
    if head == 0 || head > MAX_HEAD || tail == 0 || tail > MAX_TAIL || echo > 2 + MAX_CLIENT_ID {
        return None;
    }
    if store(opt_off, subnet.head.as_ptr(), sized(head, MAX_HEAD)) != 0 {
        return None;
    }
    if plan.patch == 1 {
        let ack = [DHCPACK];
        if store(opt_off + (plan.type_off & (MAX_HEAD - 1)) as u32, ack.as_ptr(), 1) != 0 {
            return None;
        }
    }
    if echo > 0 && store(opt_off + head as u32, parts.echo_bytes.as_ptr(), sized(echo, ECHO_BUF)) != 0 {
        return None;
    }
    if store(opt_off + (head + echo) as u32, subnet.tail.as_ptr(), sized(tail, MAX_TAIL)) != 0 {
        return None;
    }

    // Checksums from the values just written (re-reading packet memory at
    // these variable offsets is what the verifier cannot follow).
    let w = |a: u8, b: u8| u16::from_be_bytes([a, b]) as u32;
    let w4 = |a: [u8; 4]| w(a[0], a[1]) + w(a[2], a[3]);
    let sip = subnet.server_ip;
    let mut sum = w(0x45, 0x10) + w(ip_len[0], ip_len[1]) + w(64, 17);
    sum += w4(sip) + w4(plan.dst_ip);
    put(ctx, ip + 10, fold(sum).to_be_bytes())?;
    // UDP: pseudo-header, header, fixed BOOTP part, options.
    let mut sum = 17 + 2 * udp_len as u32;
    sum += w4(sip) + w4(plan.dst_ip);
    sum += SERVER_PORT as u32 + plan.dst_port as u32;
    sum += w(2, 1) + w(6, xid_flags[6]);
    sum += w(xid_flags[0], xid_flags[1]) + w(xid_flags[2], xid_flags[3]) + w(xid_flags[4], xid_flags[5]);
    sum += w4(plan.ciaddr) + w4(plan.yiaddr) + w4(subnet.next_server) + w4(plan.giaddr);
    sum += w(src_chaddr[0], src_chaddr[1]) + w(src_chaddr[2], src_chaddr[3]) + w(src_chaddr[4], src_chaddr[5]);
    sum += w(99, 130) + w(83, 99);
    // Options: the template's sums; a part starting at an odd offset
    // contributes its byte-swapped sum.
    sum = fold_only(sum) + fold_only(plan.head_sum);
    let mut echo_sum = 0u32;
    for i in 0..(2 + MAX_CLIENT_ID) / 2 {
        if 2 * i >= echo {
            break;
        }
        let hi = parts.echo_bytes[(2 * i) & (ECHO_BUF - 1)] as u32;
        let lo = if 2 * i + 1 < echo { parts.echo_bytes[(2 * i + 1) & (ECHO_BUF - 1)] as u32 } else { 0 };
        echo_sum += (hi << 8) | lo;
    }
    sum = fold_only(sum) + at_parity(echo_sum, head);
    sum = fold_only(sum) + at_parity(subnet.tail_sum, head + echo);
    let c = fold(sum);
    put(ctx, udp + 6, (if c == 0 { 0xffff } else { c }).to_be_bytes())?;
    Some(())
}

/// A checked size in 1..=cap, passed through a BPF subprogram as
/// ((n - 1) & (cap - 1)) + 1: the identity for those values and a range the
/// verifier sees. Inlined, LLVM drops the mask (it knows the range) and
/// later reloads the size from the map, unbounded.
#[inline(never)]
fn sized(n: usize, cap: usize) -> u32 {
    ((n.wrapping_sub(1) & (cap - 1)) + 1) as u32
}

/// The parts of the reply's options.
struct Parts<'a> {
    head: usize,
    echo: usize,
    tail: usize,
    echo_bytes: &'a [u8; ECHO_BUF],
    zeros: &'a [u8; ZEROS],
}

/// BOOTP bytes after chaddr's 6 MAC bytes up to the cookie: 10 + 64 + 128.
const CHADDR_PAD_SNAME_FILE: usize = 10 + 64 + 128;
const _: () = assert!(CHADDR_PAD_SNAME_FILE <= ZEROS);

/// Zeroes `words` 4-byte words from `p` with volatile stores: a zero-array
/// assignment compiles to a call of a byte-at-a-time memset subprogram.
///
/// # Safety
/// `p` is 4-aligned and valid for `4 * words` bytes (callers pass fields
/// at 4-aligned offsets of 4-aligned structs, asserted below).
#[inline(always)]
unsafe fn zero_words(p: *mut u8, words: usize) {
    let p = p.cast::<u32>();
    for i in 0..words {
        unsafe { p.add(i).write_volatile(0) };
    }
}

const _: () = {
    use core::mem::{align_of, offset_of};
    use dhcp_common::fastpath::{RenewEvent, ReservationKey};
    assert!(align_of::<RenewEvent>() % 4 == 0 && offset_of!(RenewEvent, mac) % 4 == 0);
    assert!(offset_of!(RenewEvent, client_id) == offset_of!(RenewEvent, mac) + 8);
    assert!(align_of::<ReservationKey>() % 4 == 0 && offset_of!(ReservationKey, id) % 4 == 0);
};

/// Folds to 16 bits without complementing.
#[inline(always)]
fn fold_only(mut sum: u32) -> u32 {
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

/// A sum computed from an even offset, moved to offset `off`: at an odd
/// offset every byte lands in the other half of its word.
#[inline(always)]
fn at_parity(sum: u32, off: usize) -> u32 {
    let s = fold_only(sum);
    if off & 1 == 1 { ((s & 0xff) << 8) | (s >> 8) } else { s }
}

/// One's-complement fold of a 32-bit sum, complemented.
#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

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

mod bounds;
mod renewal;
mod reply;
mod reserved;
mod ring;
mod scan;

use aya_ebpf::{
    btf_maps::lpm_trie::Key,
    helpers::{bpf_ktime_get_boot_ns, bpf_loop, bpf_xdp_adjust_tail, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use dhcp_common::{
    counters::Outcome,
    fastpath::{EVENT_RENEWED, EVENT_RESERVED_ACK, LeaseEntry, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL, SubnetReply},
    ha::{mix, serves},
};

use crate::{
    maps::{SCRATCH, Scratch, XDHCP_EVENTS, XDHCP_RELAYS, XDHCP_SCRATCH, XDHCP_SETTINGS},
    parse::{BOOTP_FIXED_LEN, DhcpRequest, ptr_at},
};

use bounds::{at, sized, zero_words};
use renewal::renewal;
use reply::{Parts, write_reply};
use reserved::{reservation, reserved};
use ring::{RING_HEADROOM, ring_free, wakeup_flag};
use scan::{MAX_SCANNED_OPTIONS, SCAN_END, SCAN_RUNNING, scan_step};

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

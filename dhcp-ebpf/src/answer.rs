//! The renewal fast path: a REQUEST from a client in RENEWING or
//! REBINDING whose lease is in the map, unexpired, owned by it, in a subnet
//! we serve now, and asking for nothing the precomputed reply lacks, is
//! answered here with the ACK the daemon would send (XDP_TX). Anything
//! else is passed with the reason counted.
//!
//! Variable-offset work happens in a per-CPU scratch buffer: the request's
//! options are copied in with `bpf_xdp_load_bytes`, the reply's options are
//! built there and copied out with `bpf_xdp_store_bytes`; packet memory is
//! only touched at offsets fixed relative to the IP header.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_boot_ns, bpf_loop, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use dhcp_common::{
    counters::Outcome,
    fastpath::{LeaseKey, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL, RenewEvent},
};

use crate::{
    maps::{SCRATCH, XDHCP_EVENTS, XDHCP_LEASES, XDHCP_SCRATCH, XDHCP_SETTINGS, XDHCP_SUBNETS},
    parse::{BOOTP_FIXED_LEN, DhcpRequest, ptr_at},
};

const DHCPREQUEST: u8 = 3;
/// Options we look at before giving up (a REQUEST carries about ten).
const MAX_SCANNED_OPTIONS: usize = 48;
/// Longest parameter request list we check.
const MAX_PRL: usize = 64;
const MASK: usize = SCRATCH - 1;
/// Buffer of the client-id echo (option 61 header + up to 32 bytes), a
/// power of two so its size can be masked for the verifier.
const ECHO_BUF: usize = 64;

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
    match code {
        53 => s.msg_type = at(&s.req, i + 2) as u32,
        50 | 51 | 52 | 54 => s.needs_daemon = 1,
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

/// Handles a DHCP request frame; returns the XDP action.
#[inline(always)]
pub fn try_answer(ctx: &XdpContext, req: &DhcpRequest) -> Result<u32, Outcome> {
    let b = req.bootp_off;
    if req.ihl != 20 || b > 64 {
        return Err(Outcome::PassedNotRenewal);
    }
    let scratch = XDHCP_SCRATCH.get_ptr_mut(0).ok_or(Outcome::PassedNotRenewal)?;
    let scratch = unsafe { &mut *scratch };
    let opt_off = b + BOOTP_FIXED_LEN;
    let frame_len = ctx.data_end() - ctx.data();
    if frame_len <= opt_off {
        return Err(Outcome::PassedNotRenewal);
    }
    let mut n = frame_len - opt_off;
    if n > SCRATCH {
        n = SCRATCH;
    }
    if n == 0
        || unsafe { bpf_xdp_load_bytes(ctx.ctx, opt_off as u32, scratch.req.as_mut_ptr().cast(), sized(n, SCRATCH)) }
            != 0
    {
        return Err(Outcome::PassedNotRenewal);
    }
    scratch.n = n as u32;
    scratch.pos = 0;
    scratch.state = SCAN_RUNNING;
    scratch.msg_type = 0;
    scratch.needs_daemon = 0;
    scratch.cid_len = 0;
    scratch.cid_off = 0;
    scratch.prl_len = 0;
    scratch.prl_off = 0;
    unsafe { bpf_loop(MAX_SCANNED_OPTIONS as u32, scan_step as *mut _, core::ptr::null_mut(), 0) };
    // Not ended within the scanned options: not sure, let the daemon decide.
    if scratch.state != SCAN_END || scratch.msg_type != DHCPREQUEST as u32 || scratch.needs_daemon != 0 {
        return Err(Outcome::PassedNotRenewal);
    }
    let opts = Opts {
        cid_off: scratch.cid_off as usize,
        cid_len: scratch.cid_len as usize,
        prl_off: scratch.prl_off as usize,
        prl_len: scratch.prl_len as usize,
    };
    let fixed = unsafe { *ptr_at::<[u8; 28]>(ctx, b).ok_or(Outcome::Malformed)? };
    let (htype, hlen) = (fixed[1], fixed[2]);
    let ciaddr = [fixed[12], fixed[13], fixed[14], fixed[15]];
    let giaddr = [fixed[24], fixed[25], fixed[26], fixed[27]];
    if ciaddr == [0; 4] || giaddr != [0; 4] || htype != 1 || hlen != 6 {
        return Err(Outcome::PassedNotRenewal);
    }
    let chaddr = unsafe { *ptr_at::<[u8; 6]>(ctx, b + 28).ok_or(Outcome::Malformed)? };

    let lease = XDHCP_LEASES.get_ptr_mut(LeaseKey { addr: ciaddr }).ok_or(Outcome::PassedNoLease)?;
    let lease_ref = unsafe { &*lease };
    let subnet = unsafe { XDHCP_SUBNETS.get(lease_ref.subnet_id) }.ok_or(Outcome::PassedNotServing)?;
    if subnet.serving != 1 || subnet.ifindex as usize != ctx.ingress_ifindex() {
        return Err(Outcome::PassedNotServing);
    }

    let cid_len = opts.cid_len;
    if cid_len > MAX_CLIENT_ID {
        return Err(Outcome::PassedNotRenewal);
    }
    // Ownership, as the daemon's `owns`: by client-id when both have one
    // and match-client-id is on, else by hardware address.
    if subnet.match_client_id == 1 && cid_len > 0 && lease_ref.client_id_len > 0 {
        if lease_ref.client_id_len as usize != cid_len {
            return Err(Outcome::PassedNotOwner);
        }
        for i in 0..MAX_CLIENT_ID {
            if i >= cid_len {
                break;
            }
            if lease_ref.client_id[i] != at(&scratch.req, opts.cid_off + i) {
                return Err(Outcome::PassedNotOwner);
            }
        }
    } else if lease_ref.hlen != 6 || lease_ref.hwaddr[..6] != chaddr {
        return Err(Outcome::PassedNotOwner);
    }

    let settings = XDHCP_SETTINGS.get(0).ok_or(Outcome::PassedNotServing)?;
    let now = ((unsafe { bpf_ktime_get_boot_ns() } / 1_000_000_000) as i64 + settings.unix_minus_boot) as u64;
    if lease_ref.expire <= now {
        return Err(Outcome::PassedExpired);
    }

    // Asking for an option the daemon would add: not ours to answer.
    if opts.prl_len > MAX_PRL {
        return Err(Outcome::PassedNotRenewal);
    }
    for i in 0..MAX_PRL {
        if i >= opts.prl_len {
            break;
        }
        let code = at(&scratch.req, opts.prl_off + i);
        if subnet.prl_pass[(code >> 3) as usize] & (1 << (code & 7)) != 0 {
            return Err(Outcome::PassedNotRenewal);
        }
    }

    // The reply's options: head (codes < 61), client-id echo, tail.
    let head = subnet.head_len as usize;
    let tail = subnet.tail_len as usize;
    if head == 0 || head > MAX_HEAD || tail == 0 || tail > MAX_TAIL {
        return Err(Outcome::PassedNotServing);
    }
    let echo = if subnet.echo_client_id == 1 && cid_len > 0 { 2 + cid_len } else { 0 };
    let mut echo_bytes = [0u8; ECHO_BUF];
    echo_bytes[0] = 61;
    echo_bytes[1] = cid_len as u8;
    for i in 0..MAX_CLIENT_ID {
        if i >= cid_len {
            break;
        }
        echo_bytes[2 + i] = at(&scratch.req, opts.cid_off + i);
    }

    let src_mac = unsafe { *ptr_at::<[u8; 6]>(ctx, 6).ok_or(Outcome::Malformed)? };
    let new_len = opt_off + head + echo + tail;
    let delta = new_len as i32 - frame_len as i32;
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Err(Outcome::PassedNotRenewal);
    }
    // From here on the frame is ours: a failure leaves it half-built, so it
    // is dropped (the client retransmits) and counted as malformed.
    let xid_flags = [fixed[4], fixed[5], fixed[6], fixed[7], fixed[10], fixed[11]];
    let parts = Parts { head, echo, tail, echo_bytes: &echo_bytes };
    if write_reply(ctx, req, subnet, &src_mac, &ciaddr, &xid_flags, &chaddr, &parts, new_len).is_none() {
        crate::maps::count(Outcome::Malformed);
        return Ok(xdp_action::XDP_DROP);
    }

    let valid = subnet.lease_time;
    let expire = now + valid as u64;
    unsafe { (*lease).expire = expire };
    let _ = XDHCP_EVENTS.output(
        RenewEvent { expire, addr: ciaddr, subnet_id: lease_ref.subnet_id, valid_lifetime: valid, _pad: 0 },
        0,
    );
    Ok(xdp_action::XDP_TX)
}

#[inline(always)]
fn put<T: Copy>(ctx: &XdpContext, off: usize, v: T) -> Option<()> {
    let p = ptr_at::<T>(ctx, off)? as *mut T;
    unsafe { p.write_unaligned(v) };
    Some(())
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_reply(
    ctx: &XdpContext,
    req: &DhcpRequest,
    subnet: &dhcp_common::fastpath::SubnetReply,
    src_mac: &[u8; 6],
    ciaddr: &[u8; 4],
    xid_flags: &[u8; 6],
    src_chaddr: &[u8; 6],
    parts: &Parts,
    new_len: usize,
) -> Option<()> {
    let ip = req.ip_off;
    let udp = ip + 20;
    let b = req.bootp_off;
    if b != udp + 8 || ip > 18 {
        return None;
    }
    // Ethernet: back to the client, from us (a VLAN tag stays as it was).
    put(ctx, 0, *src_mac)?;
    put(ctx, 6, subnet.server_mac)?;
    // IPv4, as `frame::build` writes it.
    let ip_len = ((new_len - ip) as u16).to_be_bytes();
    put(ctx, ip, [0x45u8, 0x10, ip_len[0], ip_len[1], 0, 0, 0, 0, 64, 17, 0, 0])?;
    put(ctx, ip + 12, subnet.server_ip)?;
    put(ctx, ip + 16, *ciaddr)?;
    // UDP 67 → 68, checksum filled below.
    let udp_len = (new_len - udp) as u16;
    let ul = udp_len.to_be_bytes();
    put(ctx, udp, [0u8, 67, 0, 68, ul[0], ul[1], 0, 0])?;
    // BOOTP: reply, Ethernet, 6, no hops; xid kept; no secs, flags kept;
    // ciaddr kept; yiaddr = ciaddr; siaddr from config; giaddr 0.
    put(ctx, b, [2u8, 1, 6, 0])?;
    put(ctx, b + 8, [0u8, 0])?;
    put(ctx, b + 16, *ciaddr)?;
    put(ctx, b + 20, subnet.next_server)?;
    // chaddr past the 6 MAC bytes, sname and file: zeros, as dhcproto writes.
    put(ctx, b + 34, [0u8; 10])?;
    for i in 0..24 {
        put(ctx, b + 44 + i * 8, [0u8; 8])?;
    }
    // Options straight from the template (and the echo), no byte loops.
    let opt_off = (b + BOOTP_FIXED_LEN) as u32;
    let (head, echo, tail) = (parts.head, parts.echo, parts.tail);
    if head == 0 || head > MAX_HEAD || tail == 0 || tail > MAX_TAIL || echo > 2 + MAX_CLIENT_ID {
        return None;
    }
    let store = |off: u32, from: *const u8, len: u32| unsafe { bpf_xdp_store_bytes(ctx.ctx, off, from as *mut _, len) };
    if store(opt_off, subnet.head.as_ptr(), sized(head, MAX_HEAD)) != 0 {
        return None;
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
    let (sip, cip) = (subnet.server_ip, *ciaddr);
    let mut sum = w(0x45, 0x10) + w(ip_len[0], ip_len[1]) + w(64, 17);
    sum += w(sip[0], sip[1]) + w(sip[2], sip[3]) + w(cip[0], cip[1]) + w(cip[2], cip[3]);
    put(ctx, ip + 10, fold(sum).to_be_bytes())?;
    // UDP: pseudo-header, header, fixed BOOTP part, options.
    let mut sum = 17 + 2 * udp_len as u32;
    sum += w(sip[0], sip[1]) + w(sip[2], sip[3]) + 2 * (w(cip[0], cip[1]) + w(cip[2], cip[3]));
    sum += 67 + 68;
    sum += w(2, 1) + w(6, 0);
    sum += w(xid_flags[0], xid_flags[1]) + w(xid_flags[2], xid_flags[3]) + w(xid_flags[4], xid_flags[5]);
    sum += w(cip[0], cip[1]) + w(cip[2], cip[3]); // yiaddr
    let ns = subnet.next_server;
    sum += w(ns[0], ns[1]) + w(ns[2], ns[3]);
    sum += w(src_chaddr[0], src_chaddr[1]) + w(src_chaddr[2], src_chaddr[3]) + w(src_chaddr[4], src_chaddr[5]);
    sum += w(99, 130) + w(83, 99);
    // Options: the template's sums; a part starting at an odd offset
    // contributes its byte-swapped sum.
    sum = fold_only(sum) + subnet.head_sum;
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

/// Where the scan found options 61 and 55.
struct Opts {
    cid_off: usize,
    cid_len: usize,
    prl_off: usize,
    prl_len: usize,
}

/// The parts of the reply's options.
struct Parts<'a> {
    head: usize,
    echo: usize,
    tail: usize,
    echo_bytes: &'a [u8; ECHO_BUF],
}

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

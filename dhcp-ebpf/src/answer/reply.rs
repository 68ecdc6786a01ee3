//! Writing the reply over the request frame and its checksums: the one
//! writer both paths share, given the plan they decided.

use aya_ebpf::{helpers::bpf_xdp_store_bytes, programs::XdpContext};
use dhcp_common::{
    dhcp::msg_type::ACK as DHCPACK,
    fastpath::{MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL},
};

use super::{Plan, SERVER_PORT, bounds::sized};
use crate::{
    maps::{ECHO_BUF, ZEROS},
    parse::{BOOTP_FIXED_LEN, DhcpRequest, ptr_at},
};

#[inline(always)]
fn put<T: Copy>(ctx: &XdpContext, off: usize, v: T) -> Option<()> {
    let p = ptr_at::<T>(ctx, off)? as *mut T;
    unsafe { p.write_unaligned(v) };
    Some(())
}

#[inline(always)]
pub(super) fn write_reply(
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

/// The parts of the reply's options.
pub(super) struct Parts<'a> {
    pub(super) head: usize,
    pub(super) echo: usize,
    pub(super) tail: usize,
    pub(super) echo_bytes: &'a [u8; ECHO_BUF],
    pub(super) zeros: &'a [u8; ZEROS],
}

/// BOOTP bytes after chaddr's 6 MAC bytes up to the cookie: 10 + 64 + 128.
const CHADDR_PAD_SNAME_FILE: usize = 10 + 64 + 128;
const _: () = assert!(CHADDR_PAD_SNAME_FILE <= ZEROS);

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

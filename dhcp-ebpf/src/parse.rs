//! Header walking with one bounds-checked pointer helper. Each layer returns
//! `Ok(None)` for "not ours" and `Err(Malformed)` for "ours but broken".

use aya_ebpf::{
    helpers::{bpf_loop, bpf_xdp_load_bytes},
    programs::XdpContext,
};

use crate::maps::{SCRATCH, Scratch, XDHCP_SCRATCH};

/// A frame addressed to the DHCP server port that is cut short or
/// inconsistent.
pub struct Malformed;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const IPPROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
const DHCP_SERVER_PORT: u16 = 67;
/// Fixed BOOTP header up to and including the magic cookie.
pub const BOOTP_FIXED_LEN: usize = 240;

/// Offsets of a DHCP request inside the frame.
pub struct DhcpRequest {
    /// Offset of the IPv4 header (14, or 18 behind one 802.1Q tag).
    pub ip_off: usize,
    /// IPv4 header length in bytes.
    pub ihl: usize,
    /// Offset of the BOOTP header (op field).
    pub bootp_off: usize,
    /// Offset just past the UDP payload: bytes after it (Ethernet padding,
    /// or junk) never reach the daemon's socket, so they are not options.
    pub udp_end: usize,
}

/// Returns a pointer to `T` at `offset` if the whole `T` is inside the frame.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

#[inline(always)]
pub fn be16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p = ptr_at::<[u8; 2]>(ctx, offset)?;
    Some(u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
pub fn byte(ctx: &XdpContext, offset: usize) -> Option<u8> {
    let p = ptr_at::<u8>(ctx, offset)?;
    Some(unsafe { *p })
}

/// Walks Ethernet (optionally one 802.1Q tag), IPv4 and UDP to port 67 and
/// checks that a full fixed BOOTP header with the DHCP magic cookie follows.
#[inline(always)]
pub fn dhcp_request(ctx: &XdpContext) -> Result<Option<DhcpRequest>, Malformed> {
    let Some(mut ethertype) = be16(ctx, 12) else { return Ok(None) };
    let mut ip_off = ETH_HLEN;
    if ethertype == ETH_P_8021Q {
        let Some(inner) = be16(ctx, ETH_HLEN + 2) else { return Ok(None) };
        ethertype = inner;
        ip_off += VLAN_HLEN;
    }
    if ethertype != ETH_P_IP {
        return Ok(None);
    }
    let Some(vihl) = byte(ctx, ip_off) else { return Ok(None) };
    let Some(proto) = byte(ctx, ip_off + 9) else { return Ok(None) };
    if proto != IPPROTO_UDP {
        return Ok(None);
    }
    if vihl >> 4 != 4 {
        return Ok(None);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if !(20..=60).contains(&ihl) {
        return Ok(None);
    }
    let udp_off = ip_off + ihl;
    let Some(dport) = be16(ctx, udp_off + 2) else { return Ok(None) };
    if dport != DHCP_SERVER_PORT {
        return Ok(None);
    }
    let bootp_off = udp_off + UDP_HLEN;
    // From here on the frame claims to be DHCP: short means malformed.
    let cookie = ptr_at::<[u8; 4]>(ctx, bootp_off + BOOTP_FIXED_LEN - 4).ok_or(Malformed)?;
    if unsafe { *cookie } != [99, 130, 83, 99] {
        return Err(Malformed);
    }
    let udp_len = delivered(ctx, ip_off, ihl)?;
    Ok(Some(DhcpRequest { ip_off, ihl, bootp_off, udp_end: udp_off + udp_len }))
}

/// Longest UDP datagram whose checksum is verified here (a 1500-byte MTU
/// less the IPv4 header); a longer one is left to the daemon.
const MAX_UDP_LEN: usize = 1480;

/// Whether the stack would hand this datagram to the daemon's socket at
/// all: not a fragment, IPv4 and UDP lengths consistent with the frame, a
/// valid IPv4 header checksum (the UDP checksum: see below). The kernel answers only what the
/// daemon would have received (the differential fuzzer in
/// `dhcp-user/tests/xdp_differential.rs` found corrupted frames answered).
/// Bytes are copied into the per-CPU scratch buffer with
/// `bpf_xdp_load_bytes` (the stack has no room, and no bounds check of
/// LLVM's merging is left for the verifier to follow); `try_answer` only
/// uses that buffer afterwards. Returns the UDP length.
#[inline(always)]
fn delivered(ctx: &XdpContext, ip_off: usize, ihl: usize) -> Result<usize, Malformed> {
    let s = XDHCP_SCRATCH.get_ptr_mut(0).ok_or(Malformed)?;
    let buf = unsafe { &mut (*s).req };
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, ip_off as u32, buf.as_mut_ptr().cast(), load_len(ihl, 64)) } != 0 {
        return Err(Malformed);
    }
    if u16::from_be_bytes([buf[6], buf[7]]) & 0x3fff != 0 {
        return Err(Malformed); // MF set or an offset: a fragment
    }
    let total = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let frame = ctx.data_end() - ctx.data();
    if total < ihl + UDP_HLEN + BOOTP_FIXED_LEN || ip_off + total > frame {
        return Err(Malformed);
    }
    // The IPv4 header sums to 0xffff (RFC 1071).
    if fold(sum_scratch(s, 0, ihl)) != 0xffff {
        return Err(Malformed);
    }
    let udp_off = ip_off + ihl;
    let udp_len = be16_loaded(ctx, udp_off + 4)? as usize;
    if udp_len < UDP_HLEN + BOOTP_FIXED_LEN || udp_len > total - ihl || udp_len > MAX_UDP_LEN {
        return Err(Malformed);
    }
    // The UDP checksum is not verified here: a sender on this host or in a
    // VM (veth, virtio) leaves it partial for the device to finish
    // (CHECKSUM_PARTIAL), which XDP cannot tell from a corrupt one, and the
    // stack delivers such datagrams to the daemon's socket. Checking it
    // made the kernel pass every locally sent renewal (lab_attach,
    // lab_ha_xdp); the link's own CRC already guards frames off the wire.
    let _ = udp_off;
    Ok(udp_len)
}

/// `start` plus the one's-complement sum of the scratch buffer's first
/// `n` bytes as big-endian words, an odd last byte padded with zero
/// (RFC 768). Driven by `bpf_loop`, so the verifier checks one step.
#[inline(always)]
fn sum_scratch(s: *mut Scratch, start: u32, n: usize) -> u32 {
    unsafe {
        (*s).csum = start;
        (*s).csum_len = n as u32;
        bpf_loop(n.div_ceil(2) as u32, sum_step as *mut _, core::ptr::null_mut(), 0);
        (*s).csum
    }
}

/// Adds word `index` of the scratch buffer to the running sum.
extern "C" fn sum_step(index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(s) = XDHCP_SCRATCH.get_ptr_mut(0) else { return 1 };
    let s = unsafe { &mut *s };
    let i = (index as usize * 2) & (SCRATCH - 1);
    let hi = s.req[i];
    let lo = if i + 1 < s.csum_len as usize { s.req[(i + 1) & (SCRATCH - 1)] } else { 0 };
    s.csum = s.csum.wrapping_add(u16::from_be_bytes([hi, lo]) as u32);
    0
}

/// A big-endian u16 at `offset`, copied out of the frame.
#[inline(always)]
fn be16_loaded(ctx: &XdpContext, offset: usize) -> Result<u16, Malformed> {
    let mut b = [0u8; 2];
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, offset as u32, b.as_mut_ptr().cast(), 2) } != 0 {
        return Err(Malformed);
    }
    Ok(u16::from_be_bytes(b))
}

/// A `bpf_xdp_load_bytes` length: `n` clamped to 1..=`cap` (a power of
/// two) in a way the verifier sees (as `answer::sized`).
/// Inlined, LLVM drops the mask (it knows the range) and later reloads the
/// size from the map, unbounded.
#[inline(never)]
fn load_len(n: usize, cap: usize) -> u32 {
    if n > cap {
        return cap as u32;
    }
    ((n.wrapping_sub(1) & (cap - 1)) + 1) as u32
}

/// Folds a one's-complement sum to 16 bits.
#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

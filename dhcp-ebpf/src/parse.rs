//! Header walking with one bounds-checked pointer helper. Each layer returns
//! `Ok(None)` for "not ours" and `Err(Malformed)` for "ours but broken".

use aya_ebpf::programs::XdpContext;

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
    Ok(Some(DhcpRequest { ip_off, ihl, bootp_off }))
}

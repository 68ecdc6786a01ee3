//! The reservation path, the other way a request is answered here: the
//! reservation map lookup and the daemon's checks for a reserved client.

use dhcp_common::{
    counters::Outcome,
    dhcp::msg_type::{ACK as DHCPACK, DISCOVER as DHCPDISCOVER, OFFER as DHCPOFFER, REQUEST as DHCPREQUEST},
    fastpath::{CID_PASS_MISSING, MAX_CLIENT_ID, MAX_HEAD, RES_BY_CLIENT_ID, RES_BY_MAC, ReservationEntry},
};

use super::{
    Arrival, Plan,
    bounds::{at, zero_words},
    destination,
    scan::{asks_for_more, same_cid},
};
use crate::maps::{Scratch, XDHCP_RESERVATIONS};

/// The reservation the daemon's engine would apply: the client's
/// client-id or MAC entry for this interface and (relayed) subnet. When
/// both have one, the configured `host-reservation-identifiers` order
/// picks (Kea's default puts the MAC first): the daemon's call.
#[inline(always)]
pub(super) fn reservation<'a>(
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

/// The reservation path: the client's client-id or MAC has an entry for
/// this interface and subnet. Mirrors the engine's `decide` for a reserved
/// client whose address is free or its own; every other case is passed.
#[inline(always)]
pub(super) fn reserved<'a>(
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

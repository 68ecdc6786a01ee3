//! The lease path, one of the two ways a request is answered here: it
//! mirrors the daemon's checks for a client renewing a lease it owns.

use dhcp_common::{
    counters::Outcome,
    dhcp::msg_type::REQUEST as DHCPREQUEST,
    fastpath::{CID_PASS_ANY, CID_PASS_MISSING, LeaseKey, MAX_CLIENT_ID, SubnetKey, SubnetReply},
};

use super::{
    Arrival, Plan, destination,
    scan::{asks_for_more, same_cid},
};
use crate::maps::{Scratch, XDHCP_LEASES, XDHCP_SUBNETS};

/// The lease path: RENEWING / REBINDING (ciaddr) or INIT-REBOOT (option
/// 50) of an address in the lease map.
#[inline(always)]
pub(super) fn renewal<'a>(
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

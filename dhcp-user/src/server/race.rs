//! A request whose lease write lost the race for its address to another
//! server on a shared database ([`crate::leases::pgsql::shared`]): the
//! insert failed because that server's row got there first, so our memory
//! offered or granted an address it did not know was taken. Rather than
//! withhold the reply and leave the client to retransmit seconds later,
//! the request is decided again once the database's row is back in memory
//! (milliseconds). A client SELECTING the offered address is then granted
//! another free one, as Kea's allocation engine moves on to the next
//! address when the insert of the hinted one fails (ISC dhclient ignores a
//! NAK while it has no lease, so a NAK would leave it retransmitting for
//! seconds); any other request for the taken address is NAKed, as Kea
//! NAKs one for an address in use. Bounded: [`TRIES`] times per request,
//! each waiting at most [`READ_AGAIN_LIMIT`] for the row.

use std::{
    future::Future,
    net::{Ipv4Addr, SocketAddrV4},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use super::{Burst, Link, deliver};
use crate::{
    core::{Core, Counter, pipeline::Arrival},
    dhcp::inbound::tlvs,
    leases::{LeaseError, pgsql::shared::Conflicts},
    peer::HaRuntime,
};

/// How many times one request is decided again.
/// (Each try costs a database round trip; a stale memory may hold several
/// taken addresses in a row, as Kea's engine may meet several.)
pub(super) const TRIES: u8 = 4;
/// Longest wait for the lost address's row to be read back.
pub(super) const READ_AGAIN_LIMIT: Duration = Duration::from_secs(2);

/// A received request kept until its write is durable, to decide it again.
pub(super) struct Redo {
    bytes: Vec<u8>,
    from: SocketAddrV4,
    to: Option<Ipv4Addr>,
    tries: u8,
}

/// What deciding again needs, held by every burst of a serving task:
/// nothing (and no copy of any request) without a shared database.
#[derive(Clone, Default)]
pub(super) struct Races {
    conflicts: Option<Arc<Conflicts>>,
    ha: Option<Arc<HaRuntime>>,
}

impl Races {
    /// For requests decided by `core` (with HA runtime `ha`).
    pub fn new(core: &Core, ha: &Option<Arc<HaRuntime>>) -> Races {
        Races { conflicts: core.conflicts(), ha: ha.clone() }
    }

    /// The request to keep for a retry (only with a shared database).
    pub fn keep(&self, bytes: &[u8], from: SocketAddrV4, to: Option<Ipv4Addr>) -> Option<Redo> {
        self.conflicts.as_ref()?;
        Some(Redo { bytes: bytes.to_vec(), from, to, tries: TRIES })
    }

    /// The address `e` lost the race for, when the request (`redo`) may
    /// still be decided again.
    pub fn lost(&self, e: &LeaseError, redo: &Option<Redo>) -> Option<Ipv4Addr> {
        self.conflicts.as_ref()?;
        redo.as_ref().filter(|r| r.tries > 0)?;
        e.lost_race()
    }

    /// Decides `redo` again once `addr`'s row is back in memory, and
    /// delivers the new answer; withholds the reply (counted as a store
    /// failure, as before) if the row does not come back in time. Boxed:
    /// delivering may lose a race again and come back here.
    pub fn decide_again(
        self,
        addr: Ipv4Addr,
        redo: Redo,
        link: Arc<Link>,
        core: Core,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let read = match &self.conflicts {
                Some(c) => c.read_again(addr, READ_AGAIN_LIMIT).await,
                None => false,
            };
            if !read {
                tracing::error!(%addr, "lease write lost the race for its address and the database's row was not read \
                    back in time; reply withheld");
                core.count(Counter::StoreFailure, 1);
                return;
            }
            let Some(server_id) = link.iface.primary_ipv4() else { return };
            let at = Arrival { iface: &link.iface.name, iface_addrs: &link.iface.addrs, server_id, from: *redo.from.ip(), to: redo.to };
            let bytes = without_hint(&redo.bytes, addr).unwrap_or_else(|| redo.bytes.clone());
            let Ok(committed) = core.receive_again(&bytes, &at, &self.ha) else { return };
            let answer = committed.reply.as_ref().and_then(|(m, _)| m.opts().msg_type()).map(|t| format!("{t:?}"));
            tracing::info!(%addr, tries_left = redo.tries - 1, answer = answer.as_deref().unwrap_or("none"),
                "another server on the lease database took the address first: request decided again");
            let again = Redo { bytes, tries: redo.tries - 1, ..redo };
            let mut burst = Burst::new(self);
            deliver(&link, &core, committed, server_id, &mut burst, Some(again));
            burst.flush(&link, &core).await;
        })
    }
}

/// A SELECTING REQUEST (server identifier, no `ciaddr`) whose requested
/// address (option 50) is `lost`, with that option blanked (PAD bytes): the
/// engine then picks an address from the pools, as Kea's does when the
/// hinted one cannot be had. `None` for any other request, or bytes that
/// do not parse as options.
fn without_hint(bytes: &[u8], lost: Ipv4Addr) -> Option<Vec<u8>> {
    const OPTIONS: usize = crate::dhcp::inbound::MIN_LEN;
    if bytes.get(12..16)? != [0; 4] {
        return None;
    }
    let (mut hint, mut server_id) = (None, false);
    for tlv in tlvs(bytes.get(OPTIONS..)?) {
        let tlv = tlv.ok()?;
        match tlv.code {
            50 if tlv.value == lost.octets() => hint = Some(OPTIONS + tlv.at),
            54 => server_id = true,
            _ => {}
        }
    }
    let at = hint.filter(|_| server_id)?;
    let mut out = bytes.to_vec();
    out[at..at + 6].fill(0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::{Encodable as _, v4};

    fn request(ciaddr: Ipv4Addr, server_id: bool) -> Vec<u8> {
        let mut m = v4::Message::new(ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &[2, 0, 0, 0, 0, 5]);
        m.opts_mut().insert(v4::DhcpOption::MessageType(v4::MessageType::Request));
        m.opts_mut().insert(v4::DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 7)));
        if server_id {
            m.opts_mut().insert(v4::DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn only_a_selecting_request_for_the_lost_address_loses_its_hint() {
        let lost = Ipv4Addr::new(10, 0, 0, 7);
        let selecting = request(Ipv4Addr::UNSPECIFIED, true);
        let blanked = without_hint(&selecting, lost).expect("SELECTING the lost address");
        let req = crate::dhcp::inbound::classify(&blanked).unwrap();
        assert_eq!((req.requested_ip, req.server_id), (None, Some(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(blanked.len(), selecting.len());
        // Another address, INIT-REBOOT (no server id), RENEWING (ciaddr).
        assert_eq!(without_hint(&selecting, Ipv4Addr::new(10, 0, 0, 8)), None);
        assert_eq!(without_hint(&request(Ipv4Addr::UNSPECIFIED, false), lost), None);
        assert_eq!(without_hint(&request(lost, true), lost), None);
    }
}

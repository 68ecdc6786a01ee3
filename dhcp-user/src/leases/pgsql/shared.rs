//! Several active servers on one database (no HA, or HA with
//! `"send-lease-updates": false`, as Kea recommends for a shared
//! database), and the rule that keeps each server's kernel exact.
//!
//! # The problem
//!
//! Each server keeps every lease in memory (its allocator, its API and its
//! kernel map read that copy) and writes changes through to the database.
//! With several servers, a server's copy goes stale: another server may
//! have renewed, released, reclaimed or reassigned an address since. The
//! daemon's own replies wait for their write, so a write that checks the
//! row is enough for them. The kernel is the hard part: it answers a
//! renewal (or an INIT-REBOOT) from its map at once and the write follows
//! (drained every few milliseconds), so a stale entry could ACK a client an
//! address the database has since given to another client.
//!
//! # The rule
//!
//! 1. **A write never takes a live address from another client.** Every
//!    write goes through [`super::PgLeaseDb::write_shared`]: a new row, or
//!    one statement that replaces the row only if it is the same client
//!    (hardware address and client id) and the expiration does not go
//!    back, or the new lease is a decline (nobody gets the address during
//!    probation), or the row's lease ran out at least [`REUSE_FENCE`] ago
//!    by the database's clock. Otherwise the write fails with
//!    [`super::PgError::AddressTaken`]: no ACK, and the row is *adopted*
//!    (below). The address is the table's key, so two servers racing for a
//!    free address cannot both insert.
//! 2. **A release does not free the address before the fence.** A removal
//!    ([`super::PgLeaseDb::remove_shared`]) deletes the row only once its
//!    lease ran out [`REUSE_FENCE`] ago; before that it marks the row
//!    expired-reclaimed in place, keeping its expiration, so rule 1 still
//!    keeps every other client off the address until then.
//! 3. **What failed is re-read.** A write that fails for any reason (a lost
//!    race, a row changed since it was read, the database lost) leaves
//!    memory ahead of the database; its address goes to [`Conflicts`], and
//!    the daemon reads the row again and installs it in memory (and so in
//!    the kernel) as it is, without writing it back. After a database
//!    outage this happens before the kernel answers again.
//!
//! # Why the kernel stays exact
//!
//! The kernel answers client C for address A only from an entry for C, and
//! only before the entry's expiration E (the eBPF program checks both).
//! The entry came from this server's memory, which holds what this server
//! committed, loaded or adopted from the database — so the database held
//! C's row at A with expiration ≥ E — or from the kernel's own extension
//! of C's lease, which the drain writes as C's renewal within
//! milliseconds. For another client D to be given A, a write must replace
//! C's row, which rule 1 allows only once that row's expiration plus
//! [`REUSE_FENCE`] has passed; rule 2 keeps a released row (and its
//! expiration) in place until then. So when D gets A, every entry for C at
//! A in any kernel has run out, unless a kernel ACK took longer than the
//! fence to reach the database — which needs a server stalled for
//! [`REUSE_FENCE`] or server clocks that far from the database's; and while
//! the database is lost no kernel answers at all ([`super::monitor`]).
//! A failed kernel-ACK write is re-read (rule 3), shortening the entry
//! back to what the database holds.
//!
//! One window remains: a daemon write that fails (a lost race) has
//! already changed memory, and the kernel holds that unconfirmed entry
//! until the re-read installs the row — two database round trips,
//! milliseconds. No reply was sent for it, so only the same client asking
//! again within those milliseconds (clients retransmit after seconds,
//! RFC 2131 §4.1) could be answered from it.
//!
//! The price: a released address is reused only after its lease would
//! have run out plus [`REUSE_FENCE`] (a renewal by the same client takes
//! it back at once), and `lease4-update` cannot move a live address to
//! another client. Kea 2.2 on the same database does not follow rule 2:
//! run Kea and xdhcpd side by side only with the kernel path off
//! (`--no-xdp`), or one after the other.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::super::model::Lease;

/// How long after a lease ran out before another client may have its
/// address: far above the kernel's drain delay (milliseconds) plus the
/// clock difference between servers and the database an operator should
/// tolerate.
pub const REUSE_FENCE: Duration = Duration::from_secs(10);

/// Addresses whose rows must be read again, and the rows being installed
/// in memory (so the writer does not write them back). Shared by every
/// clone of a [`super::PgLeaseDb`].
#[derive(Debug, Default)]
pub struct Conflicts {
    pending: Mutex<BTreeSet<Ipv4Addr>>,
    /// Taken for reading, not yet installed in memory.
    reading: Mutex<BTreeSet<Ipv4Addr>>,
    echo: Mutex<HashMap<Ipv4Addr, Option<Lease>>>,
    wake: Notify,
    /// Woken whenever an address leaves `reading`.
    settled: Notify,
}

impl Conflicts {
    /// `addr`'s write failed: its row must be read again.
    pub fn failed(&self, addr: Ipv4Addr) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(addr);
        self.wake.notify_one();
    }

    /// Waits until some address is pending.
    pub async fn wait(&self) {
        if self.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            self.wake.notified().await;
        }
    }

    /// Takes the pending addresses for reading; [`Conflicts::read`] says
    /// when each is installed (or pending again).
    pub fn take(&self) -> BTreeSet<Ipv4Addr> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.reading.lock().unwrap_or_else(|e| e.into_inner()).extend(taken.iter().copied());
        taken
    }

    /// `addr`'s row has been read and installed in memory (or put back to
    /// pending): whoever waits in [`Conflicts::read_again`] may go on.
    pub fn read(&self, addr: Ipv4Addr) {
        self.reading.lock().unwrap_or_else(|e| e.into_inner()).remove(&addr);
        self.settled.notify_waiters();
    }

    /// Waits until `addr` is neither pending nor being read: memory then
    /// holds the database's row for it (a request that lost the race for
    /// it can be decided again). False if that took longer than `limit`
    /// (the database is slow or lost).
    pub async fn read_again(&self, addr: Ipv4Addr, limit: Duration) -> bool {
        let settled = async {
            loop {
                let notified = self.settled.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let busy = self.pending.lock().unwrap_or_else(|e| e.into_inner()).contains(&addr)
                    || self.reading.lock().unwrap_or_else(|e| e.into_inner()).contains(&addr);
                if !busy {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, settled).await.is_ok()
    }

    /// Whether any address is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// `row` (the database's, `None` for no row) is about to be installed
    /// in memory at `addr`: the writer must not write it back.
    pub fn adopting(&self, addr: Ipv4Addr, row: Option<Lease>) {
        self.echo.lock().unwrap_or_else(|e| e.into_inner()).insert(addr, row);
    }

    /// Forgets an adoption whose echo never came (memory refused it).
    pub fn adopted(&self, addr: Ipv4Addr) {
        self.echo.lock().unwrap_or_else(|e| e.into_inner()).remove(&addr);
    }

    /// Whether a change of `addr` to `row` is an adoption's echo (then it
    /// is forgotten: it is already the database's).
    pub fn is_echo(&self, addr: Ipv4Addr, row: Option<&Lease>) -> bool {
        let mut echo = self.echo.lock().unwrap_or_else(|e| e.into_inner());
        if echo.get(&addr).is_some_and(|e| e.as_ref() == row) {
            echo.remove(&addr);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::HwAddr;

    #[test]
    fn an_echo_is_recognised_once_and_only_for_its_row() {
        let c = Conflicts::default();
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let row = Lease::new(a, Some(HwAddr::ethernet([2, 0, 0, 0, 0, 1])), None, 1, 1_700_000_000, 60);
        let mut other = row.clone();
        other.expire += 1;
        c.adopting(a, Some(row.clone()));
        assert!(!c.is_echo(a, Some(&other)));
        assert!(!c.is_echo(a, None));
        assert!(c.is_echo(a, Some(&row)));
        assert!(!c.is_echo(a, Some(&row)), "only once");
        c.adopting(a, None);
        assert!(c.is_echo(a, None));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lost_race_waits_until_its_row_is_read_again() {
        let c = std::sync::Arc::new(Conflicts::default());
        let a = Ipv4Addr::new(10, 0, 0, 3);
        assert!(c.read_again(a, Duration::from_millis(1)).await, "nothing to wait for");
        c.failed(a);
        assert!(!c.read_again(a, Duration::from_millis(20)).await, "still pending");
        let waiter = tokio::spawn({
            let c = std::sync::Arc::clone(&c);
            async move { c.read_again(a, Duration::from_secs(5)).await }
        });
        assert_eq!(c.take(), BTreeSet::from([a]));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "being read");
        c.read(a);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn failed_addresses_are_taken_once() {
        let c = Conflicts::default();
        c.failed(Ipv4Addr::new(10, 0, 0, 2));
        c.failed(Ipv4Addr::new(10, 0, 0, 1));
        c.failed(Ipv4Addr::new(10, 0, 0, 2));
        assert!(!c.is_empty());
        assert_eq!(c.take().into_iter().collect::<Vec<_>>(), [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]);
        assert!(c.is_empty());
    }
}

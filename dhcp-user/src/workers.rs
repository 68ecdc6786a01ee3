//! Kea's multi-threading as the running server has it, changed by a
//! reconfiguration as Kea changes it: `config-set`, `config-reload` and
//! SIGHUP may turn the packet queue on or off, or resize its pool or its
//! queue, without a restart (Kea's `CfgMultiThreading::apply` on commit).
//!
//! The receiving task of each interface ([`crate::server::serve`]) watches
//! [`Workers::receivers`]: with a queue it pushes datagrams there, without
//! one it decides them itself. A change publishes the new queue first, then
//! tells the old workers to stop; they finish what is already queued and
//! leave once no receiver holds the old queue any more, so no datagram
//! received before the switch is lost to it.
//!
//! The pool's workers are tasks on the daemon's runtime, whose OS threads
//! are made at start (one per `thread-pool-size` when the start-up config
//! enables multi-threading, else one per CPU): a larger pool set later
//! runs on those threads.

use std::sync::{Arc, Mutex, atomic::AtomicUsize};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    config::multi_threading::MultiThreading,
    core::Core,
    packet_queue::{PacketQueue, QueueStats},
    peer::HaRuntime,
    server::{self, Queue},
};

/// What `status-get` reports of the pool in force.
#[derive(Clone)]
pub struct PoolStatus {
    /// Workers taking packets from the queue.
    pub threads: usize,
    /// `packet-queue-size` (0: unbounded).
    pub queue_size: usize,
    /// The queue's statistics.
    pub queue: Arc<dyn QueueStats>,
}

/// One pool: its queue and the token its workers stop on.
struct Active {
    threads: usize,
    queue_size: usize,
    queue: Queue,
    stop: CancellationToken,
}

/// The packet pool of a daemon: one per daemon, shared by the receivers,
/// the reconfiguration service and `status-get`.
pub struct Workers {
    core: Core,
    ha: Option<Arc<HaRuntime>>,
    shutdown: CancellationToken,
    mode: watch::Sender<Option<Queue>>,
    active: Mutex<Option<Active>>,
}

impl Workers {
    /// The pool `mt` asks for, its workers started (none when
    /// multi-threading is off).
    pub fn start(core: Core, ha: Option<Arc<HaRuntime>>, shutdown: CancellationToken, mt: MultiThreading) -> Arc<Self> {
        let (mode, _) = watch::channel(None);
        let w = Arc::new(Workers { core, ha, shutdown, mode, active: Mutex::new(None) });
        w.apply(mt);
        w
    }

    /// What each interface's receiver watches: the queue to push to, or
    /// `None` to decide datagrams where they are received.
    pub fn receivers(&self) -> watch::Receiver<Option<Queue>> {
        self.mode.subscribe()
    }

    /// The pool in force, if multi-threading is on.
    pub fn status(&self) -> Option<PoolStatus> {
        let a = self.active.lock().unwrap_or_else(|p| p.into_inner());
        a.as_ref().map(|a| PoolStatus {
            threads: a.threads,
            queue_size: a.queue_size,
            queue: Arc::clone(&a.queue) as Arc<dyn QueueStats>,
        })
    }

    /// Puts `mt` in force; returns what changed (for the event list), or
    /// `None` when the pool already is what `mt` asks for.
    pub fn apply(&self, mt: MultiThreading) -> Option<String> {
        let want = mt.pool();
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let have = active.as_ref().map(|a| (a.threads, a.queue_size));
        if have == want {
            return None;
        }
        let new = want.map(|(threads, queue_size)| {
            let queue: Queue = Arc::new(PacketQueue::new(queue_size));
            let stop = self.shutdown.child_token();
            let alive = Arc::new(AtomicUsize::new(threads));
            for _ in 0..threads {
                let (queue, core, ha, stop) = (Arc::clone(&queue), self.core.clone(), self.ha.clone(), stop.clone());
                tokio::spawn(server::work(queue, core, ha, Arc::clone(&alive), stop, self.shutdown.clone()));
            }
            Active { threads, queue_size, queue, stop }
        });
        // Receivers switch to the new queue (or to deciding themselves)
        // before the old workers are told to finish the old one.
        self.mode.send_replace(new.as_ref().map(|a| Arc::clone(&a.queue)));
        let old = std::mem::replace(&mut *active, new);
        if let Some(old) = old {
            old.stop.cancel();
        }
        let text = match want {
            Some((threads, size)) => {
                tracing::info!(threads, queue_size = size, "multi-threading: packets go through a queue to a pool of workers");
                format!("multi-threading: {threads} workers, packet queue of {size}")
            }
            None => {
                tracing::info!("multi-threading off: each interface's receiver decides its packets");
                "multi-threading off".to_owned()
            }
        };
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mt(enabled: bool, threads: u32, queue: u32) -> MultiThreading {
        MultiThreading { enabled, thread_pool_size: threads, packet_queue_size: queue }
    }

    fn core() -> Core {
        let cfg = crate::config::parse(r#"{ "Dhcp4": { "subnet4": [ { "id": 1, "subnet": "10.0.0.0/24" } ] } }"#, "t").unwrap();
        let (store, _) = crate::leases::LeaseStore::open(crate::glue::store_config(&cfg)).unwrap();
        Core::new(crate::glue::compile(&cfg), store, None)
    }

    /// Waits (bounded) until nothing holds the queue behind `weak`: its
    /// workers have left.
    async fn gone(weak: &std::sync::Weak<PacketQueue<server::Queued>>) -> bool {
        for _ in 0..200 {
            if weak.upgrade().is_none() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// A reconfiguration turns the pool on, resizes it and turns it off;
    /// receivers see each change and the old workers finish what was
    /// queued before they leave.
    #[tokio::test]
    async fn the_pool_follows_the_configuration() {
        let shutdown = CancellationToken::new();
        let w = Workers::start(core(), None, shutdown.clone(), mt(false, 0, 64));
        let mut rx = w.receivers();
        assert!(rx.borrow_and_update().is_none() && w.status().is_none());
        assert_eq!(w.apply(mt(false, 4, 8)), None, "off stays off whatever the sizes");

        assert!(w.apply(mt(true, 2, 16)).is_some());
        assert!(rx.has_changed().unwrap());
        let first = rx.borrow_and_update().clone().expect("a queue");
        let s = w.status().unwrap();
        assert_eq!((s.threads, s.queue_size), (2, 16));
        drop(s);
        assert_eq!(w.apply(mt(true, 2, 16)), None, "nothing to change");

        assert!(w.apply(mt(true, 3, 4)).is_some());
        let second = rx.borrow_and_update().clone().expect("a queue");
        assert!(!Arc::ptr_eq(&first, &second));
        let s = w.status().unwrap();
        assert_eq!((s.threads, s.queue_size), (3, 4));
        drop(s);
        // The old workers stay while a receiver still holds the old queue,
        // and leave once it lets go.
        let weak = Arc::downgrade(&first);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(weak.upgrade().is_some(), "a receiver still pushes to it");
        drop(first);
        assert!(gone(&weak).await, "the old pool's workers left");

        assert!(w.apply(mt(false, 0, 64)).is_some());
        assert!(rx.borrow_and_update().is_none() && w.status().is_none());
        let weak = Arc::downgrade(&second);
        drop(second);
        assert!(gone(&weak).await, "turned off: the workers left");
        shutdown.cancel();
    }
}

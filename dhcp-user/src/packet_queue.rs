//! The packet queue of Kea's multi-threading (`Dhcp4.multi-threading`):
//! receivers push datagrams, a pool of workers pops them. Like Kea's
//! `ThreadPool` queue it holds at most `packet-queue-size` items (0: no
//! limit) and drops the *oldest* when full — under overload the freshest
//! requests are the ones clients still wait for — and it keeps Kea's
//! `packet-queue-statistics`: the queue length seen at each pop, averaged
//! with decay constants e^-1/10, e^-1/100 and e^-1/1000 (about the last
//! 10, 100 and 1000 packets), which `status-get` reports.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// What `status-get` reads from a queue, whatever it carries.
pub trait QueueStats: Send + Sync {
    /// Kea's three averages of the queue length, over ~10, ~100 and ~1000
    /// pops.
    fn averages(&self) -> [f64; 3];
    /// Items dropped because the queue was full.
    fn dropped(&self) -> u64;
}

/// A bounded queue with Kea's drop-oldest rule and statistics.
pub struct PacketQueue<T> {
    inner: Mutex<Inner<T>>,
    ready: Notify,
    capacity: usize,
}

struct Inner<T> {
    items: VecDeque<T>,
    averages: [f64; 3],
    dropped: u64,
}

/// Kea's decay constants (`ThreadPool::CEXP10`, `CEXP100`, `CEXP1000`).
fn decay() -> [f64; 3] {
    [(-0.1f64).exp(), (-0.01f64).exp(), (-0.001f64).exp()]
}

impl<T> PacketQueue<T> {
    /// A queue of at most `capacity` items (0: unbounded).
    pub fn new(capacity: usize) -> Self {
        PacketQueue {
            inner: Mutex::new(Inner { items: VecDeque::new(), averages: [0.0; 3], dropped: 0 }),
            ready: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `item` at the back; returns how many old items it pushed out.
    pub fn push(&self, item: T) -> usize {
        let mut dropped = 0;
        {
            let mut q = self.lock();
            while self.capacity != 0 && q.items.len() >= self.capacity {
                q.items.pop_front();
                dropped += 1;
            }
            q.dropped += dropped as u64;
            q.items.push_back(item);
        }
        self.ready.notify_one();
        dropped
    }

    /// The front item if there is one (the statistics see this pop).
    pub fn try_pop(&self) -> Option<T> {
        let mut q = self.lock();
        let len = q.items.len();
        if len == 0 {
            return None;
        }
        for (avg, c) in q.averages.iter_mut().zip(decay()) {
            *avg = *avg * c + (1.0 - c) * len as f64;
        }
        q.items.pop_front()
    }

    /// The front item, waiting for one.
    pub async fn pop(&self) -> T {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.await;
        }
    }
}

impl<T: Send> QueueStats for PacketQueue<T> {
    fn averages(&self) -> [f64; 3] {
        self.lock().averages
    }
    fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let q = PacketQueue::new(2);
        assert_eq!(q.push(1), 0);
        assert_eq!(q.push(2), 0);
        assert_eq!(q.push(3), 1);
        assert_eq!((q.try_pop(), q.try_pop(), q.try_pop()), (Some(2), Some(3), None));
        assert_eq!(q.dropped(), 1);
        let unbounded = PacketQueue::new(0);
        for i in 0..1000 {
            unbounded.push(i);
        }
        assert_eq!(unbounded.dropped(), 0);
    }

    #[test]
    fn statistics_average_the_length_seen_at_each_pop_as_kea_does() {
        let q = PacketQueue::new(0);
        assert_eq!(q.averages(), [0.0; 3], "nothing popped yet");
        q.push(());
        q.try_pop();
        let [a10, a100, a1000] = q.averages();
        assert!((a10 - (1.0 - (-0.1f64).exp())).abs() < 1e-12);
        assert!(a10 > a100 && a100 > a1000 && a1000 > 0.0);
        // A long run at length 3 converges on 3 for the short average.
        for _ in 0..200 {
            q.push(());
            q.push(());
            q.push(());
            q.try_pop();
            q.try_pop();
            q.try_pop();
        }
        assert!((q.averages()[0] - 2.0).abs() < 0.2, "{:?}", q.averages());
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let q = std::sync::Arc::new(PacketQueue::new(4));
        let waiter = tokio::spawn({
            let q = std::sync::Arc::clone(&q);
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.push(7u8);
        assert_eq!(tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap(), 7);
    }
}

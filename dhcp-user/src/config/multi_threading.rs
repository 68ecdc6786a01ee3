//! Kea's `Dhcp4.multi-threading`: with `enable-multi-threading`, received
//! packets wait in a queue of `packet-queue-size` (the oldest dropped when
//! it is full) for a pool of `thread-pool-size` workers (0: one per CPU),
//! as in Kea's `MultiThreadingMgr`. Kea 2.2's defaults: off, 0, 64.

use serde_json::Value;

use super::error::Invalid;

/// The validated `multi-threading` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiThreading {
    /// `enable-multi-threading`.
    pub enabled: bool,
    /// `thread-pool-size`; 0 picks one worker per CPU.
    pub thread_pool_size: u32,
    /// `packet-queue-size`; 0 is unbounded.
    pub packet_queue_size: u32,
}

impl Default for MultiThreading {
    fn default() -> Self {
        MultiThreading { enabled: false, thread_pool_size: 0, packet_queue_size: 64 }
    }
}

impl MultiThreading {
    /// Workers and queue size in force, `None` when packets are handled
    /// where they are received (multi-threading off). An automatic pool
    /// size is the CPU count, as Kea's `detectThreadCount`.
    pub fn pool(&self) -> Option<(usize, usize)> {
        if !self.enabled {
            return None;
        }
        let threads = match self.thread_pool_size {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        Some((threads, self.packet_queue_size as usize))
    }
}

/// Reads `multi-threading` at `path` as Kea's parser does: the three keys,
/// `user-context` and `comment`; counts not negative and within 32 bits.
pub(super) fn parse(v: Option<&Value>, path: &str) -> Result<MultiThreading, Invalid> {
    let mut mt = MultiThreading::default();
    let Some(v) = v else { return Ok(mt) };
    let map = v.as_object().ok_or_else(|| Invalid::new(path, "must be a map"))?;
    for (k, val) in map {
        let at = format!("{path}.{k}");
        match k.as_str() {
            "enable-multi-threading" => {
                mt.enabled = val.as_bool().ok_or_else(|| Invalid::new(&at, "must be a boolean"))?;
            }
            "thread-pool-size" => mt.thread_pool_size = count(val, &at, "thread pool size")?,
            "packet-queue-size" => mt.packet_queue_size = count(val, &at, "packet queue size")?,
            "user-context" | "comment" => {}
            _ => return Err(Invalid::new(at, "unknown or unsupported key")),
        }
    }
    Ok(mt)
}

fn count(v: &Value, at: &str, what: &str) -> Result<u32, Invalid> {
    let n = v.as_i64().ok_or_else(|| Invalid::new(at, "must be an integer"))?;
    if n < 0 {
        return Err(Invalid::new(at, format!("{what} code must not be negative")));
    }
    u32::try_from(n).map_err(|_| Invalid::new(at, format!("{what} code must not exceed {}", u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keas_defaults_and_values() {
        assert_eq!(parse(None, "Dhcp4.multi-threading").unwrap(), MultiThreading::default());
        let mt = parse(
            Some(&json!({"enable-multi-threading": true, "thread-pool-size": 3, "packet-queue-size": 21})),
            "Dhcp4.multi-threading",
        )
        .unwrap();
        assert_eq!(mt.pool(), Some((3, 21)));
        assert_eq!(MultiThreading::default().pool(), None);
        let auto = MultiThreading { enabled: true, ..MultiThreading::default() };
        assert!(auto.pool().unwrap().0 >= 1);
    }

    #[test]
    fn bad_values_are_refused_by_path() {
        let e = parse(Some(&json!({"thread-pool-size": -1})), "Dhcp4.multi-threading").unwrap_err();
        assert_eq!(e.path, "Dhcp4.multi-threading.thread-pool-size");
        let e = parse(Some(&json!({"threads": 2})), "Dhcp4.multi-threading").unwrap_err();
        assert_eq!(e.path, "Dhcp4.multi-threading.threads");
        assert!(parse(Some(&json!({"enable-multi-threading": "yes"})), "Dhcp4.multi-threading").is_err());
    }
}

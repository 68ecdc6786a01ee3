//! The recent notable events (config changes, `dhcp-disable`, HA
//! transitions, syncs) the status page lists, also written to the log.
//!
//! Its own type, shared by the HA runtime and the control API, so that
//! neither has to hold the other to record what happened.

use std::{collections::VecDeque, sync::Mutex};

use crate::clock::unix_now;

/// How many events are kept.
pub const MAX_EVENTS: usize = 50;

/// The last [`MAX_EVENTS`] events, oldest first.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<VecDeque<(u64, String)>>,
}

impl EventLog {
    /// Records an event (and logs it).
    pub fn record(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("event: {text}");
        let mut ev = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if ev.len() == MAX_EVENTS {
            ev.pop_front();
        }
        ev.push_back((unix_now(), text));
    }

    /// The events, newest first, with their Unix time.
    pub fn newest_first(&self) -> Vec<(u64, String)> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        let log = EventLog::default();
        for i in 0..MAX_EVENTS + 3 {
            log.record(format!("e{i}"));
        }
        let all = log.newest_first();
        assert_eq!(all.len(), MAX_EVENTS);
        assert_eq!(all[0].1, format!("e{}", MAX_EVENTS + 2));
        assert_eq!(all.last().unwrap().1, "e3");
    }
}

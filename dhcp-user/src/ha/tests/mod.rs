//! Transition-by-transition tests of [`HaMachine`] against Kea 2.2's rules.
//! Shared helpers live here; the tests are grouped by what they exercise.

mod failover;
mod maintenance;
mod queries;
mod startup;
mod transitions;
mod updates;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::config::ha::{HaRelationship, WireParameters, build};

/// Timers used everywhere: heartbeat 1 s, max-response-delay 3 s,
/// max-ack-delay 2 s, max-unacked-clients 2 (overridable through `extra`).
fn rel_full(mode: &str, me: &str, extra: &str, peer_extra: &str) -> HaRelationship {
    let (second, second_role) = match mode {
        "load-balancing" => ("s", "secondary"),
        "hot-standby" => ("s", "standby"),
        _ => ("", ""),
    };
    let mut peers = vec![format!(
        r#"{{"name": "p", "url": "http://10.0.0.1:8000/", "role": "primary"}}"#
    )];
    if !second.is_empty() {
        peers.push(format!(
            r#"{{"name": "s", "url": "http://10.0.0.2:8000/", "role": "{second_role}"}}"#
        ));
    }
    peers.push(r#"{"name": "b", "url": "http://10.0.0.3:8000/", "role": "backup"}"#.to_owned());
    for p in &mut peers {
        if p.contains(&format!(r#""name": "{me}""#)) && !peer_extra.is_empty() {
            *p = p.replacen('}', &format!(", {peer_extra}}}"), 1);
        }
    }
    let mut timers = String::new();
    for (key, value) in [
        ("heartbeat-delay", 1000),
        ("max-response-delay", 3000),
        ("max-ack-delay", 2000),
        ("max-unacked-clients", 2),
    ] {
        if !extra.contains(&format!("\"{key}\"")) {
            timers.push_str(&format!(r#", "{key}": {value}"#));
        }
    }
    let json = format!(
        r#"{{"high-availability": [{{"this-server-name": "{me}", "mode": "{mode}"
            {timers} {extra}, "peers": [{}]}}]}}"#,
        peers.join(",")
    );
    let w: WireParameters = serde_json::from_str(&json).unwrap();
    build(w, "test", &mut |_, _| {}).unwrap().relationships()[0].clone()
}

fn rel(mode: &str, me: &str, extra: &str) -> HaRelationship {
    rel_full(mode, me, extra, "")
}

const HS: &str = "hot-standby";
const LB: &str = "load-balancing";
const PB: &str = "passive-backup";

fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_418_357)
}

fn status(p: PartnerState, unsent: u64, skew: i64) -> Event {
    let date_time = if skew >= 0 {
        wall() + Duration::from_secs(skew as u64)
    } else {
        wall() - Duration::from_secs(skew.unsigned_abs())
    };
    Event::HeartbeatOk {
        status: PartnerStatus {
            state: p,
            date_time,
            scopes: None,
            unsent_update_count: Some(unsent),
        },
        received_at: wall(),
    }
}

fn hb(s: State) -> Event {
    status(PartnerState::In(s), 0, 0)
}

struct T {
    m: HaMachine,
    t0: Instant,
}

impl T {
    fn new(r: &HaRelationship) -> T {
        let t0 = Instant::now();
        let mut m = HaMachine::new(r, t0);
        m.start(t0);
        T { m, t0 }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    fn ev(&mut self, ms: u64, e: Event) -> Vec<Action> {
        let now = self.at(ms);
        self.m.handle(now, e)
    }
    fn state(&self) -> State {
        self.m.state()
    }
    fn scopes(&self) -> Vec<&str> {
        self.m.serving_scopes().iter().map(String::as_str).collect()
    }
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What the partner is seen as in a table row.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// A heartbeat reporting this state.
    Is(State),
    /// A failed heartbeat 1 s in (communication not interrupted yet).
    LostEarly,
    /// A failed heartbeat 4 s in (interrupted: > 3 s).
    LostLate,
}

fn check_rows(rows: &[(&str, &str, State, Seen, State)]) {
    for &(mode, me, from, seen, want) in rows {
        let mut t = T::new(&rel(mode, me, ""));
        t.m.put(from);
        match seen {
            Seen::Is(s) => t.ev(500, hb(s)),
            Seen::LostEarly => t.ev(1_000, Event::HeartbeatFailed),
            Seen::LostLate => t.ev(4_000, Event::HeartbeatFailed),
        };
        assert_eq!(t.state(), want, "{mode} {me}: {from} seeing {seen:?}");
    }
}

use PartnerState as P;
use Seen::*;
use State::*;

//! Two machines exchanging heartbeats through a clock skew and back:
//! [`crate::ha::recovery`]'s rule as the pair lives it; and what a
//! conflict refusal ([`crate::ha::conflict`]) does to the machine.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::config::ha::{HaRelationship, WireParameters, build};

/// A pair with 1 s heartbeats and 3 s max-response-delay (settle 3 s).
fn rel(mode: &str, me: &str) -> HaRelationship {
    let second = if mode == "load-balancing" { "secondary" } else { "standby" };
    let json = format!(
        r#"{{"high-availability": [{{"this-server-name": "{me}", "mode": "{mode}", "heartbeat-delay": 1000,
            "max-response-delay": 3000, "max-ack-delay": 1000, "max-unacked-clients": 0, "peers": [
            {{"name": "p", "url": "http://10.0.0.1:8000/", "role": "primary"}},
            {{"name": "s", "url": "http://10.0.0.2:8000/", "role": "{second}"}}]}}]}}"#
    );
    let w: WireParameters = serde_json::from_str(&json).unwrap();
    build(w, "test", &mut |_, _| {}).unwrap().relationships()[0].clone()
}

/// One server: its machine, and whether it answers heartbeats (a Kea
/// server never leaves terminated, which `frozen` stands for).
struct Server {
    m: HaMachine,
    frozen: bool,
    states: Vec<State>,
}

impl Server {
    fn new(r: &HaRelationship, t0: Instant) -> Server {
        let mut m = HaMachine::new(r, t0);
        m.start(t0);
        Server { m, frozen: false, states: vec![State::Waiting] }
    }

    /// Feeds one event and carries out syncs at once (successfully).
    fn feed(&mut self, now: Instant, e: Event) {
        let mut queue: std::collections::VecDeque<Action> = self.m.handle(now, e).into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::SyncLeases(_) => queue.extend(self.m.handle(now, Event::SyncSucceeded)),
                Action::StateChanged { to, .. } => self.states.push(to),
                _ => {}
            }
        }
    }
}

fn wall(offset: i64) -> SystemTime {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_418_357);
    if offset >= 0 { base + Duration::from_secs(offset as u64) } else { base - Duration::from_secs(offset.unsigned_abs()) }
}

/// Runs both servers for `secs` seconds of one heartbeat each per second;
/// `skew(t)` is how far the second server's clock is ahead at second `t`.
fn run(p: &mut Server, s: &mut Server, t0: Instant, from: u64, secs: u64, skew: impl Fn(u64) -> i64) {
    for t in from..from + secs {
        let now = t0 + Duration::from_secs(t);
        let k = skew(t);
        let (ps, ss) = (p.m.heartbeat_reply().state, s.m.heartbeat_reply().state);
        if p.m.heartbeat_enabled() && !p.frozen {
            let status = PartnerStatus { state: PartnerState::In(ss), date_time: wall(k), scopes: None, unsent_update_count: None };
            p.feed(now, Event::HeartbeatOk { status, received_at: wall(0) });
        }
        if s.m.heartbeat_enabled() && !s.frozen {
            let status = PartnerStatus { state: PartnerState::In(ps), date_time: wall(0), scopes: None, unsent_update_count: None };
            s.feed(now, Event::HeartbeatOk { status, received_at: wall(k) });
        }
    }
}

#[test]
fn skewed_pair_terminates_as_kea_and_comes_back_by_itself() {
    for mode in ["hot-standby", "load-balancing"] {
        let normal = if mode == "hot-standby" { State::HotStandby } else { State::LoadBalancing };
        let t0 = Instant::now();
        let (mut p, mut s) = (Server::new(&rel(mode, "p"), t0), Server::new(&rel(mode, "s"), t0));
        run(&mut p, &mut s, t0, 1, 10, |_| 0);
        assert_eq!((p.m.state(), s.m.state()), (normal, normal), "{mode}: {:?} {:?}", p.states, s.states);
        // The second server's clock jumps 90 s ahead: both terminate.
        run(&mut p, &mut s, t0, 11, 5, |_| 90);
        assert_eq!((p.m.state(), s.m.state()), (State::Terminated, State::Terminated), "{mode}");
        // While skewed they stay there (and keep measuring).
        run(&mut p, &mut s, t0, 16, 30, |_| 90);
        assert_eq!((p.m.state(), s.m.state()), (State::Terminated, State::Terminated), "{mode}");
        assert!(p.m.heartbeat_enabled() && s.m.heartbeat_enabled());
        // The clock is fixed (NTP steps it back to 2 s): the pair goes
        // through waiting and syncing back to normal, no command given.
        run(&mut p, &mut s, t0, 46, 15, |_| 2);
        assert_eq!((p.m.state(), s.m.state()), (normal, normal), "{mode}: {:?} {:?}", p.states, s.states);
        for x in [&p, &s] {
            let back = x.states.iter().rposition(|st| *st == State::Terminated).unwrap();
            assert_eq!(x.states[back..], [State::Terminated, State::Waiting, State::Syncing, State::Ready, normal], "{mode}");
        }
    }
}

#[test]
fn a_skew_between_the_limits_does_not_end_terminated() {
    let t0 = Instant::now();
    let (mut p, mut s) = (Server::new(&rel("hot-standby", "p"), t0), Server::new(&rel("hot-standby", "s"), t0));
    run(&mut p, &mut s, t0, 1, 10, |_| 0);
    run(&mut p, &mut s, t0, 11, 3, |_| -75);
    assert_eq!((p.m.state(), s.m.state()), (State::Terminated, State::Terminated));
    // 45 s: Kea would not terminate a running pair for it, but it is above
    // the warning limit, so a terminated pair stays put.
    run(&mut p, &mut s, t0, 14, 60, |_| -45);
    assert_eq!((p.m.state(), s.m.state()), (State::Terminated, State::Terminated));
    // A clock that wanders back above 30 s restarts the settle period.
    run(&mut p, &mut s, t0, 74, 2, |_| 0);
    run(&mut p, &mut s, t0, 76, 1, |_| 31);
    run(&mut p, &mut s, t0, 77, 2, |_| 0);
    assert_eq!((p.m.state(), s.m.state()), (State::Terminated, State::Terminated));
    run(&mut p, &mut s, t0, 79, 15, |_| 0);
    assert_eq!((p.m.state(), s.m.state()), (State::HotStandby, State::HotStandby), "{:?} {:?}", p.states, s.states);
}

#[test]
fn a_partner_that_never_leaves_terminated_is_left_alone() {
    // The partner is a Kea server (never leaves terminated by itself).
    for me in ["p", "s"] {
        let t0 = Instant::now();
        let mut ours = Server::new(&rel("load-balancing", me), t0);
        let mut kea = Server::new(&rel("load-balancing", if me == "p" { "s" } else { "p" }), t0);
        kea.m.put(State::Terminated);
        kea.frozen = true;
        let (p, s) = if me == "p" { (&mut ours, &mut kea) } else { (&mut kea, &mut ours) };
        run(p, s, t0, 1, 3, |_| 90);
        run(p, s, t0, 4, 120, |_| 0);
        assert_eq!(kea.m.state(), State::Terminated);
        let attempts = ours.states.iter().filter(|st| **st == State::Waiting).count() - 1;
        if me == "p" {
            // The primary never moves first: it serves its scope throughout.
            assert_eq!(ours.states, [State::Waiting, State::Terminated], "{:?}", ours.states);
        } else {
            // The secondary tries once (settle 3 s, back after 5 s), then
            // again only after ten settle periods.
            assert!((2..=5).contains(&attempts), "{attempts} attempts: {:?}", ours.states);
            assert_eq!(ours.m.state(), State::Terminated);
            assert!(!ours.states.contains(&State::Syncing), "it never resynced against a terminated partner");
        }
        // The operator restarts the Kea server: it comes back in waiting,
        // and ours follows into the resync without waiting for a retry.
        let mut kea = Server::new(&rel("load-balancing", if me == "p" { "s" } else { "p" }), t0);
        let (p, s) = if me == "p" { (&mut ours, &mut kea) } else { (&mut kea, &mut ours) };
        run(p, s, t0, 124, 15, |_| 0);
        assert_eq!(ours.m.state(), State::LoadBalancing, "{me}: {:?}", ours.states);
    }
}

#[test]
fn a_superseded_update_changes_no_state_and_counts_nothing() {
    // Kea 2.4's limit of 1 rejected client: one result 4 terminates, any
    // failure makes the partner unavailable; a conflict refusal does neither.
    let json = r#"{"high-availability": [{"this-server-name": "p", "mode": "load-balancing", "heartbeat-delay": 1000,
        "max-response-delay": 3000, "max-rejected-lease-updates": 1, "peers": [
        {"name": "p", "url": "http://10.0.0.1:8000/", "role": "primary"},
        {"name": "s", "url": "http://10.0.0.2:8000/", "role": "secondary"}]}]}"#;
    let w: WireParameters = serde_json::from_str(json).unwrap();
    let r = build(w, "test", &mut |_, _| {}).unwrap().relationships()[0].clone();
    let t0 = Instant::now();
    let mut m = HaMachine::new(&r, t0);
    m.start(t0);
    m.put(State::LoadBalancing);
    let status = PartnerStatus { state: PartnerState::In(State::LoadBalancing), date_time: wall(0), scopes: None, unsent_update_count: None };
    m.handle(t0, Event::HeartbeatOk { status, received_at: wall(0) });
    for _ in 0..20 {
        m.handle(t0, Event::LeaseUpdates(UpdateOutcome::Superseded));
    }
    assert_eq!((m.state(), m.partner_state()), (State::LoadBalancing, PartnerState::In(State::LoadBalancing)));
    assert_eq!(m.unsent_update_count(), 0);
    // The same refusals read as Kea reads them would have ended elsewhere.
    m.handle(t0, Event::LeaseUpdates(UpdateOutcome::Rejected(ClientKey::new(&[2, 0, 0, 0, 0, 1], None))));
    assert_eq!(m.state(), State::Terminated);
}

//! Transition-by-transition tests of [`HaMachine`] against Kea 2.2's rules.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::config::ha::{HaRelationship, WireParameters, build};
use super::handover::{self, Handover};

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

#[test]
fn waiting_transitions() {
    check_rows(&[
        (HS, "p", Waiting, Is(Waiting), Syncing), // both waiting: primary first
        (HS, "s", Waiting, Is(Waiting), Waiting),
        (LB, "s", Waiting, Is(Waiting), Waiting),
        (HS, "s", Waiting, Is(Syncing), Waiting),
        (HS, "s", Waiting, Is(Ready), Syncing),
        (HS, "s", Waiting, Is(HotStandby), Syncing),
        (HS, "s", Waiting, Is(PartnerDown), Syncing),
        (HS, "s", Waiting, Is(InMaintenance), Syncing),
        (HS, "s", Waiting, Is(PartnerInMaintenance), Syncing),
        (LB, "s", Waiting, Is(LoadBalancing), Syncing),
        (LB, "s", Waiting, Is(CommunicationRecovery), Syncing),
        (HS, "p", Waiting, Is(Terminated), Waiting), // 2.2: sit until the partner restarts
        (HS, "p", Waiting, Is(LoadBalancing), Waiting), // invalid partner state: stay
        (LB, "p", Waiting, Is(HotStandby), Waiting),
        (HS, "p", Waiting, LostEarly, Waiting),
        (HS, "p", Waiting, LostLate, PartnerDown), // DHCP off: no client check
        (HS, "s", Waiting, LostLate, PartnerDown),
        (LB, "s", Waiting, LostLate, PartnerDown),
    ]);
}

#[test]
fn syncing_transitions() {
    check_rows(&[
        (HS, "p", Syncing, Is(Waiting), Syncing), // sync started
        (HS, "s", Syncing, Is(HotStandby), Syncing),
        (HS, "p", Syncing, Is(Terminated), Terminated),
        (HS, "p", Syncing, LostEarly, Syncing),
        (HS, "p", Syncing, LostLate, PartnerDown),
        (HS, "p", Syncing, Is(LoadBalancing), Waiting),
    ]);
}

#[test]
fn ready_transitions() {
    check_rows(&[
        (HS, "p", Ready, Is(Ready), HotStandby), // both ready: primary first
        (LB, "p", Ready, Is(Ready), LoadBalancing),
        (HS, "s", Ready, Is(Ready), Ready),
        (LB, "s", Ready, Is(Ready), Ready),
        (HS, "s", Ready, Is(HotStandby), HotStandby),
        (LB, "s", Ready, Is(LoadBalancing), LoadBalancing),
        (LB, "s", Ready, Is(CommunicationRecovery), LoadBalancing),
        (HS, "s", Ready, Is(InMaintenance), PartnerInMaintenance),
        (HS, "s", Ready, Is(PartnerInMaintenance), InMaintenance),
        (HS, "s", Ready, Is(Terminated), Terminated),
        (HS, "s", Ready, Is(Waiting), Ready),
        (HS, "s", Ready, Is(Syncing), Ready),
        (HS, "s", Ready, Is(PartnerDown), Ready),
        (HS, "s", Ready, LostEarly, Ready),
        (HS, "s", Ready, LostLate, PartnerDown),
        (HS, "s", Ready, Is(LoadBalancing), Waiting),
    ]);
}

#[test]
fn normal_state_transitions() {
    check_rows(&[
        (HS, "p", HotStandby, Is(HotStandby), HotStandby),
        (HS, "s", HotStandby, Is(HotStandby), HotStandby),
        (LB, "p", LoadBalancing, Is(LoadBalancing), LoadBalancing),
        (HS, "p", HotStandby, Is(Waiting), HotStandby),
        (HS, "p", HotStandby, Is(Syncing), HotStandby),
        (HS, "p", HotStandby, Is(Ready), HotStandby),
        // Partner in partner-down: back to waiting, which resyncs at once.
        (HS, "p", HotStandby, Is(PartnerDown), Syncing),
        (LB, "s", LoadBalancing, Is(PartnerDown), Syncing),
        (HS, "p", HotStandby, Is(InMaintenance), PartnerInMaintenance),
        (HS, "p", HotStandby, Is(PartnerInMaintenance), InMaintenance),
        (HS, "p", HotStandby, Is(Terminated), Terminated),
        (LB, "p", LoadBalancing, Is(Terminated), Terminated),
        (HS, "p", HotStandby, Is(LoadBalancing), Waiting),
        (LB, "p", LoadBalancing, Is(HotStandby), Waiting),
        (HS, "p", HotStandby, LostEarly, HotStandby),
        // The hot-standby primary cannot watch clients: fails over at once.
        (HS, "p", HotStandby, LostLate, PartnerDown),
        // The standby needs unacked clients (none seen here).
        (HS, "s", HotStandby, LostLate, HotStandby),
        // Load balancing defaults to delayed-updates-limit 100: the first
        // failed exchange already means communication-recovery.
        (LB, "p", LoadBalancing, LostEarly, CommunicationRecovery),
        (LB, "p", LoadBalancing, LostLate, CommunicationRecovery),
    ]);
    // Without communication-recovery a load-balancing peer waits for clients.
    let mut t = T::new(&rel(LB, "p", r#", "delayed-updates-limit": 0"#));
    t.m.put(LoadBalancing);
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), LoadBalancing);
}

#[test]
fn communication_recovery_transitions() {
    check_rows(&[
        (
            LB,
            "p",
            CommunicationRecovery,
            Is(InMaintenance),
            PartnerInMaintenance,
        ),
        (
            LB,
            "p",
            CommunicationRecovery,
            Is(PartnerInMaintenance),
            InMaintenance,
        ),
        (LB, "p", CommunicationRecovery, Is(PartnerDown), Syncing),
        (LB, "p", CommunicationRecovery, Is(Terminated), Terminated),
        (
            LB,
            "p",
            CommunicationRecovery,
            Is(Waiting),
            CommunicationRecovery,
        ),
        (
            LB,
            "p",
            CommunicationRecovery,
            Is(Ready),
            CommunicationRecovery,
        ),
        (
            LB,
            "p",
            CommunicationRecovery,
            Is(LoadBalancing),
            CommunicationRecovery,
        ), // flush pending
        (LB, "p", CommunicationRecovery, Is(HotStandby), Waiting),
        (
            LB,
            "p",
            CommunicationRecovery,
            LostEarly,
            CommunicationRecovery,
        ),
    ]);
}

#[test]
fn partner_down_transitions() {
    check_rows(&[
        (HS, "p", PartnerDown, Is(Ready), HotStandby),
        (LB, "s", PartnerDown, Is(Ready), LoadBalancing),
        (HS, "p", PartnerDown, Is(PartnerDown), Syncing),
        (HS, "p", PartnerDown, Is(PartnerInMaintenance), Syncing),
        (LB, "p", PartnerDown, Is(CommunicationRecovery), Syncing),
        // A partner already serving normally is left alone (gitlab #1959).
        (HS, "p", PartnerDown, Is(HotStandby), PartnerDown),
        (HS, "p", PartnerDown, Is(Waiting), PartnerDown),
        (HS, "p", PartnerDown, Is(Syncing), PartnerDown),
        (HS, "p", PartnerDown, Is(InMaintenance), PartnerDown),
        (HS, "p", PartnerDown, Is(Terminated), Terminated),
        (HS, "p", PartnerDown, LostLate, PartnerDown),
        (HS, "p", PartnerDown, Is(LoadBalancing), Waiting),
    ]);
}

#[test]
fn a_partner_that_served_alone_is_synced_from_even_when_it_is_ready_first() {
    // Back from a split, the partner resyncs from us first: its unsent
    // count moved once (while it was waiting), then stayed; when it shows
    // `ready`, we still have its clients to fetch.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.ev(100, status(P::In(HotStandby), 1, 0));
    t.m.put(PartnerDown);
    t.ev(500, status(P::In(Waiting), 3, 0));
    t.ev(1_500, status(P::In(Syncing), 3, 0));
    assert_eq!(t.state(), PartnerDown);
    t.ev(2_500, status(P::In(Ready), 3, 0));
    assert_ne!(t.state(), HotStandby, "the partner's clients would be missed");
    assert!(matches!(t.state(), Waiting | Syncing), "{}", t.state());
    // Once synced (ready), the same count does not send it back.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.ev(100, status(P::In(HotStandby), 1, 0));
    t.m.put(PartnerDown);
    t.ev(500, status(P::In(Waiting), 3, 0));
    t.m.put(Ready);
    t.m.put(PartnerDown);
    t.ev(1_500, status(P::In(Ready), 3, 0));
    assert_eq!(t.state(), HotStandby);
}

#[test]
fn maintenance_and_final_states_transitions() {
    check_rows(&[
        (
            HS,
            "p",
            PartnerInMaintenance,
            Is(InMaintenance),
            PartnerInMaintenance,
        ),
        (
            HS,
            "p",
            PartnerInMaintenance,
            Is(HotStandby),
            PartnerInMaintenance,
        ),
        // No interruption check: any failed exchange means partner-down.
        (HS, "p", PartnerInMaintenance, LostEarly, PartnerDown),
        (HS, "p", InMaintenance, Is(PartnerDown), InMaintenance),
        (HS, "p", InMaintenance, LostLate, InMaintenance),
        (HS, "p", Terminated, Is(HotStandby), Terminated),
        (HS, "p", Terminated, LostLate, Terminated),
        (HS, "b", Backup, Is(HotStandby), Backup),
        (PB, "p", PassiveBackup, LostLate, PassiveBackup),
    ]);
}

#[test]
fn hot_standby_startup_like_the_capture() {
    let (mut p, mut s) = (T::new(&rel(HS, "p", "")), T::new(&rel(HS, "s", "")));
    assert_eq!((p.state(), s.state()), (Waiting, Waiting));
    assert!(!p.m.dhcp_enabled() && p.scopes().is_empty());
    // The primary moves first and pulls the standby's leases.
    let a = p.ev(1_000, hb(Waiting));
    assert_eq!(p.state(), Syncing);
    assert!(a.contains(&Action::Heartbeat(false)), "{a:?}");
    let Some(Action::SyncLeases(req)) = a.iter().find(|a| matches!(a, Action::SyncLeases(_)))
    else {
        panic!("{a:?}")
    };
    assert_eq!(
        req,
        &SyncRequest {
            peer: "s".into(),
            dhcp_disable_max_period: 60,
            page_limit: 10_000,
            page_timeout: Duration::from_secs(60)
        }
    );
    s.ev(1_000, hb(Syncing));
    assert_eq!(s.state(), Waiting);
    let a = p.ev(1_100, Event::SyncSucceeded);
    assert_eq!(p.state(), Ready);
    assert!(a.contains(&Action::Heartbeat(true)));
    // Now the standby pulls from the primary.
    s.ev(2_000, hb(Ready));
    assert_eq!(s.state(), Syncing);
    p.ev(2_000, hb(Syncing));
    assert_eq!(p.state(), Ready);
    s.ev(2_100, Event::SyncSucceeded);
    assert_eq!(s.state(), Ready, "standby does not go first");
    let a = p.ev(3_000, hb(Ready));
    assert_eq!(p.state(), HotStandby);
    assert!(
        a.contains(&Action::DhcpService(true)) && a.contains(&Action::ScopesChanged(names(&["p"])))
    );
    s.ev(3_000, hb(HotStandby));
    assert_eq!(s.state(), HotStandby);
    assert!(
        s.m.dhcp_enabled() && s.scopes().is_empty(),
        "the standby serves nobody"
    );
    assert_eq!(p.m.heartbeat_reply().scopes, vec!["p".to_string()]);
    assert!(p.m.filter().primary && !s.m.filter().primary);
}

#[test]
fn sync_leases_false_skips_syncing() {
    let mut p = T::new(&rel(HS, "p", r#", "sync-leases": false"#));
    let a = p.ev(1_000, hb(Waiting));
    assert_eq!(p.state(), Ready);
    assert!(!a.iter().any(|a| matches!(a, Action::SyncLeases(_))));
    // Ready and then the partner ready: one event may chain several steps.
    let mut s = T::new(&rel(HS, "s", r#", "sync-leases": false"#));
    s.ev(1_000, hb(HotStandby));
    assert_eq!(
        s.state(),
        HotStandby,
        "waiting → ready → hot-standby in one run"
    );
}

#[test]
fn sync_failure_retries_on_the_next_heartbeat() {
    let mut t = T::new(&rel(HS, "s", ""));
    t.ev(1_000, hb(HotStandby));
    assert_eq!(t.state(), Syncing);
    // While the sync runs, heartbeats are off and nothing else moves.
    assert!(!t.m.heartbeat_enabled());
    let a = t.ev(1_500, Event::SyncFailed);
    assert_eq!((t.state(), t.m.partner_state()), (Syncing, P::Unavailable));
    assert!(a.contains(&Action::Heartbeat(true)));
    let a = t.ev(2_000, hb(HotStandby));
    assert!(
        a.iter().any(|a| matches!(a, Action::SyncLeases(_))),
        "{a:?}"
    );
    // Success: ready, and on to hot-standby in the same run (the partner
    // was last seen in hot-standby). A stray second result is ignored.
    t.ev(2_100, Event::SyncSucceeded);
    assert_eq!(t.state(), HotStandby);
    t.ev(2_200, Event::SyncSucceeded);
    assert_eq!(t.state(), HotStandby);
}

#[test]
fn unacked_clients_rule_for_the_standby() {
    let q = |mac: &'static [u8], secs: u16| Query {
        msg_type: 1,
        chaddr: mac,
        client_id: None,
        secs,
    };
    let mut t = T::new(&rel(HS, "s", ""));
    t.m.put(HotStandby);
    // Not interrupted yet: nothing is analysed.
    let (serve, _) = t.m.admit(t.at(1_000), &q(&[1], 10));
    assert!(!serve);
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), HotStandby);
    // (secs, counts as unacked with max-ack-delay 2 s)
    for (mac, secs) in [
        (&[2u8][..], 0u16),
        (&[3], 2),
        (&[4], 3),
        (&[4], 9),
        (&[5], 0x0300),
    ] {
        t.m.admit(t.at(4_100), &q(mac, secs));
    }
    let st = t.m.remote_status(t.at(4_200));
    // 4 distinct clients; 3 s and swapped 0x0300 = 3 s are over 2 s, 2 s is not.
    assert_eq!(
        (
            st.connecting_clients,
            st.unacked_clients,
            st.analyzed_packets
        ),
        (4, 2, 5)
    );
    assert_eq!(st.unacked_clients_left, 1);
    t.ev(5_000, Event::HeartbeatFailed);
    assert_eq!(
        t.state(),
        HotStandby,
        "2 unacked clients are not more than 2"
    );
    // The late client that first showed up low is upgraded.
    let (_, notes) = t.m.admit(t.at(5_100), &q(&[3], 7));
    assert_eq!(
        notes,
        vec![Action::Notice(Notice::ClientUnacked {
            unacked: 3,
            left: 0
        })]
    );
    t.ev(6_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown);
    assert_eq!(
        t.scopes(),
        vec!["p"],
        "the standby takes the primary's scope"
    );
    assert!(t.m.admit(t.at(6_100), &q(&[9], 0)).0);
}

#[test]
fn unacked_clients_cleared_by_a_good_heartbeat_and_own_scope_ignored() {
    let mut t = T::new(&rel(LB, "p", r#", "delayed-updates-limit": 0"#));
    t.m.put(LoadBalancing);
    t.ev(4_000, Event::HeartbeatFailed);
    // 02:..:01 hashes odd (secondary's), 02:..:03 even (ours).
    let theirs = |last: u8| [0x02, 0, 0, 0, last, 0x01];
    let ours = Query {
        msg_type: 3,
        chaddr: &[0x02, 0, 0, 0, 0, 0x03],
        client_id: None,
        secs: 60,
    };
    assert!(t.m.admit(t.at(4_100), &ours).0);
    assert_eq!(
        t.m.remote_status(t.at(4_100)).analyzed_packets,
        0,
        "own scope is not analysed"
    );
    let mut odd = Vec::new();
    for i in 0..=255u8 {
        let mac = theirs(i);
        if lb_owner(rfc3074_bucket(&mac)) == Role::Secondary {
            odd.push(mac);
        }
    }
    for mac in &odd[..3] {
        t.m.admit(
            t.at(4_200),
            &Query {
                msg_type: 1,
                chaddr: mac,
                client_id: None,
                secs: 30,
            },
        );
    }
    assert_eq!(t.m.remote_status(t.at(4_300)).unacked_clients, 3);
    // A good heartbeat (partner back) forgets them.
    t.ev(4_400, hb(LoadBalancing));
    assert_eq!(t.m.remote_status(t.at(4_400)).unacked_clients, 0);
    t.ev(8_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), LoadBalancing);
    for mac in &odd[..3] {
        t.m.admit(
            t.at(8_100),
            &Query {
                msg_type: 1,
                chaddr: mac,
                client_id: None,
                secs: 30,
            },
        );
    }
    t.ev(9_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown);
    assert_eq!(t.scopes(), vec!["p", "s"]);
}

#[test]
fn max_unacked_clients_zero_fails_over_on_interruption_alone() {
    let mut t = T::new(&rel(HS, "s", r#", "max-unacked-clients": 0"#));
    t.m.put(HotStandby);
    t.ev(3_000, Event::HeartbeatFailed);
    assert_eq!(
        t.state(),
        HotStandby,
        "3 s is not more than max-response-delay"
    );
    t.ev(3_001, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown);
}

#[test]
fn clock_skew_warns_above_30_and_terminates_above_60() {
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    let warned = |a: &[Action]| {
        a.iter()
            .any(|a| matches!(a, Action::Notice(Notice::HighClockSkew { .. })))
    };
    assert!(!warned(&t.ev(1_000, status(P::In(HotStandby), 0, 30))));
    let a = t.ev(2_000, status(P::In(HotStandby), 0, 31));
    assert!(warned(&a) && t.state() == HotStandby);
    assert!(
        !warned(&t.ev(3_000, status(P::In(HotStandby), 0, 45))),
        "rate limited"
    );
    assert!(
        !warned(&t.ev(62_000, status(P::In(HotStandby), 0, -45))),
        "exactly 60 s later: not yet"
    );
    assert!(warned(&t.ev(63_000, status(P::In(HotStandby), 0, -45))));
    assert!(
        !warned(&t.ev(64_000, status(P::In(HotStandby), 0, 60))),
        "60 s: warned a second ago"
    );
    assert_eq!(t.state(), HotStandby);
    // The skew persists across failed heartbeats (Kea 2.2).
    t.ev(65_000, Event::HeartbeatFailed);
    assert_eq!(t.m.clock_skew_secs(), 60);
    let a = t.ev(66_000, status(P::In(HotStandby), 0, 61));
    assert!(a.contains(&Action::Notice(Notice::ClockSkewTerminates {
        skew_secs: 61
    })));
    assert_eq!(t.state(), Terminated);
    // Beyond Kea: heartbeats go on, to see the skew end (ha::recovery).
    assert!(!a.iter().any(|x| matches!(x, Action::Heartbeat(_))) && t.m.heartbeat_enabled());
    assert!(
        t.m.dhcp_enabled() && t.scopes() == vec!["p"],
        "terminated serves its own scope"
    );
    // Behind works the same, and from any guarded state.
    for from in [Waiting, Syncing, Ready, PartnerDown, PartnerInMaintenance] {
        let mut t = T::new(&rel(HS, "s", ""));
        t.m.put(from);
        t.ev(1_000, status(P::In(HotStandby), 0, -61));
        assert_eq!(t.state(), Terminated, "from {from}");
    }
    // Sub-second remainders do not count: 60.9 s is 60.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    let e = Event::HeartbeatOk {
        status: PartnerStatus {
            state: P::In(HotStandby),
            date_time: wall() + Duration::from_millis(60_900),
            scopes: None,
            unsent_update_count: None,
        },
        received_at: wall(),
    };
    t.ev(1_000, e);
    assert_eq!(t.state(), HotStandby);
}

#[test]
fn terminated_leaves_through_ha_reset_before_the_skew_settles() {
    // Kea leaves terminated only through ha-reset; we also leave once the
    // skew stayed clean for the settle period (ha::recovery_tests), which
    // one instant of clean heartbeats is not.
    let mut t = T::new(&rel(HS, "s", ""));
    t.m.put(Terminated);
    for s in [Ready, HotStandby, PartnerDown, Waiting] {
        t.ev(1_000, hb(s));
    }
    assert_eq!(t.state(), Terminated);
    // ha-reset runs waiting's rules at once; with a waiting primary the
    // standby stays.
    let (reply, a) = t.m.ha_reset(t.at(2_000));
    assert_eq!(reply.code, ReplyCode::Success);
    assert_eq!(t.state(), Waiting);
    assert!(a.contains(&Action::DhcpService(false)) && t.m.heartbeat_enabled());
    let (reply, _) = t.m.ha_reset(t.at(2_100));
    assert_eq!(reply.text, "HA state machine already in WAITING state.");
}

#[test]
fn pause_once_and_always() {
    let r = rel(
        HS,
        "p",
        r#", "state-machine": {"states": [{"state": "waiting", "pause": "once"}, {"state": "ready", "pause": "always"}]}"#,
    );
    let t0 = Instant::now();
    let mut m = HaMachine::new(&r, t0);
    let a = m.start(t0);
    assert!(a.contains(&Action::Paused(Waiting)) && m.is_paused());
    m.handle(t0, hb(Waiting));
    assert_eq!(m.state(), Waiting, "paused: no transition");
    let (reply, _) = m.resume(t0);
    assert_eq!(reply.text, "HA state machine continues.");
    assert_eq!(m.state(), Waiting, "continue alone does not move");
    m.handle(t0, hb(Waiting));
    assert_eq!(m.state(), Syncing);
    m.handle(t0, Event::SyncSucceeded);
    assert_eq!(m.state(), Ready);
    assert!(m.is_paused());
    m.handle(t0, hb(Ready));
    assert_eq!(m.state(), Ready);
    m.resume(t0);
    m.handle(t0, hb(Ready));
    assert_eq!(m.state(), HotStandby);
    // Back to waiting: "once" is spent; ready pauses again ("always").
    m.ha_reset(t0);
    assert!(!m.is_paused());
    m.handle(t0, hb(Ready));
    m.handle(t0, Event::SyncSucceeded);
    assert_eq!(m.state(), Ready);
    assert!(m.is_paused());
    assert_eq!(m.resume(t0).0.code, ReplyCode::Success);
    assert_eq!(m.resume(t0).0.text, "HA state machine is not paused.");
}

#[test]
fn auto_failover_false_keeps_default_scopes() {
    let mut t = T::new(&rel_full(HS, "s", "", r#""auto-failover": false"#));
    t.m.put(Waiting);
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown);
    assert!(
        t.scopes().is_empty(),
        "a standby's default scope is nothing"
    );
    assert!(t.m.dhcp_enabled());
    // The operator takes over by hand.
    let (reply, a) = t.m.set_scopes(t.at(4_100), &["p".to_string()]);
    assert_eq!(reply.code, ReplyCode::Success);
    assert!(a.contains(&Action::ScopesChanged(names(&["p"]))));
    assert_eq!(
        t.m.set_scopes(t.at(4_200), &["HA_p".to_string()]).0.code,
        ReplyCode::Error
    );
    assert_eq!(t.scopes(), vec!["p"], "a refused ha-scopes changes nothing");
    // A load-balancing primary keeps its own scope only.
    let mut t = T::new(&rel_full(
        LB,
        "p",
        r#", "delayed-updates-limit": 0"#,
        r#""auto-failover": false"#,
    ));
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!((t.state(), t.scopes()), (PartnerDown, vec!["p"]));
    // Maintenance-driven partner-down ignores the flag.
    let mut t = T::new(&rel_full(HS, "s", "", r#""auto-failover": false"#));
    t.m.put(HotStandby);
    assert_eq!(
        t.m.maintenance_start(),
        Ok(vec![Action::SendMaintenanceNotify { cancel: false }])
    );
    let (reply, _) =
        t.m.maintenance_start_answered(t.at(100), PeerAnswer::Unreachable);
    assert_eq!(reply.code, ReplyCode::Success);
    assert_eq!((t.state(), t.scopes()), (PartnerDown, vec!["p"]));
    assert_eq!(t.m.partner_state(), P::Unavailable);
}

#[test]
fn maintenance_start_and_cancel_on_both_sides() {
    let (mut p, mut s) = (T::new(&rel(LB, "p", "")), T::new(&rel(LB, "s", "")));
    p.m.put(LoadBalancing);
    s.m.put(LoadBalancing);
    // Operator on p; p notifies s; s goes in-maintenance; p serves both scopes.
    let a = p.m.maintenance_start().unwrap();
    assert_eq!(a, vec![Action::SendMaintenanceNotify { cancel: false }]);
    let (reply, a) = s.m.maintenance_notify(s.at(10), false);
    assert_eq!(reply.code, ReplyCode::Success);
    assert_eq!(s.state(), InMaintenance);
    assert!(
        a.contains(&Action::DhcpService(false))
            && a.contains(&Action::Notice(Notice::MaintenanceShutdownSafe))
    );
    p.m.maintenance_start_answered(p.at(20), PeerAnswer::Result(0));
    assert_eq!(
        (p.state(), p.scopes()),
        (PartnerInMaintenance, vec!["p", "s"])
    );
    assert_eq!(
        p.m.plan_lease_updates(1).partner,
        PartnerUpdates::Send,
        "updates still flow"
    );
    // Heartbeats do not move either side.
    p.ev(1_000, hb(InMaintenance));
    s.ev(1_000, hb(PartnerInMaintenance));
    assert_eq!(
        (p.state(), s.state()),
        (PartnerInMaintenance, InMaintenance)
    );
    // Second start and notify are refused.
    assert!(p.m.maintenance_start().is_err());
    assert_eq!(
        p.m.maintenance_notify(p.at(1_100), false).0.code,
        ReplyCode::MaintenanceNotAllowed
    );
    // Cancel: both go back.
    assert_eq!(
        p.m.maintenance_cancel().unwrap(),
        vec![Action::SendMaintenanceNotify { cancel: true }]
    );
    let (reply, _) = s.m.maintenance_notify(s.at(1_200), true);
    assert_eq!(reply.code, ReplyCode::Success);
    assert_eq!(s.state(), LoadBalancing);
    let (reply, _) =
        p.m.maintenance_cancel_answered(p.at(1_300), PeerAnswer::Result(0));
    assert_eq!(reply.code, ReplyCode::Success);
    assert_eq!((p.state(), p.scopes()), (LoadBalancing, vec!["p"]));
    // Cancel outside the maintenance states is an error.
    assert_eq!(
        s.m.maintenance_notify(s.at(1_400), true).0.code,
        ReplyCode::Error
    );
    assert!(p.m.maintenance_cancel().is_err());
}

#[test]
fn maintenance_refusals_and_partner_answers() {
    for st in [Backup, InMaintenance, PartnerInMaintenance, Terminated] {
        let mut t = T::new(&rel(HS, "p", ""));
        t.m.put(st);
        assert!(t.m.maintenance_start().is_err(), "{st}");
    }
    for st in [Backup, PartnerInMaintenance, Terminated] {
        let mut t = T::new(&rel(HS, "p", ""));
        t.m.put(st);
        assert_eq!(
            t.m.maintenance_notify(t.at(1), false).0.code,
            ReplyCode::MaintenanceNotAllowed,
            "{st}"
        );
        assert_eq!(t.state(), st);
    }
    // The partner refuses (1001): no change, but it counts as unavailable.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.m.maintenance_start().unwrap();
    let (reply, _) =
        t.m.maintenance_start_answered(t.at(1), PeerAnswer::Result(1001));
    assert_eq!(
        (reply.code, t.state(), t.m.partner_state()),
        (ReplyCode::Error, HotStandby, P::Unavailable)
    );
    // Answered 1: partner-down with every scope.
    t.m.maintenance_start().unwrap();
    t.m.maintenance_start_answered(t.at(2), PeerAnswer::Result(1));
    assert_eq!(t.state(), PartnerDown);
    // Notified twice, a cancel goes to waiting rather than sticking.
    let mut t = T::new(&rel(HS, "s", ""));
    t.m.put(HotStandby);
    t.m.maintenance_notify(t.at(1), false);
    t.m.maintenance_notify(t.at(2), false);
    t.m.maintenance_notify(t.at(3), true);
    assert_eq!(t.state(), Waiting);
    // A failed cancel leaves the operator's side in partner-in-maintenance.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.m.maintenance_start().unwrap();
    t.m.maintenance_start_answered(t.at(1), PeerAnswer::Result(0));
    t.m.maintenance_cancel().unwrap();
    let (reply, _) =
        t.m.maintenance_cancel_answered(t.at(2), PeerAnswer::Unreachable);
    assert_eq!(
        (reply.code, t.state()),
        (ReplyCode::Error, PartnerInMaintenance)
    );
    // ... and the next heartbeat failure turns it into partner-down.
    t.ev(3, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown);
}

#[test]
fn partner_down_resyncs_when_the_partner_served_alone() {
    // Unsent count unchanged between two heartbeats: straight back to normal.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(PartnerDown);
    t.ev(1_000, status(P::In(Waiting), 3, 0));
    t.ev(2_000, status(P::In(Ready), 3, 0));
    assert_eq!(t.state(), HotStandby);
    // It changed: the partner allocated without telling us; resync first.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(PartnerDown);
    t.ev(1_000, status(P::In(Waiting), 3, 0));
    t.ev(2_000, status(P::In(Ready), 5, 0));
    assert_eq!(t.state(), Syncing);
}

#[test]
fn lease_update_plans_and_unsent_count() {
    let mut t = T::new(&rel(HS, "p", ""));
    assert_eq!(
        t.m.plan_lease_updates(1).partner,
        PartnerUpdates::Skip,
        "waiting"
    );
    t.m.put(HotStandby);
    assert_eq!(
        t.m.plan_lease_updates(2),
        UpdatePlan {
            partner: PartnerUpdates::Send,
            backups: true
        }
    );
    t.m.put(PartnerDown);
    t.m.plan_lease_updates(2);
    assert_eq!(
        t.m.unsent_update_count(),
        2,
        "one per packet, also in waiting"
    );
    assert_eq!(t.m.heartbeat_reply().unsent_update_count, 2);
    // A failed update makes the partner unavailable.
    t.m.put(HotStandby);
    t.ev(100, Event::LeaseUpdates(UpdateOutcome::Failed));
    assert_eq!(
        (t.m.partner_state(), t.state()),
        (P::Unavailable, HotStandby)
    );
    t.ev(4_000, Event::LeaseUpdates(UpdateOutcome::Failed));
    assert_eq!(
        t.state(),
        PartnerDown,
        "the primary fails over on a late update failure too"
    );
    // No lease updates at all when administratively off.
    let mut t = T::new(&rel(HS, "p", r#", "send-lease-updates": false"#));
    t.m.put(HotStandby);
    assert_eq!(
        t.m.plan_lease_updates(1),
        UpdatePlan {
            partner: PartnerUpdates::Skip,
            backups: false
        }
    );
    // Backups and passive-backup have no partner.
    let mut b = T::new(&rel(HS, "b", ""));
    assert_eq!(b.m.plan_lease_updates(1).partner, PartnerUpdates::NoPartner);
    let mut pb = T::new(&rel(PB, "p", ""));
    assert_eq!(
        pb.m.plan_lease_updates(1),
        UpdatePlan {
            partner: PartnerUpdates::NoPartner,
            backups: true
        }
    );
}

#[test]
fn rejected_lease_updates_terminate_at_the_limit() {
    let mut t = T::new(&rel(LB, "p", r#", "max-rejected-lease-updates": 2"#));
    t.m.put(LoadBalancing);
    let c = |i: u8| ClientKey::new(&[i], None);
    t.ev(100, Event::LeaseUpdates(UpdateOutcome::Rejected(c(1))));
    t.ev(200, Event::LeaseUpdates(UpdateOutcome::Rejected(c(1))));
    assert_eq!(
        (t.state(), t.m.partner_state()),
        (LoadBalancing, P::Unknown),
        "not a failure"
    );
    t.ev(300, Event::LeaseUpdates(UpdateOutcome::Acked(c(1))));
    t.ev(400, Event::LeaseUpdates(UpdateOutcome::Rejected(c(2))));
    assert_eq!(t.state(), LoadBalancing, "client 1 was forgiven");
    let a = t.ev(500, Event::LeaseUpdates(UpdateOutcome::Rejected(c(3))));
    assert!(
        a.contains(&Action::Notice(Notice::RejectedUpdatesTerminate {
            clients: 2
        }))
    );
    assert_eq!(t.state(), Terminated);
    // 0 disables the rule.
    let mut t = T::new(&rel(LB, "p", r#", "max-rejected-lease-updates": 0"#));
    t.m.put(LoadBalancing);
    for i in 0..50 {
        t.ev(100, Event::LeaseUpdates(UpdateOutcome::Rejected(c(i))));
    }
    assert_eq!(t.state(), LoadBalancing);
}

#[test]
fn communication_recovery_flushes_or_resets() {
    let mut t = T::new(&rel(LB, "p", r#", "delayed-updates-limit": 3"#));
    t.m.put(LoadBalancing);
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), CommunicationRecovery);
    assert_eq!(t.scopes(), vec!["p"]);
    assert_eq!(t.m.plan_lease_updates(2).partner, PartnerUpdates::Queue);
    let a = t.ev(5_000, hb(LoadBalancing));
    assert!(a.contains(&Action::FlushBacklog), "{a:?}");
    t.ev(5_100, hb(LoadBalancing));
    let a = t.ev(5_200, Event::BacklogFlushed(true));
    assert!(a.contains(&Action::ClearBacklog));
    assert_eq!(t.state(), LoadBalancing);
    // Overflow: ha-reset, then waiting (which resyncs).
    t.ev(9_000, Event::HeartbeatFailed);
    assert_eq!(t.state(), CommunicationRecovery);
    assert_eq!(t.m.plan_lease_updates(3).partner, PartnerUpdates::Queue);
    assert_eq!(
        t.m.plan_lease_updates(1).partner,
        PartnerUpdates::Overflowed
    );
    let a = t.ev(10_000, hb(LoadBalancing));
    assert!(a.contains(&Action::SendHaReset), "{a:?}");
    t.ev(10_100, Event::HaResetSent(true));
    assert_eq!(t.state(), Syncing);
    // A failed flush also resets; a failed reset stays put.
    let mut t = T::new(&rel(LB, "p", r#", "delayed-updates-limit": 3"#));
    t.m.put(CommunicationRecovery);
    t.ev(100, hb(CommunicationRecovery));
    let a = t.ev(200, Event::BacklogFlushed(false));
    assert_eq!(a, vec![Action::SendHaReset]);
    t.ev(300, Event::HaResetSent(false));
    assert_eq!(t.state(), CommunicationRecovery);
    // Partner resyncing and our backlog overflowed: we resync too.
    let mut t = T::new(&rel(LB, "p", r#", "delayed-updates-limit": 1"#));
    t.m.put(CommunicationRecovery);
    t.m.plan_lease_updates(2);
    t.ev(100, hb(Syncing));
    assert_eq!(t.state(), Waiting);
}

#[test]
fn partner_disable_enable_and_sync_complete_notify() {
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    let a =
        t.m.partner_dhcp_disable(t.at(0), Some(Duration::from_secs(60)));
    assert_eq!(a, vec![Action::DhcpService(false)]);
    assert!(t.ev(59_999, Event::Tick).is_empty());
    assert_eq!(t.ev(60_000, Event::Tick), vec![Action::DhcpService(true)]);
    t.m.partner_dhcp_disable(t.at(61_000), None);
    assert_eq!(t.ev(1_000_000, Event::Tick), vec![]);
    let (reply, a) = t.m.sync_complete_notify(t.at(1_000_001));
    assert_eq!(
        (reply.code, a),
        (ReplyCode::Success, vec![Action::DhcpService(true)])
    );
    // In partner-down the next heartbeat decides: failed → serve on.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(PartnerDown);
    t.m.partner_dhcp_disable(t.at(0), Some(Duration::from_secs(60)));
    let (_, a) = t.m.sync_complete_notify(t.at(100));
    assert!(a.is_empty() && !t.m.dhcp_enabled());
    let a = t.ev(1_000, Event::HeartbeatFailed);
    assert_eq!(a, vec![Action::DhcpService(true)]);
    assert_eq!(t.state(), PartnerDown);
    // ... succeeded with the partner ready → normal service.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(PartnerDown);
    t.m.partner_dhcp_disable(t.at(0), Some(Duration::from_secs(60)));
    t.m.sync_complete_notify(t.at(100));
    t.ev(1_000, hb(Ready));
    assert!(t.state() == HotStandby && t.m.dhcp_enabled());
}

#[test]
fn backup_and_passive_backup_never_move() {
    let mut b = T::new(&rel(HS, "b", ""));
    assert_eq!(b.state(), Backup);
    assert!(!b.m.heartbeat_enabled() && !b.m.dhcp_enabled() && b.scopes().is_empty());
    b.ev(10_000, Event::HeartbeatFailed);
    assert_eq!(b.state(), Backup);
    let t0 = Instant::now();
    let mut pb = HaMachine::new(&rel(PB, "p", ""), t0);
    let a = pb.start(t0);
    assert_eq!(pb.state(), PassiveBackup);
    assert!(a.contains(&Action::StateChanged {
        from: Waiting,
        to: PassiveBackup,
        partner: P::Unknown
    }));
    assert!(pb.dhcp_enabled() && !pb.heartbeat_enabled());
    assert_eq!(pb.serving_scopes(), &names(&["p"]));
    assert_eq!(
        pb.filter(),
        ScopeFilter {
            mode: HaMode::PassiveBackup,
            primary: true,
            secondary: false
        }
    );
}

#[test]
fn heartbeat_delay_zero_means_no_heartbeats() {
    let t = T::new(&rel(HS, "p", r#", "heartbeat-delay": 0"#));
    assert!(!t.m.heartbeat_enabled());
}

#[test]
fn status_before_and_after_contact() {
    let mut t = T::new(&rel(HS, "p", ""));
    let st = t.m.remote_status(t.at(5_000));
    assert!(
        !st.in_touch && st.age == 0 && st.last_state.is_none() && st.communication_interrupted
    );
    let e = Event::HeartbeatOk {
        status: PartnerStatus {
            state: P::In(HotStandby),
            date_time: wall(),
            scopes: Some(names(&["p"])),
            unsent_update_count: None,
        },
        received_at: wall(),
    };
    t.ev(6_000, e);
    let st = t.m.remote_status(t.at(8_500));
    assert!(st.in_touch && !st.communication_interrupted);
    assert_eq!(
        (st.age, st.last_state.map_or("", PartnerState::name), st.last_scopes),
        (2, "hot-standby", vec!["p".to_string()])
    );
}

#[test]
fn state_names_round_trip() {
    for s in State::ALL {
        assert_eq!(State::from_name(s.name()), Some(s));
        assert_eq!(PartnerState::from_name(s.name()), Some(PartnerState::In(s)));
    }
    assert_eq!(
        PartnerState::from_name("unavailable"),
        Some(PartnerState::Unavailable)
    );
    assert_eq!(PartnerState::from_name("HOT-STANDBY"), None);
}

#[test]
fn scope_names_for_classes() {
    let mut t = T::new(&rel(LB, "s", ""));
    t.m.put(LoadBalancing);
    let q = |mac: &'static [u8]| Query {
        msg_type: 1,
        chaddr: mac,
        client_id: None,
        secs: 0,
    };
    assert_eq!(t.m.scope_name(&q(&[0x02, 0, 0, 0, 0, 0x01])), Some("s"));
    assert_eq!(t.m.scope_name(&q(&[0x02, 0, 0, 0, 0, 0x03])), Some("p"));
    assert_eq!(t.m.scope_name(&q(&[])), None);
    assert!(t.m.admit(t.at(0), &q(&[0x02, 0, 0, 0, 0, 0x01])).0);
    assert!(!t.m.admit(t.at(0), &q(&[0x02, 0, 0, 0, 0, 0x03])).0);
}

use crate::config::ha::{HaMode, Role};

#[test]
fn release_partner_disable_only_undoes_a_partner_disable() {
    // Disabled by a partner (another relationship's, on a hub): released.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.m.partner_dhcp_disable(t.at(0), None);
    assert_eq!(t.m.release_partner_disable(t.at(10)), vec![Action::DhcpService(true)]);
    assert!(t.m.dhcp_enabled());
    // Off because of its own state (waiting): left off.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.start(t.at(0));
    assert!(!t.m.dhcp_enabled());
    assert!(t.m.release_partner_disable(t.at(10)).is_empty());
    assert!(!t.m.dhcp_enabled());
}

#[test]
fn interruption_deadline_moves_with_each_good_heartbeat() {
    let mut t = T::new(&rel(HS, "s", r#", "max-unacked-clients": 0"#));
    t.m.put(HotStandby);
    t.ev(500, hb(HotStandby));
    // max-response-delay is 3 s: the deadline is 3 s after the last contact.
    assert_eq!(t.m.interruption_deadline(), t.at(3_500));
    t.ev(1_500, Event::HeartbeatFailed);
    assert_eq!(t.m.interruption_deadline(), t.at(3_500), "a failure does not move it");
    t.ev(3_500, Event::HeartbeatFailed);
    assert_eq!(t.state(), HotStandby, "exactly max-response-delay is not yet interrupted");
    t.ev(3_520, Event::HeartbeatFailed);
    assert_eq!(t.state(), PartnerDown, "just past the deadline it is");
}

#[test]
fn planned_stop_hands_over_and_the_pair_comes_back() {
    // Hot-standby, the primary serving, the standby watching.
    let (mut p, mut s) = (T::new(&rel(HS, "p", "")), T::new(&rel(HS, "s", "")));
    p.m.put(HotStandby);
    s.m.put(HotStandby);
    p.ev(100, hb(HotStandby));
    s.ev(100, hb(HotStandby));
    assert_eq!(p.m.handover(), Handover::Ask);
    // SIGTERM on p: its switch goes off first and stays off.
    let a = p.m.stop_serving(p.at(200));
    assert_eq!(a, vec![Action::DhcpService(false)]);
    assert_eq!(p.state(), HotStandby, "the state is the partner's to change");
    // p sends ha-maintenance-start to s; s notifies p back.
    assert_eq!(s.m.maintenance_start(), Ok(vec![Action::SendMaintenanceNotify { cancel: false }]));
    let (reply, _) = p.m.maintenance_notify(p.at(210), false);
    assert_eq!((reply.code, p.state(), p.m.dhcp_enabled()), (ReplyCode::Success, InMaintenance, false));
    let (reply, _) = s.m.maintenance_start_answered(s.at(220), PeerAnswer::Result(0));
    assert_eq!(handover::judge(PeerAnswer::Result(reply.code.code())), handover::Outcome::TakenOver);
    assert_eq!((s.state(), s.scopes(), s.m.dhcp_enabled()), (PartnerInMaintenance, vec!["p"], true));
    // p exits: s's next heartbeat fails and it goes partner-down at once,
    // long before max-response-delay.
    s.ev(1_000, Event::HeartbeatFailed);
    assert_eq!((s.state(), s.scopes()), (PartnerDown, vec!["p"]));
    // p restarts: a new machine, which resyncs from s; both back to normal.
    let mut p = T::new(&rel(HS, "p", ""));
    p.ev(5_000, hb(PartnerDown));
    assert_eq!(p.state(), Syncing);
    p.ev(5_100, Event::SyncSucceeded);
    assert_eq!(p.state(), Ready);
    s.ev(5_200, status(P::In(Ready), 0, 0));
    assert_eq!(s.state(), HotStandby);
    p.ev(5_300, hb(HotStandby));
    assert_eq!((p.state(), p.scopes(), p.m.dhcp_enabled()), (HotStandby, vec!["p"], true));
}

#[test]
fn stopping_keeps_the_switch_off_in_every_state() {
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(Ready);
    t.m.stop_serving(t.at(1));
    // Seeing the partner normal would turn the service on; not while stopping.
    t.ev(100, hb(HotStandby));
    assert_eq!((t.state(), t.m.dhcp_enabled()), (HotStandby, false));
    t.ev(200, Event::HeartbeatFailed);
    t.ev(4_000, Event::HeartbeatFailed);
    assert_eq!((t.state(), t.m.dhcp_enabled()), (PartnerDown, false));
}

#[test]
fn handover_plan_follows_both_states() {
    let mut t = T::new(&rel(HS, "p", ""));
    assert_eq!(t.m.handover(), Handover::Skip(handover::SkipReason::PartnerState(P::Unknown)));
    t.m.put(HotStandby);
    t.ev(100, hb(HotStandby));
    assert_eq!(t.m.handover(), Handover::Ask);
    t.ev(200, Event::HeartbeatFailed);
    assert_eq!(t.m.handover(), Handover::Skip(handover::SkipReason::PartnerState(P::Unavailable)));
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(InMaintenance);
    assert_eq!(t.m.handover(), Handover::Skip(handover::SkipReason::OwnState(InMaintenance)));
    let mut b = T::new(&rel(HS, "b", ""));
    assert_eq!(b.state(), Backup);
    b.ev(100, hb(HotStandby));
    assert_eq!(b.m.handover(), Handover::Skip(handover::SkipReason::NoPartner));
}

#[test]
fn restarted_before_the_partner_noticed_cancels_the_old_maintenance() {
    // s took over from a planned stop of p and still holds it in
    // maintenance (its heartbeats did not fail yet): p is back already.
    let mut s = T::new(&rel(HS, "s", ""));
    s.m.put(HotStandby);
    s.m.maintenance_start().unwrap();
    s.m.maintenance_start_answered(s.at(10), PeerAnswer::Result(0));
    assert_eq!(s.state(), PartnerInMaintenance);
    s.ev(500, hb(Waiting));
    assert_eq!(s.state(), PartnerInMaintenance, "Kea's partner-in-maintenance waits only for unavailable");
    let mut p = T::new(&rel(HS, "p", ""));
    p.ev(600, hb(PartnerInMaintenance));
    assert_eq!(p.state(), Syncing);
    let a = p.ev(700, Event::SyncSucceeded);
    // Ready seeing partner-in-maintenance goes in-maintenance (Kea), and
    // this process was never told so: it asks for the cancel.
    assert_eq!(p.state(), InMaintenance);
    assert!(a.contains(&Action::SendMaintenanceCancel), "{a:?}");
    // Each heartbeat asks again while nothing changes.
    assert!(p.ev(1_700, hb(PartnerInMaintenance)).contains(&Action::SendMaintenanceCancel));
    // s handles ha-maintenance-cancel: it notifies p, both go back.
    assert_eq!(s.m.maintenance_cancel(), Ok(vec![Action::SendMaintenanceNotify { cancel: true }]));
    let (reply, _) = p.m.maintenance_notify(p.at(1_800), true);
    assert_eq!((reply.code, p.state()), (ReplyCode::Success, Ready));
    s.m.maintenance_cancel_answered(s.at(1_810), PeerAnswer::Result(0));
    assert_eq!((s.state(), s.scopes()), (HotStandby, Vec::<&str>::new()));
    p.ev(2_700, hb(HotStandby));
    assert_eq!((p.state(), p.scopes()), (HotStandby, vec!["p"]));
    s.ev(2_700, hb(HotStandby));
    assert_eq!(s.state(), HotStandby);
}

#[test]
fn in_maintenance_left_over_from_a_previous_run_does_not_stick() {
    // Reached by Kea's rule, not by a notify: once the partner shows any
    // other state, back to waiting (to resync) instead of silence for good.
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(Ready);
    t.m.maintenance_notify(t.at(1), true); // nothing to cancel: refused
    t.ev(100, hb(PartnerInMaintenance));
    assert_eq!(t.state(), InMaintenance);
    t.ev(200, Event::HeartbeatFailed);
    assert_eq!(t.state(), InMaintenance, "unavailable: wait for the partner");
    let a = t.ev(1_200, hb(HotStandby));
    assert!(a.contains(&Action::StateChanged { from: InMaintenance, to: Waiting, partner: P::In(HotStandby) }), "{a:?}");
    assert_eq!(t.state(), Syncing, "through waiting, resyncing from the partner");
    // Put there by the partner's notify, it waits for the cancel (Kea).
    let mut t = T::new(&rel(HS, "p", ""));
    t.m.put(HotStandby);
    t.m.maintenance_notify(t.at(1), false);
    let a = t.ev(100, hb(HotStandby));
    assert_eq!(t.state(), InMaintenance);
    assert!(!a.contains(&Action::SendMaintenanceCancel));
}

//! Deciding that the partner is gone or must not be trusted (unacked
//! clients, interruption, clock skew, rejected updates) and what a
//! failover then serves.

use super::*;
use crate::config::ha::Role;

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

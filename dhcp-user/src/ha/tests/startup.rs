//! Bringing a pair up: the first sync (as a Kea capture shows it), its
//! retries, and the `state-machine` pauses on the way.

use super::*;

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

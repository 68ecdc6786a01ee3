//! `ha-maintenance-*` on both sides of a pair, and the planned stop built
//! on it (handover, restart before the partner noticed).

use super::*;
use crate::ha::handover::{self, Handover};

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

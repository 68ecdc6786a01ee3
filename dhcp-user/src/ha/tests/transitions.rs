//! Kea 2.2's transition table, state by state: one row per (mode, role,
//! state, partner seen) with the state it leads to, plus the cases a row
//! cannot express.

use super::*;
use crate::config::ha::HaMode;

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

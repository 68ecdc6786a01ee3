//! Lease updates to the partner (plans, unsent count, the
//! communication-recovery backlog) and the partner's `dhcp-disable` around
//! a sync.

use super::*;

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

//! Lease caching (`cache-threshold`, `cache-max-age`): when a renewal
//! is answered with the lease as it stands, unwritten.

use super::*;

#[test]
fn lease_caching_reuses_an_unchanged_lease_inside_the_threshold() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "renew-timer": 300, "rebind-timer": 800, "cache-threshold": 0.25,
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let a = w.dora(M1);
    let lease_time = |d: &Decision| match d
        .reply
        .as_ref()
        .unwrap()
        .0
        .opts()
        .get(OptionCode::AddressLeaseTime)
    {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        other => panic!("{other:?}"),
    };
    let timers = |d: &Decision| {
        let o = d.reply.as_ref().unwrap().0.opts();
        (
            o.contains(OptionCode::Renewal),
            o.contains(OptionCode::Rebinding),
        )
    };
    // 200 s later (≤ 25 % of 1000): the same lease, 800 s left, no write.
    w.now += 200;
    let d = w.request(M1, a);
    assert_eq!(
        (kind(&d), lease_time(&d), d.write.as_ref()),
        (Some(v4::MessageType::Ack), 800, None)
    );
    // T2 (800) is not below what is left, so only T1 goes out (Kea's setTeeTimes).
    assert_eq!(timers(&d), (true, false));
    // A DISCOVER from the same client is offered what is left, too.
    let d = w.send(&pkt(v4::MessageType::Discover, M1));
    assert_eq!(lease_time(&d), 800);
    // Past the threshold: a fresh lease, written.
    w.now += 100;
    let d = w.request(M1, a);
    assert_eq!(lease_time(&d), 1000);
    assert!(d.write.is_some());
    assert_eq!(timers(&d), (true, true));
}

#[test]
fn lease_caching_honours_max_age_and_refuses_changed_leases() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "cache-max-age": 50,
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let a = w.dora(M1);
    w.now += 40;
    assert!(
        w.request(M1, a).write.is_none(),
        "40 s old, max age 50: reused"
    );
    w.now += 20;
    assert!(w.request(M1, a).write.is_some(), "60 s old: renewed");
    // A new hostname is a change: never reused.
    w.now += 1;
    let mut r = pkt(v4::MessageType::Request, M1);
    r.ciaddr = a;
    let mut req = r.build();
    req.hostname = Some("renamed".into());
    let subnet = w.policy.subnet(1);
    let d = decide(
        &req,
        subnet,
        &w.policy,
        &w.store,
        &mut w.alloc,
        Ctx { now: w.now, server_id: SID, on_link: true },
    );
    assert!(d.write.is_some());
}

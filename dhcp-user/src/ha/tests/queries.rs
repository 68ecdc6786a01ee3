//! What the machine reports without moving: state names, scope names,
//! `status-get`, heartbeat switch.

use super::*;

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

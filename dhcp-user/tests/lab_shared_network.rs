//! A Kea shared network served with real dhclient clients in the `venus`
//! lab (xdhcpd alone in lobezno, XDP attached): the LAN's subnet, cut down
//! to a one-address pool, shares the link with a second subnet; when the
//! first pool is exhausted the next client is served from the second, as
//! Kea does, and mutante3 keeps its reservation. Root and the lab's tools
//! are required (CI has both).

mod common;

use std::net::Ipv4Addr;

use common::{T, Xdhcpd};
use lab::{KeaConfig, Lab, venus};
use serde_json::json;

const FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 100);
const SECOND_POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 77, 0, 10), Ipv4Addr::new(10, 77, 0, 20));

/// Lobezno's venus config without HA, its subnet moved into a shared
/// network `venus-lan` next to 10.77.0.0/24 (subnet 77).
fn config() -> KeaConfig {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    let mut lan = cfg.value()["Dhcp4"]["subnet4"][0].clone();
    lan["pools"] = json!([{ "pool": format!("{FIRST}-{FIRST}") }]);
    let second = json!({
        "id": 77,
        "subnet": "10.77.0.0/24",
        "pools": [ { "pool": format!("{}-{}", SECOND_POOL.0, SECOND_POOL.1) } ],
        "option-data": [ { "name": "routers", "data": "10.77.0.1" } ]
    });
    cfg.set("/Dhcp4/subnet4", json!([])).unwrap();
    cfg.set(
        "/Dhcp4/shared-networks",
        json!([{ "name": "venus-lan", "interface": "eth0", "subnet4": [lan, second] }]),
    )
    .unwrap();
    cfg
}

#[test]
fn exhausted_first_subnet_falls_through_to_the_second() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(), &[]);

    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let first = m1.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    assert_eq!(first.address, FIRST);

    // The only address of the first pool is taken: the next client gets one
    // of the second subnet, with that subnet's router.
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    let second = m2.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    assert!((SECOND_POOL.0..=SECOND_POOL.1).contains(&second.address), "{second:?}");
    assert_eq!(second.routers, vec![Ipv4Addr::new(10, 77, 0, 1)], "{second:?}");

    // The reservation in the first subnet still wins for mutante3.
    let m3 = lab.dhclient(&venus::client(3)).unwrap();
    assert_eq!(m3.obtain(T).unwrap().address, venus::RESERVED_ADDR);

    // Each lease is stored with its own subnet id.
    let subnet_of = |a: Ipv4Addr| server.last_row(a).map(|r| r[5].clone());
    assert_eq!(subnet_of(first.address).as_deref(), Some("1"), "{:?}", server.rows());
    assert_eq!(subnet_of(second.address).as_deref(), Some("77"), "{:?}", server.rows());

    // The first client leaves: its address is the first subnet's again.
    m1.release(T).unwrap();
    drop(m2);
    let m4 = lab.dhclient(&venus::client(1)).unwrap();
    assert_eq!(m4.obtain(T).unwrap().address, FIRST);
    server.stop();
}

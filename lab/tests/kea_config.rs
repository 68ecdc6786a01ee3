//! The venus Kea configs are real Kea configs: `kea-dhcp4 -t` accepts the
//! checked-in files and what the lab renders from them per test.

use lab::kea::check_config_file;
use lab::venus;

#[test]
fn checked_in_venus_configs_pass_kea_check() {
    for server in venus::SERVERS {
        check_config_file(&venus::kea_config_path(server)).unwrap();
    }
}

#[test]
fn rendered_configs_pass_kea_check() {
    let dir = tempfile::tempdir().unwrap();
    for server in venus::SERVERS {
        let mut c = venus::kea_config(server).unwrap();
        c.lease_file(&dir.path().join(format!("{server}-leases4.csv"))).unwrap();
        c.peer_url(venus::STANDBY, "http://192.168.51.3:8001/").unwrap();
        let path = dir.path().join(format!("{server}.json"));
        c.write(&path).unwrap();
        check_config_file(&path).unwrap();
        c.without_ha().unwrap();
        c.write(&path).unwrap();
        check_config_file(&path).unwrap();
    }
}

#[test]
fn the_check_really_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = venus::kea_config(venus::PRIMARY).unwrap();
    // A pool outside its subnet is valid JSON that Kea must refuse.
    c.set("/Dhcp4/subnet4/0/pools/0/pool", serde_json::json!("10.0.0.1-10.0.0.9")).unwrap();
    let path = dir.path().join("bad.json");
    c.write(&path).unwrap();
    let err = check_config_file(&path).unwrap_err();
    assert!(format!("{err:#}").contains("rejected"), "{err:#}");
}

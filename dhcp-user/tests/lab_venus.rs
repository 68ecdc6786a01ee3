//! End to end in the `venus` lab: xdhcpd alone in lobezno (no HA), real
//! dhclient clients. Root and the lab's tools are required (CI has both).

use std::{net::Ipv4Addr, time::Duration};

use lab::{Lab, process::Process, venus};

const T: Duration = Duration::from_secs(15);

/// Starts xdhcpd in lobezno with the checked-in venus config minus HA and
/// with a per-lab lease file; returns the process and the lease file path.
fn start_xdhcpd(lab: &Lab, extra: &[&str]) -> (Process, std::path::PathBuf) {
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let leases = dir.join("leases4.csv");
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap().lease_file(&leases).unwrap();
    let path = dir.join("xdhcpd.json");
    cfg.write(&path).unwrap();
    let mut argv = vec![env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", path.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let mut p = lab.spawn(venus::PRIMARY, "xdhcpd", &argv).unwrap();
    p.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
    (p, leases)
}

fn stored(leases: &std::path::Path) -> String {
    std::fs::read_to_string(leases).unwrap_or_default()
}

#[test]
fn reservation_pool_renew_release() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut server, leases) = start_xdhcpd(&lab, &[]);

    // mutante3 gets its reserved address, with the reserved hostname.
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    let lease = m3.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert_eq!(lease.address, venus::RESERVED_ADDR, "{lease:?}");
    assert_eq!(lease.server_id, venus::PRIMARY_LAN);
    assert_eq!(lease.lease_time, venus::LEASE_TIME);
    assert_eq!((lease.renewal_time, lease.rebinding_time), (Some(30), Some(45)));
    assert_eq!(lease.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(lease.routers, [Ipv4Addr::new(192, 168, 50, 1)]);
    assert_eq!(lease.dns_servers, [venus::PRIMARY_LAN, venus::STANDBY_LAN]);
    assert_eq!(lease.domain_name.as_deref(), Some("venus.test"));
    assert_eq!(lease.host_name.as_deref(), Some("mutante3"));
    assert!(stored(&leases).contains("192.168.50.33,02:00:00:00:00:03"), "{}", stored(&leases));

    // Two other clients get distinct pool addresses.
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    let l2 = m2.obtain(T).unwrap();
    assert!(venus::in_pool(l1.address) && venus::in_pool(l2.address), "{l1:?} {l2:?}");
    assert_ne!(l1.address, l2.address);

    // Renewal (dhclient -1 again: INIT-REBOOT, then the unicast path) keeps it.
    let again = m1.renew(T).unwrap();
    assert_eq!(again.address, l1.address);

    // Release: the lease is removed from the store (Kea writes a row with
    // valid_lifetime 0), and the address is offered again.
    m1.release(T).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let text = stored(&leases);
    let last_row = text.lines().filter(|l| l.starts_with(&format!("{},", l1.address))).last().unwrap().to_owned();
    assert!(last_row.split(',').nth(3) == Some("0"), "release not stored: {last_row}");

    server.stop(T).unwrap();
    let log = server.log();
    eprintln!("--- xdhcpd log ---\n{log}");
    assert!(log.contains("attach mode: native XDP on eth0"), "{log}");
}

#[test]
fn leases_survive_a_restart() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (mut server, _leases) = start_xdhcpd(&lab, &["--no-xdp"]);
    assert!(server.log().contains("userspace-only (--no-xdp)"), "{}", server.log());
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    server.kill().unwrap();
    let (_server, _) = start_xdhcpd(&lab, &["--no-xdp"]);
    // A different client must not get mutante1's address…
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    assert_ne!(m2.obtain(T).unwrap().address, l1.address);
    // …and mutante1 keeps it.
    assert_eq!(m1.renew(T).unwrap().address, l1.address);
}

/// SIGTERM and SIGINT each stop a serving xdhcpd (XDP attached, a lease
/// held) cleanly within 5 s, as Kea's `keactrl stop` and systemd expect.
#[test]
fn sigterm_and_sigint_stop_within_five_seconds() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let (mut server, _leases) = start_xdhcpd(&lab, &[]);
        lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
        let asked = std::time::Instant::now();
        server.signal(signal).unwrap();
        let status = loop {
            if let Some(s) = server.try_status().unwrap() {
                break s;
            }
            assert!(asked.elapsed() < Duration::from_secs(5), "still running 5 s after signal {signal}:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "signal {signal}: exited {status}\n{}", server.log());
    }
}

//! The XDP attachment's life cycle in the venus lab: the program is
//! attached through a BPF link owned by xdhcpd, so it disappears with the
//! process — also after SIGKILL, when no cleanup code runs — and never
//! keeps answering from stale maps; and `dhcp-disable` stops the kernel
//! from answering just as it stops the daemon.

use std::time::Duration;

use lab::{Lab, venus};

const T: Duration = Duration::from_secs(15);

fn xdp_attached(lab: &Lab) -> bool {
    let out = lab.run(venus::PRIMARY, &["ip", "-d", "link", "show", "dev", "eth0"]).unwrap().stdout;
    out.contains("prog/xdp")
}

fn start(lab: &Lab, short_timers: bool) -> lab::process::Process {
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap().lease_file(&dir.join("leases4.csv")).unwrap();
    if short_timers {
        cfg.set("/Dhcp4/renew-timer", 1.into()).unwrap();
        cfg.set("/Dhcp4/rebind-timer", 2.into()).unwrap();
        cfg.set("/Dhcp4/valid-lifetime", 30.into()).unwrap();
    }
    let path = dir.join("xdhcpd.json");
    cfg.write(&path).unwrap();
    let mut p = lab.spawn(venus::PRIMARY, "xdhcpd", &[env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", path.to_str().unwrap()]).unwrap();
    p.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
    p
}

fn command(lab: &Lab, json: &str) -> String {
    lab.run(venus::PRIMARY, &["curl", "-sS", "--max-time", "5", "-H", "Content-Type: application/json", "-d", json, &format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR)])
        .unwrap()
        .stdout
}

fn counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find(&format!("({name}, ")).unwrap_or_else(|| panic!("{name} not in {line}"));
    line[at + name.len() + 3..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn the_program_goes_with_the_process_even_after_sigkill() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    assert!(!xdp_attached(&lab));
    let mut p = start(&lab, false);
    assert!(xdp_attached(&lab), "attached while running");
    p.stop(T).unwrap();
    assert!(!xdp_attached(&lab), "detached after a graceful stop");
    let mut p = start(&lab, false);
    assert!(xdp_attached(&lab));
    p.kill().unwrap();
    // The kernel releases the link when the last descriptor closes with the
    // dying process; allow it a moment.
    lab::wait_until("the XDP link to go", Duration::from_secs(5), || Ok((!xdp_attached(&lab)).then_some(()))).unwrap();
    // A client is then answered by a fresh daemon, not by a stale program.
    let _p = start(&lab, false);
    let lease = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap();
    assert!(venus::in_pool(lease.address));
}

#[test]
fn dhcp_disable_stops_the_kernel_too() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = start(&lab, true);
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    assert_eq!(m1.wait_renewal(T).unwrap().address, l1.address, "renewed while enabled");

    let answer = command(&lab, r#"{"command": "dhcp-disable", "service": ["dhcp4"]}"#);
    assert!(answer.contains("\"result\": 0") || answer.contains("\"result\":0"), "{answer}");
    // T1 is 1 s: several renewal attempts come and none may be answered.
    assert!(m1.wait_renewal(Duration::from_secs(4)).is_err(), "renewed while disabled:\n{}", server.log());

    let answer = command(&lab, r#"{"command": "dhcp-enable", "service": ["dhcp4"]}"#);
    assert!(answer.contains("enabled"), "{answer}");
    assert_eq!(m1.wait_renewal(T).unwrap().address, l1.address, "renewed again after dhcp-enable");

    server.stop(T).unwrap();
    let log = server.log();
    assert!(counter(&log, "AnsweredAck") >= 2, "renewals before and after were the kernel's:\n{log}");
    assert!(counter(&log, "PassedNotServing") >= 1, "while disabled the kernel passed them:\n{log}");
}

//! The lab's own promises: the layout and network rules, idempotent
//! up/down, captures, link cuts, bounded commands, process control, and
//! labs side by side.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proc_state;
use lab::{Lab, venus};

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `from` can resolve `to` over L2: flush the neighbour cache, send
/// one UDP datagram (bash's /dev/udp: no ping on this machine), then wait
/// for an ARP answer. A miss costs `patience`.
fn reaches(lab: &Lab, from: &str, to: &str, patience: Duration) -> bool {
    lab.run(from, &["ip", "neigh", "flush", "all"]).unwrap();
    lab.run(from, &["bash", "-c", &format!("echo probe > /dev/udp/{to}/9")]).unwrap();
    lab::wait_until("ARP answer", patience, || {
        let neigh = lab.run(from, &["ip", "neigh", "show", to]).unwrap().stdout;
        Ok(neigh.contains("lladdr").then_some(()))
    })
    .is_ok()
}

#[test]
fn layout_follows_the_network_rules() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    assert_eq!(lab.namespaces().len(), 7);
    for ns in lab.namespaces() {
        assert!(ns.starts_with(&format!("{}-", lab.id())), "{ns}");
        assert!(std::path::Path::new("/run/netns").join(ns).exists(), "{ns}");
    }
    assert!(common::root_links(&lab.switch_links()).is_empty(), "lab links in the root namespace");

    // Bridges: in switch namespaces, forwarding at once; ports with GRO.
    for (seg, ports) in [
        (venus::LAN, vec!["lobezno", "tormenta", "mutante1", "mutante2", "mutante3"]),
        (venus::HA, vec!["lobezno", "tormenta"]),
    ] {
        let sw = format!("{}-sw-{seg}", lab.id());
        let br = sh(&["ip", "-n", &sw, "-d", "link", "show", &format!("xbr-{seg}")]);
        for want in ["forward_delay 0 ", "stp_state 0 ", "mcast_snooping 0 "] {
            assert!(br.contains(want), "{seg}: no {want:?} in\n{br}");
        }
        let members = sh(&["ip", "-n", &sw, "-o", "link", "show", "master", &format!("xbr-{seg}")]);
        assert_eq!(members.lines().count(), ports.len(), "{members}");
        for host in ports {
            let port = format!("xp-{host}");
            assert!(members.contains(&format!(" {port}@")), "{port} not on xbr-{seg}");
            let k = sh(&["ip", "netns", "exec", &sw, "ethtool", "-k", &port]);
            assert!(k.contains("generic-receive-offload: on"), "{port}: GRO off");
        }
    }

    // Hosts: ethN names, static addresses on servers only, fixed MACs, no
    // route beyond the connected ones, IPv6 off.
    assert_eq!(lab.addresses("lobezno", "eth0").unwrap(), ["192.168.50.2/24".parse().unwrap()]);
    assert_eq!(lab.addresses("lobezno", "eth1").unwrap(), ["192.168.51.2/24".parse().unwrap()]);
    assert_eq!(lab.addresses("tormenta", "eth1").unwrap(), ["192.168.51.3/24".parse().unwrap()]);
    assert!(lab.addresses("mutante2", "eth0").unwrap().is_empty());
    let link = lab.run("mutante3", &["ip", "-o", "link", "show", "eth0"]).unwrap().stdout;
    assert!(link.contains("link/ether 02:00:00:00:00:03 "), "{link}");
    assert!(lab.run("mutante3", &["ip", "link", "show", "eth1"]).is_err(), "clients are on the LAN only");
    for host in ["lobezno", "tormenta", "mutante1", "mutante2", "mutante3"] {
        let routes = lab.run(host, &["ip", "-4", "route", "show", "table", "all", "type", "unicast"]).unwrap().stdout;
        assert!(!routes.contains("default"), "{host}: {routes}");
        let v6 = lab.run(host, &["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"]).unwrap().stdout;
        assert_eq!(v6.trim(), "1", "{host}: IPv6 on");
    }
    let routes = lab.run("lobezno", &["ip", "-4", "route", "show"]).unwrap().stdout;
    assert_eq!(routes.lines().count(), 2, "{routes}");
    assert_eq!(lab.iface("tormenta", venus::HA).unwrap(), "eth1");
    assert!(lab.iface("mutante1", venus::HA).is_err());
}

#[test]
fn up_and_down_are_idempotent() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    lab.ensure_up().unwrap();
    assert!(lab.is_up());
    lab.down().unwrap();
    lab.down().unwrap();
    assert!(!lab.is_up());
    assert!(common::leftovers(lab.id(), &lab.switch_links()).is_empty());
    assert!(lab.run("lobezno", &["true"]).is_err(), "commands must refuse a lab that is down");
    lab.ensure_up().unwrap();
    lab.ensure_up().unwrap();
    assert!(reaches(&lab, "lobezno", "192.168.51.3", Duration::from_secs(2)));
}

#[test]
fn capture_sees_traffic_and_a_cut_link_stops_it() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let cap = lab.capture("tormenta", "eth1", &["udp", "port", "9"]).unwrap();
    lab.run("lobezno", &["bash", "-c", "echo hello > /dev/udp/192.168.51.3/9"]).unwrap();
    let pcap = lab::wait_until("datagram captured", Duration::from_secs(5), || {
        Ok((std::fs::metadata(lab.dir().join("tormenta/capture-eth1-0.pcap"))?.len() > 24).then_some(()))
    })
    .and_then(|()| cap.stop())
    .unwrap();
    let text = pcap.text().unwrap();
    assert!(text.contains("02:00:00:00:51:02 > 02:00:00:00:51:03"), "{text}");
    assert!(text.contains("192.168.51.2.") && text.contains("> 192.168.51.3.9:"), "{text}");

    // A capture on the bridge sees every port's frames.
    let seg = lab.capture_segment(venus::LAN, &["arp"]).unwrap();
    assert!(reaches(&lab, "tormenta", "192.168.50.2", Duration::from_secs(2)));
    let text = seg.stop().unwrap().text().unwrap();
    assert!(text.contains("Request who-has 192.168.50.2 tell 192.168.50.3"), "{text}");
    assert!(text.contains("Reply 192.168.50.2 is-at 02:00:00:00:50:02"), "{text}");
    assert!(lab.capture_segment("nowhere", &[]).is_err());

    // Cutting lobezno's HA link parts the servers there, not on the LAN.
    lab.cut_link("lobezno", venus::HA).unwrap();
    assert!(!reaches(&lab, "lobezno", "192.168.51.3", Duration::from_millis(800)));
    assert!(reaches(&lab, "lobezno", "192.168.50.3", Duration::from_secs(2)));
    let carrier = lab.run("lobezno", &["cat", "/sys/class/net/eth1/carrier"]).unwrap().stdout;
    assert_eq!(carrier.trim(), "0");
    lab.restore_link("lobezno", venus::HA).unwrap();
    assert!(reaches(&lab, "lobezno", "192.168.51.3", Duration::from_secs(2)));
    assert!(lab.cut_link("mutante1", venus::HA).is_err());
}

#[test]
fn commands_are_bounded_and_processes_controllable() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let start = Instant::now();
    let err = lab.cmd("mutante1", "sleep").arg("30").timeout(Duration::from_millis(200)).output().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3), "{err:#}");
    let err = lab.run("mutante1", &["sh", "-c", "echo nope >&2; exit 4"]).unwrap_err();
    assert!(format!("{err:#}").contains("nope"), "{err:#}");
    assert!(lab.run("nobody", &["true"]).is_err());
    let out = lab.cmd("mutante2", "sh").args(["-c", "echo $X"]).env("X", "42").output().unwrap();
    assert_eq!(out.stdout, "42\n");

    let mut p = lab.spawn("lobezno", "talker", &["sh", "-c", "echo hello; exec sleep 60"]).unwrap();
    p.wait_for_log("hello", Duration::from_secs(5)).unwrap();
    p.pause().unwrap();
    lab::wait_until("stopped", Duration::from_secs(2), || Ok((proc_state(p.pid()) == Some('T')).then_some(())))
        .unwrap();
    p.resume().unwrap();
    lab::wait_until("running", Duration::from_secs(2), || Ok((proc_state(p.pid()) != Some('T')).then_some(())))
        .unwrap();
    p.pause().unwrap();
    // stop() thaws a frozen process so it can act on SIGTERM.
    assert_eq!(p.stop(Duration::from_secs(2)).unwrap().signal(), Some(libc::SIGTERM));
    assert!(p.signal(libc::SIGTERM).is_err(), "signalling an exited process is an error");

    let mut stubborn =
        lab.spawn("lobezno", "stubborn", &["sh", "-c", "trap '' TERM; echo armed; while :; do sleep 1; done"]).unwrap();
    stubborn.wait_for_log("armed", Duration::from_secs(5)).unwrap();
    let t = Instant::now();
    assert_eq!(stubborn.stop(Duration::from_millis(300)).unwrap().signal(), Some(libc::SIGKILL));
    assert!(t.elapsed() < Duration::from_secs(3));

    let mut quitter = lab.spawn("lobezno", "quitter", &["sh", "-c", "exit 7"]).unwrap();
    let err = quitter.wait_for_log("never", Duration::from_secs(5)).unwrap_err();
    assert!(format!("{err:#}").contains("exited"), "{err:#}");

    // Pinning: what starts in the host runs on the CPUs given, in its own
    // namespace still, and the pid a spawn reports is the program's.
    let allowed = |host: &str| {
        let status = lab.run(host, &["cat", "/proc/self/status"]).unwrap().stdout;
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_owned()
    };
    let everything = allowed("mutante1");
    lab.pin("mutante1", Some(&[0])).unwrap();
    assert_eq!(allowed("mutante1"), "0");
    assert_eq!(allowed("mutante2"), everything, "only the pinned host");
    let ns_inode = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let mut pinned = lab.spawn("mutante1", "pinned", &["sh", "-c", "echo up; exec sleep 60"]).unwrap();
    pinned.wait_for_log("up", Duration::from_secs(5)).unwrap();
    // "up" is printed by sh just before it execs sleep in the same pid, so the
    // pid may still show sh for a moment: wait for the exec, bounded.
    let status_of = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    lab::wait_until("the spawned pid to exec sleep", Duration::from_secs(2), || {
        Ok(status_of(pinned.pid()).lines().any(|l| l == "Name:\tsleep").then_some(()))
    })
    .unwrap_or_else(|e| panic!("the spawned pid is the program's: {e:#}\n{}", status_of(pinned.pid())));
    let status = status_of(pinned.pid());
    assert!(status.lines().any(|l| l == "Cpus_allowed_list:\t0"), "{status}");
    let own = lab.run("mutante1", &["readlink", "/proc/self/ns/net"]).unwrap().stdout;
    assert_eq!(ns_inode(&pinned.pid().to_string()).to_string_lossy(), own.trim());
    pinned.stop(Duration::from_secs(2)).unwrap();
    assert!(lab.pin("mutante1", Some(&[])).is_err());
    assert!(lab.pin("nobody", Some(&[0])).is_err());
    lab.pin("mutante1", None).unwrap();
    assert_eq!(allowed("mutante1"), everything);
}

#[test]
fn labs_side_by_side_do_not_collide() {
    let labs: Vec<Lab> = std::thread::scope(|s| {
        let a = s.spawn(|| Lab::up(venus::topology(3).unwrap()).unwrap());
        let b = s.spawn(|| Lab::up(venus::topology(4).unwrap()).unwrap());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_ne!(labs[0].id(), labs[1].id());
    for lab in &labs {
        // Same addresses in both, each lab its own wire.
        assert!(reaches(lab, "tormenta", "192.168.50.2", Duration::from_secs(2)));
    }
    // Broadcasts stay in their own lab: each lab ARPs for a different
    // absent address; lab 1's client sees only lab 1's request.
    let cap = labs[1].capture("mutante4", "eth0", &["arp"]).unwrap();
    assert!(!reaches(&labs[0], "lobezno", "192.168.50.77", Duration::from_millis(300)));
    assert!(!reaches(&labs[1], "lobezno", "192.168.50.88", Duration::from_millis(300)));
    let text = cap.stop().unwrap().text().unwrap();
    assert!(text.contains("who-has 192.168.50.88"), "{text}");
    assert!(!text.contains("192.168.50.77"), "traffic crossed labs:\n{text}");
}

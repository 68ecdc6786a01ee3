//! The packaged service's privileges, in the venus lab: xdhcpd run as an unprivileged user
//! (`nobody`) with exactly the capabilities `packaging/xdhcpd.service` grants (`setpriv`, as
//! systemd's `AmbientCapabilities` + `CapabilityBoundingSet` + `NoNewPrivileges` would) serves
//! a real dhclient with its XDP program attached, the kernel answering its renewals; and without
//! any one of those capabilities it fails to start or loses its XDP program, so the unit asks
//! for none it does not use.

use std::{os::unix::fs::PermissionsExt as _, path::Path, time::Duration};

use lab::{Lab, venus};

const T: Duration = Duration::from_secs(15);
/// `nobody`: no privilege but the capabilities handed to it.
const UID: u32 = 65534;

/// The unit's `AmbientCapabilities`, checked equal to its `CapabilityBoundingSet`.
fn unit_caps() -> Vec<String> {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/xdhcpd.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let list = |key: &str| -> Vec<String> {
        let line = text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in the unit"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let caps = list("AmbientCapabilities=");
    assert_eq!(caps, list("CapabilityBoundingSet="), "a capability the daemon cannot use, or one it cannot get");
    assert!(text.contains("\nNoNewPrivileges=yes\n"));
    caps
}

/// `setpriv` arguments running the rest as `nobody` with exactly `caps` (permitted, effective,
/// inheritable, ambient and bounding) and no way to gain more.
fn setpriv(caps: &[String]) -> Vec<String> {
    let mut set = vec!["-all".to_owned()];
    set.extend(caps.iter().map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase())));
    let set = set.join(",");
    vec![
        "setpriv".into(),
        format!("--reuid={UID}"),
        format!("--regid={UID}"),
        "--clear-groups".into(),
        "--no-new-privs".into(),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
        format!("--bounding-set={set}"),
    ]
}

/// The bit of each capability in /proc/PID/status masks (linux/capability.h).
fn cap_bit(name: &str) -> u64 {
    let n = match name {
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_ADMIN" => 21,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("add {other}'s number"),
    };
    1 << n
}

/// A lab with lobezno's config (no HA, short timers so dhclient renews within the test) in a
/// directory `nobody` may write its lease file to.
fn lab_and_config() -> (Lab, String) {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(UID), Some(UID)).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha()
        .unwrap()
        .lease_file(&state.join("leases4.csv"))
        .unwrap()
        .short_timers()
        .unwrap();
    let path = dir.join("xdhcpd.json");
    cfg.write(&path).unwrap();
    (lab, path.to_str().unwrap().to_owned())
}

/// Starts xdhcpd as the unit does (Kea-style `-c FILE`, Kea's pid file in a directory the
/// user may write, as `KEA_PIDFILE_DIR=/run/xdhcp` there) with `caps`.
fn start(lab: &Lab, name: &str, caps: &[String], config: &str) -> lab::Process {
    let argv = setpriv(caps);
    let state = Path::new(config).with_file_name("state");
    lab.cmd(venus::PRIMARY, &argv[0])
        .args(&argv[1..])
        .args([env!("CARGO_BIN_EXE_xdhcpd"), "-c", config])
        .env("KEA_PIDFILE_DIR", state)
        .spawn(name)
        .unwrap()
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_else(|| panic!("no {field}")).trim().to_owned()
}

#[test]
fn the_units_capabilities_serve_a_client_over_xdp_as_an_unprivileged_user() {
    let caps = unit_caps();
    let (lab, config) = lab_and_config();
    let mut server = start(&lab, "xdhcpd", &caps, &config);
    server.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}"));
    let log = server.log();
    assert!(log.contains("attach mode: native XDP on eth0") || log.contains("attach mode: generic (skb) XDP on eth0"), "{log}");
    // The daemon itself: nobody, with the unit's capabilities and nothing else.
    let pid = server.pid();
    assert_eq!(status_field(pid, "Name:"), "xdhcpd");
    assert_eq!(status_field(pid, "Uid:").split_whitespace().collect::<Vec<_>>(), ["65534"; 4]);
    let want: u64 = caps.iter().map(|c| cap_bit(c)).sum();
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(u64::from_str_radix(&status_field(pid, set), 16).unwrap(), want, "{set}");
    }
    assert_eq!(want & cap_bit("CAP_SYS_ADMIN"), 0);
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");

    let client = lab.dhclient(&venus::client(1)).unwrap();
    let lease = client.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert!((venus::POOL_FIRST..=venus::POOL_LAST).contains(&lease.address), "{lease:?}");
    for _ in 0..2 {
        let r = client.wait_renewal(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
        assert_eq!(r.address, lease.address);
    }
    server.stop(T).unwrap();
    let log = server.log();
    let counters = log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters:\n{log}"));
    let acks: u64 = counters.split("(AnsweredAck, ").nth(1).and_then(|s| s.split(')').next()).unwrap().parse().unwrap();
    assert!(acks >= 2, "the kernel answered the renewals: {counters}");
    // The lease file is the unprivileged daemon's.
    let leases = Path::new(&config).with_file_name("state/leases4.csv");
    let text = std::fs::read_to_string(&leases).unwrap();
    assert!(text.lines().any(|l| l.starts_with(&format!("{},", lease.address))), "{text}");
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&leases).unwrap().uid(), UID);
}

#[test]
fn without_any_one_of_them_xdhcpd_fails_or_loses_xdp() {
    let caps = unit_caps();
    let (lab, config) = lab_and_config();
    for missing in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != missing).cloned().collect();
        let mut server = start(&lab, &format!("xdhcpd-without-{missing}"), &fewer, &config);
        let served = server.wait_for_log("serving", T);
        let log = server.log();
        let lost = match served {
            // Running, but answering everything in userspace.
            Ok(()) => {
                server.stop(T).unwrap();
                log.contains("attach mode: userspace-only")
            }
            Err(_) => log.contains("DHCP4_INIT_FAIL"),
        };
        assert!(lost, "without {missing} xdhcpd still serves over XDP, so the unit need not grant it:\n{log}");
        eprintln!("without {missing}: {}", log.lines().find(|l| l.contains("userspace-only") || l.contains("INIT_FAIL")).unwrap());
    }
}

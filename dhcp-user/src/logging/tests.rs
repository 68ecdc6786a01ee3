use super::*;
use crate::config::loggers::Output as Conf;

fn file_logger(name: &str, severity: Severity, debuglevel: u8, path: &std::path::Path) -> Logger {
    Logger {
        name: name.into(),
        severity,
        debuglevel,
        outputs: vec![Conf {
            destination: Destination::File(path.to_owned()),
            flush: true,
            maxsize: 0,
            maxver: 1,
            pattern: Some("%-5p [%c] %m\n".into()),
        }],
    }
}

/// A subscriber with only the Kea layer, configured with `loggers`.
fn with_loggers(loggers: &[Logger], f: impl FnOnce()) {
    let shared = Shared::default();
    let handle = Handle { shared: shared.clone(), rust_log: false };
    let sub = tracing_subscriber::registry()
        .with(KeaLayer { shared: shared.clone() }.with_filter(KeaFilter { shared: shared.clone() }));
    tracing::subscriber::with_default(sub, || {
        handle.configure(loggers).unwrap();
        f();
        handle.flush();
    });
}

#[test]
fn names_map_to_kea_loggers() {
    assert_eq!(logger_name("kea-dhcp4.dhcpsrv"), "kea-dhcp4.dhcpsrv");
    assert_eq!(logger_name("kea-dhcp4"), "kea-dhcp4");
    assert_eq!(logger_name("dhcp_user::server"), "kea-dhcp4.packets");
    assert_eq!(logger_name("dhcp_user::leases::store"), "kea-dhcp4.leases");
    assert_eq!(logger_name("dhcp_user::core::alloc"), "kea-dhcp4.alloc-engine");
    assert_eq!(logger_name("dhcp_user::peer"), "kea-dhcp4.ha-hooks");
    assert_eq!(logger_name("dhcp_user::api::commands"), "kea-dhcp4.commands");
    assert_eq!(logger_name("dhcp_user::config"), "kea-dhcp4.dhcpsrv");
    assert_eq!(logger_name("dhcp_user::daemon"), "kea-dhcp4.dhcp4");
    assert_eq!(logger_name("xdhcpd"), "kea-dhcp4.dhcp4");
    assert_eq!(logger_name("kea-dhcp4x"), "kea-dhcp4.dhcp4");
}

#[test]
fn severity_and_debuglevel() {
    assert!(passes(Severity::Info, 0, Severity::Info, 0));
    assert!(passes(Severity::Info, 0, Severity::Error, 0));
    assert!(!passes(Severity::Info, 99, Severity::Debug, 0));
    assert!(passes(Severity::Debug, 10, Severity::Debug, 10));
    assert!(!passes(Severity::Debug, 10, Severity::Debug, 55));
    assert!(!passes(Severity::None, 0, Severity::Fatal, 0));
    assert!(!passes(Severity::Debug, 99, Severity::None, 0));
}

#[test]
fn children_inherit_and_are_not_additive() {
    let dir = tempfile::tempdir().unwrap();
    let (root, packets) = (dir.path().join("root.log"), dir.path().join("packets.log"));
    let loggers = [
        file_logger("kea-dhcp4", Severity::Info, 0, &root),
        file_logger("kea-dhcp4.packets", Severity::Debug, 99, &packets),
    ];
    with_loggers(&loggers, || {
        tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_STARTED", "Kea DHCPv4 server version {} started", "0.1.0");
        tracing::debug!(target: "kea-dhcp4.dhcp4", "not at INFO");
        tracing::info!(target: "kea-dhcp4.dhcpsrv", iface = "eth0", "inherits from the root");
        tracing::trace!(target: "dhcp_user::server", "a packet");
        tracing::debug!(target: "kea-dhcp4.packets", debuglevel = 40u64, "at 40");
    });
    assert_eq!(
        std::fs::read_to_string(&root).unwrap(),
        "INFO  [kea-dhcp4.dhcp4] DHCP4_STARTED Kea DHCPv4 server version 0.1.0 started\n\
         INFO  [kea-dhcp4.dhcpsrv] inherits from the root iface=eth0\n"
    );
    assert_eq!(
        std::fs::read_to_string(&packets).unwrap(),
        "DEBUG [kea-dhcp4.packets] a packet\nDEBUG [kea-dhcp4.packets] at 40\n"
    );
}

#[test]
fn event_debuglevel_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    with_loggers(&[file_logger("kea-dhcp4", Severity::Debug, 10, &log)], || {
        tracing::debug!(target: "kea-dhcp4.packets", "default 10");
        tracing::trace!(target: "kea-dhcp4.packets", "default 55");
        tracing::trace!(target: "kea-dhcp4.packets", debuglevel = 0u64, "explicit 0");
        tracing::debug!(target: "kea-dhcp4.packets", debuglevel = 50u64, "explicit 50");
    });
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "DEBUG [kea-dhcp4.packets] default 10\nDEBUG [kea-dhcp4.packets] explicit 0\n"
    );
}

#[test]
fn default_pattern_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    let mut l = file_logger("kea-dhcp4", Severity::Info, 0, &log);
    l.outputs[0].pattern = None;
    with_loggers(&[l], || tracing::info!(target: "kea-dhcp4.dhcpsrv", "hello"));
    let text = std::fs::read_to_string(&log).unwrap();
    let pid = std::process::id();
    // 2026-12-03 10:00:00.123 INFO  [kea-dhcp4.dhcpsrv/1234.140…] hello
    assert_eq!(text.as_bytes()[4], b'-');
    assert_eq!(&text[19..20], ".");
    assert!(text[23..].starts_with(&format!(" INFO  [kea-dhcp4.dhcpsrv/{pid}.")), "{text}");
    assert!(text.ends_with("] hello\n"), "{text}");
}

/// Kea: a logger named twice takes the last entry's severity and keeps
/// both entries' outputs (Forge's test_v4_loggers_all_different_levels_*:
/// `options` set to DEBUG, then INFO; `dhcpsrv` to two files).
#[test]
fn a_name_given_twice_takes_the_last_severity_and_both_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("kea.log1"), dir.path().join("kea.log2"));
    let loggers = [
        file_logger("kea-dhcp4.options", Severity::Debug, 99, &one),
        file_logger("kea-dhcp4.options", Severity::Info, 0, &two),
    ];
    with_loggers(&loggers, || {
        tracing::debug!(target: "kea-dhcp4.options", "hidden");
        tracing::info!(target: "kea-dhcp4.options", "shown");
    });
    for log in [&one, &two] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains("hidden") && text.contains("shown"), "{}: {text}", log.display());
    }
}

/// A client's request as the packet path parses it: `chaddr`, option 53
/// `kind`, then `edit` (xid, more options).
fn request(
    chaddr: [u8; 6],
    kind: dhcproto::v4::MessageType,
    edit: impl FnOnce(&mut dhcproto::v4::Message),
) -> crate::dhcp::inbound::Inbound {
    use dhcproto::{Encodable, Encoder, v4};
    let z = std::net::Ipv4Addr::UNSPECIFIED;
    let mut m = v4::Message::new(z, z, z, z, &chaddr);
    m.opts_mut().insert(v4::DhcpOption::MessageType(kind));
    edit(&mut m);
    let mut bytes = Vec::new();
    m.encode(&mut Encoder::new(&mut bytes)).unwrap();
    crate::dhcp::inbound::classify(&bytes).unwrap()
}

/// A broadcast from 0.0.0.0 received on `eth0`.
fn on_eth0() -> crate::core::pipeline::Arrival<'static> {
    crate::core::pipeline::Arrival {
        iface: "eth0",
        iface_addrs: &[],
        server_id: [10, 0, 0, 1].into(),
        from: [0, 0, 0, 0].into(),
        to: None,
    }
}

/// The packet path's Kea lines land in Kea's loggers at Kea's debug
/// levels: `kea-dhcp4.packets` at DEBUG 40 shows DHCP4_PACKET_RECEIVED
/// (level 40) but not DHCP4_SUBNET_SELECTED (level 45).
#[test]
fn packet_lines_honour_keas_debug_levels() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    let req = request([2, 0, 0, 0, 0, 1], dhcproto::v4::MessageType::Discover, |_| {});
    let cfg = crate::config::parse(
        r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "subnet4": [ { "id": 7, "subnet": "10.0.0.0/24" } ] } }"#,
        "t",
    )
    .unwrap();
    let policy = crate::glue::compile(&cfg);
    let at = on_eth0();
    with_loggers(&[file_logger("kea-dhcp4.packets", Severity::Debug, 40, &log)], || {
        crate::core::kea_log::received(&req, &at, policy.subnet(7));
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG [kea-dhcp4.packets] DHCP4_PACKET_RECEIVED [hwtype=1 02:00:00:00:00:01], cid=[no info]"), "{text}");
    assert!(text.contains("DHCPDISCOVER (type 1) received from 0.0.0.0 to 255.255.255.255 on interface eth0"), "{text}");
    assert!(!text.contains("DHCP4_SUBNET_SELECTED"), "{text}");
}

/// A DECLINE for someone else's lease logs Kea's DHCP4_DECLINE_LEASE_MISMATCH
/// with both hardware addresses (operators grep it).
#[test]
fn decline_mismatch_names_both_clients() {
    use dhcproto::v4;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    let req = request([0, 0, 0, 0, 0, 0x22], v4::MessageType::Decline, |m| {
        m.opts_mut().insert(v4::DhcpOption::RequestedIpAddress([192, 168, 50, 1].into()));
    });
    let theirs = crate::leases::Lease::new(
        [192, 168, 50, 1].into(), Some(crate::leases::HwAddr::ethernet([0, 0, 0, 0, 0, 0x11])), None, 1, 4_000_000_000, 60,
    );
    with_loggers(&[file_logger("kea-dhcp4", Severity::Info, 0, &log)], || {
        crate::core::kea_log::decided(&req, None, None, |_| Some(theirs.clone()));
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("Received DHCPDECLINE for addr 192.168.50.1 from client [hwtype=1 00:00:00:00:00:22]")
            && text.contains("but the data doesn't match: received hwaddr: 00:00:00:00:00:22, lease hwaddr: 00:00:00:00:00:11"),
        "{text}"
    );
}

/// Drops log Kea's ids where Kea logs them: a `DROP`-class packet
/// (DHCP4_PACKET_DROP_0010 on `packets`), a foreign server identifier
/// (DROP_0003 on `bad-packets`), HA's not-for-us (`ha-hooks`) and a
/// disabled service (DROP_0008, with Kea's unparsed label); and the HA
/// state transition at INFO on `kea-dhcp4.ha-hooks`.
#[test]
fn drops_and_ha_transitions_carry_keas_ids() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    let req = request([2, 0, 0, 0, 0, 9], dhcproto::v4::MessageType::Request, |m| {
        m.set_xid(0xabc);
    });
    let at = on_eth0();
    let loggers = [file_logger("kea-dhcp4", Severity::Debug, 99, &log)];
    with_loggers(&loggers, || {
        use crate::core::kea_log;
        kea_log::class_drop(&req, &at, kea_log::DropStage::OnReceipt);
        kea_log::foreign_server_id(&req, &at);
        kea_log::not_for_us(&req);
        kea_log::service_disabled(None);
        for (msgid, text) in crate::ha::kea_log::transition(
            crate::ha::state::State::HotStandby,
            crate::ha::state::State::PartnerDown,
            crate::ha::state::PartnerState::Unavailable,
            false,
        ) {
            tracing::info!(target: "kea-dhcp4.ha-hooks", msgid, "{text}");
        }
    });
    let text = std::fs::read_to_string(&log).unwrap();
    for want in [
        "DEBUG [kea-dhcp4.packets] DHCP4_PACKET_DROP_0010 dropped as member of the special class 'DROP': \
         local_address=255.255.255.255:67, remote_address=0.0.0.0:68, msg_type=DHCPREQUEST (3), transid=0xabc",
        "DEBUG [kea-dhcp4.bad-packets] DHCP4_PACKET_DROP_0003 [hwtype=1 02:00:00:00:00:09], cid=[no info], tid=0xabc, \
         from interface eth0: it contains a foreign server identifier",
        "DEBUG [kea-dhcp4.ha-hooks] HA_BUFFER4_RECEIVE_NOT_FOR_US [hwtype=1 02:00:00:00:00:09], cid=[no info], tid=0xabc: \
         dropping query to be processed by another server",
        "DEBUG [kea-dhcp4.bad-packets] DHCP4_PACKET_DROP_0008 [hwtype=1 ], cid=[no info], tid=0x0: DHCP service is globally disabled",
        "INFO  [kea-dhcp4.ha-hooks] HA_STATE_TRANSITION server transitions from HOT-STANDBY to PARTNER-DOWN state, partner state is UNAVAILABLE",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn shutdown_is_logged_as_kea_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kea.log");
    let loggers = [file_logger("kea-dhcp4", Severity::Debug, 99, &log)];
    with_loggers(&loggers, || {
        crate::daemon::lifecycle::shutdown_requested();
        crate::daemon::lifecycle::shut_down("memfile", &["config-get", "shutdown"]);
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().map(|l| l.split_once("] ").map_or(l, |(_, m)| m)).collect();
    assert_eq!(
        lines,
        [
            "DHCP4_COMMAND_RECEIVED received command shutdown, arguments: (none)",
            "DHCP4_SHUTDOWN_REQUEST shutdown of server requested",
            "DHCP4_SHUTDOWN server shutdown",
            "DHCPSRV_CLOSE_DB closing currently open memfile database",
            "COMMAND_DEREGISTERED Command config-get deregistered",
            "COMMAND_DEREGISTERED Command shutdown deregistered",
        ],
        "{text}"
    );
    // At INFO only the shutdown itself.
    let info = dir.path().join("info.log");
    with_loggers(&[file_logger("kea-dhcp4", Severity::Info, 0, &info)], || {
        crate::daemon::lifecycle::shutdown_requested();
        crate::daemon::lifecycle::shut_down("memfile", &["shutdown"]);
    });
    let text = std::fs::read_to_string(&info).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("INFO  [kea-dhcp4.dhcp4"), "{text}");
}

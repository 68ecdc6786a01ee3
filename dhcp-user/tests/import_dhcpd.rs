//! `xdhcpd import-dhcpd` on a realistic dhcpd failover pair (the venus LAN):
//! both outputs load in xdhcpd, pass `kea-dhcp4 -t`, and `xdhcpd check`
//! finds no error between them; the leases import keeps the active leases.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use dhcp_user::config;
use dhcp_user::leases::csv::Schema;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dhcpd")
        .join(name)
}

fn xdhcpd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xdhcpd"))
        .args(args)
        .output()
        .expect("run xdhcpd")
}

/// Imports both peers into `dir`; returns (primary json, secondary json).
fn import_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.to_str().unwrap();
    let p = xdhcpd(&[
        "import-dhcpd",
        "--conf",
        data("lobezno-dhcpd.conf").to_str().unwrap(),
        "--leases",
        data("lobezno-dhcpd.leases").to_str().unwrap(),
        "--out-dir",
        out,
    ]);
    assert!(
        p.status.success(),
        "{}{}",
        String::from_utf8_lossy(&p.stdout),
        String::from_utf8_lossy(&p.stderr)
    );
    let s = xdhcpd(&[
        "import-dhcpd",
        "--conf",
        data("tormenta-dhcpd.conf").to_str().unwrap(),
        "--out-dir",
        out,
    ]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let report = String::from_utf8(p.stdout).unwrap();
    assert_eq!(
        report,
        std::fs::read_to_string(dir.join("venus-primary-import-report.txt")).unwrap()
    );
    (
        dir.join("venus-primary.json"),
        dir.join("venus-secondary.json"),
    )
}

#[test]
fn pair_loads_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (p, s) = import_pair(dir.path());
    for f in [&p, &s] {
        let c = config::load(f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.subnets().len(), 2);
        let lan = c.subnet_containing(Ipv4Addr::new(192, 168, 50, 1)).unwrap();
        assert_eq!(lan.id().0, 1);
        assert_eq!(lan.pools().len(), 1);
        assert_eq!(
            (lan.pools()[0].start(), lan.pools()[0].end()),
            (
                "192.168.50.100".parse().unwrap(),
                "192.168.50.199".parse().unwrap()
            )
        );
        let r = lan
            .reservation_for_hw(&[2, 0, 0, 0, 0, 3])
            .expect("mutante3");
        assert_eq!(r.ip_address(), Some(Ipv4Addr::new(192, 168, 50, 33)));
        assert_eq!(r.hostname(), Some("mutante3"));
        assert_eq!(lan.lifetimes().valid, 600);
        assert_eq!(lan.lifetimes().max_valid, 7200);
        assert!(c.authoritative());
        let rel = &c.ha().unwrap().relationships()[0];
        assert_eq!(rel.mode(), config::HaMode::LoadBalancing);
        assert_eq!(rel.peers().len(), 2);
        assert_eq!(rel.max_response_delay().as_secs(), 30);
        assert_eq!(lan.ha_relationship(), Some(0));
    }
    let out = xdhcpd(&["check", p.to_str().unwrap(), s.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // dhcpd's failover protocol has no authentication either: the only
    // warnings are the two open HA listeners (one per server).
    assert!(stdout.contains("0 error(s), 2 warning(s)"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stdout.lines().chain(stderr.lines()).filter(|l| l.starts_with("warning:")).collect();
    assert!(warnings.len() == 2 && warnings.iter().all(|w| w.contains("has neither basic auth nor TLS")), "{warnings:?}");
}

#[test]
fn pair_passes_kea_config_test() {
    if Command::new("kea-dhcp4").arg("-V").output().is_err() {
        eprintln!("kea-dhcp4 not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (p, s) = import_pair(dir.path());
    for f in [p, s] {
        let out = Command::new("kea-dhcp4")
            .arg("-t")
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn report_lists_every_construct() {
    let dir = tempfile::tempdir().unwrap();
    import_pair(dir.path());
    let report =
        std::fs::read_to_string(dir.path().join("venus-primary-import-report.txt")).unwrap();
    for needle in [
        "mapped       ", // alignment of the outcome column
        "lobezno-dhcpd.conf:2:1: authoritative",
        "mclt 3600: Kea's HA has no MCLT",
        "split 128: load-balancing",
        "omapi-port 7911",
        "key omapi_key: TSIG/OMAPI key not imported (secret not shown)",
        "ddns-update-style none",
        "venus-subnets.conf:15:5: range 192.168.50.100 192.168.50.199: pool 192.168.50.100-192.168.50.199",
        "option domain-search \"venus.test\", \"lab.test\": option-data domain-search: \"venus.test, lab.test\"",
        "host mutante3: reservation in subnet 1 (192.168.50.0/24)",
        "max-unacked-updates 10",
        "load balance max seconds 3",
        "http://192.168.51.3:8000/",
        "config: ",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in\n{report}");
    }
    assert!(
        !report.contains("dmVudXMtb21hcGktc2VjcmV0"),
        "secret leaked"
    );
    let secondary =
        std::fs::read_to_string(dir.path().join("venus-secondary-import-report.txt")).unwrap();
    assert!(
        secondary.contains("a secondary takes split from its primary"),
        "{secondary}"
    );
}

#[test]
fn leases_import_keeps_active_latest_entries() {
    let dir = tempfile::tempdir().unwrap();
    import_pair(dir.path());
    let csv = std::fs::read_to_string(dir.path().join("venus-primary-leases4.csv")).unwrap();
    let mut lines = csv.lines();
    let schema = Schema::parse_header(lines.next().unwrap()).unwrap();
    let leases: Vec<_> = lines.map(|l| schema.parse_row(l).unwrap()).collect();
    assert_eq!(leases.len(), 2, "{csv}");
    let l100 = &leases[0];
    assert_eq!(l100.address, Ipv4Addr::new(192, 168, 50, 100));
    assert_eq!(
        l100.hwaddr.as_ref().unwrap().bytes(),
        &[2, 0, 0, 0, 0, 0x10]
    );
    assert_eq!(
        l100.client_id.as_ref().unwrap().bytes(),
        &[1, 2, 0, 0, 0, 0, 0x10]
    );
    assert_eq!(l100.hostname, "mutante10");
    assert_eq!(l100.expire, 1_893_579_000); // 2030-01-02 10:10:00 UTC
    assert_eq!(l100.valid_lifetime, 600);
    assert_eq!(l100.subnet_id, 1);
    // .102 was renewed: the later entry's ends (10:19) wins.
    let l102 = &leases[1];
    assert_eq!(l102.address, Ipv4Addr::new(192, 168, 50, 102));
    assert_eq!(l102.expire, 1_893_579_540);
    assert_eq!(l102.hostname, "mutante12");
    let report =
        std::fs::read_to_string(dir.path().join("venus-primary-import-report.txt")).unwrap();
    for needle in [
        "skipped 1: binding state free",
        "skipped 1: binding state backup",
        "skipped 1: binding state expired",
        "2 active leases imported",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in\n{report}");
    }
}

#[test]
fn syntax_errors_name_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broken.conf");
    std::fs::write(
        &conf,
        "authoritative;\nsubnet 10.0.0.0 netmask 255.255.255.0 {\n  range 10.0.0.5 10.0.0.9\n}\n",
    )
    .unwrap();
    let out = xdhcpd(&[
        "import-dhcpd",
        "--conf",
        conf.to_str().unwrap(),
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.conf:3:3: missing ';' after \"range 10.0.0.5 10.0.0.9\""),
        "{err}"
    );
}

#[test]
fn help_documents_the_cli() {
    let out = xdhcpd(&["import-dhcpd", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--conf",
        "--leases",
        "--out-dir",
        "--server-name",
        "--ha-port",
        "<name>-leases4.csv",
        "import-report.txt",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

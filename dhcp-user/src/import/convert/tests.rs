//! Tests of [`super`]: whole dhcpd.conf snippets converted and their Kea
//! JSON and report read back.

use super::*;
use crate::import::syntax::parse;

fn conv(text: &str) -> Imported {
    let stmts = parse(text, "t.conf", &mut |_| Err("no".into())).unwrap();
    convert(
        &stmts,
        &ImportOptions {
            server_name: None,
            peer_name: None,
            ha_port: 8000,
            interfaces: vec![],
            fallback_name: "t".into(),
        },
    )
}

#[test]
fn split_and_roles() {
    let fo = |role: &str, split: &str| {
        format!(
            "failover peer \"p\" {{ {role}; address 10.0.0.1; peer address 10.0.0.2; max-response-delay 30; {split} }}\nsubnet 10.0.0.0 netmask 255.255.255.0 {{ pool {{ failover peer \"p\"; range 10.0.0.10 10.0.0.20; }} }}"
        )
    };
    let rel = |i: &Imported| {
        i.config["Dhcp4"]["hooks-libraries"][1]["parameters"]["high-availability"][0].clone()
    };
    let lb = conv(&fo("primary", "split 128;"));
    assert_eq!(lb.name, "p-primary");
    assert_eq!(rel(&lb)["mode"], "load-balancing");
    assert_eq!(rel(&lb)["peers"][0]["name"], "p-primary");
    assert_eq!(rel(&lb)["peers"][1]["role"], "secondary");
    assert_eq!(rel(&lb)["peers"][1]["url"], "http://10.0.0.2:8000/");
    assert_eq!(rel(&lb)["max-response-delay"], 30000);
    let hs = conv(&fo("secondary", "split 255;"));
    assert_eq!(hs.name, "p-secondary");
    assert_eq!(rel(&hs)["mode"], "hot-standby");
    assert_eq!(rel(&hs)["peers"][0]["name"], "p-primary");
    assert_eq!(rel(&hs)["peers"][0]["role"], "primary");
    assert_eq!(rel(&hs)["peers"][1]["role"], "standby");
    assert_eq!(rel(&hs)["peers"][0]["url"], "http://10.0.0.2:8000/");
    let zero = conv(&fo("primary", "split 0;"));
    assert_eq!(rel(&zero)["peers"][0]["role"], "standby");
    assert_eq!(rel(&zero)["peers"][1]["role"], "primary");
    assert_eq!(
        lb.config["Dhcp4"]["subnet4"][0]["user-context"]["ha-server-name"],
        "p-primary"
    );
}

#[test]
fn unknown_and_refused_are_reported() {
    let i = conv(
        "frobnicate 3;\nddns-update-style interim;\nkey k { algorithm hmac-md5; secret \"s3cr3t\"; }\nsubnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.5 10.0.0.9; option bogus-opt 1; pool { allow members of \"x\"; range 10.0.0.20 10.0.0.30; } }",
    );
    let text = i.report.render();
    assert!(
        text.contains("refused      t.conf:1:1: frobnicate 3: unknown"),
        "{text}"
    );
    assert!(
        text.contains("ddns-update-style interim: DNS updates are not supported"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("bogus-opt"), "{text}");
    assert!(text.contains("permit lists"), "{text}");
    assert_eq!(
        i.config["Dhcp4"]["subnet4"][0]["pools"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn hosts_land_in_the_subnet_of_their_address() {
    let i = conv(
        "subnet 10.0.1.0 netmask 255.255.255.0 {}\nsubnet 10.0.0.0 netmask 255.255.255.0 {}\nhost h { hardware ethernet 2:0:0:0:0:A; fixed-address 10.0.1.7; }\nhost far { hardware ethernet 02:00:00:00:00:0b; fixed-address 192.0.2.1; }",
    );
    let s = &i.config["Dhcp4"]["subnet4"];
    assert_eq!(s[0]["subnet"], "10.0.0.0/24");
    assert_eq!(s[0]["id"], 1);
    assert_eq!(s[1]["reservations"][0]["hw-address"], "02:00:00:00:00:0a");
    assert_eq!(s[1]["reservations"][0]["ip-address"], "10.0.1.7");
    assert!(i.report.render().contains("host far: no imported subnet"));
    assert_eq!(
        i.config["Dhcp4"]["valid-lifetime"],
        DHCPD_DEFAULT_LEASE_TIME
    );
}

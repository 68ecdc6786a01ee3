//! `venus`, the mission's network: an HA server pair and DHCP clients on
//! one LAN, plus a server-to-server link of its own so a test can cut the
//! HA heartbeat while clients still reach both servers.
//!
//! ```text
//!   lan 192.168.50.0/24                          ha 192.168.51.0/24
//!   lobezno  eth0 .2 (primary)  ─┐            ┌─ lobezno  eth1 .2
//!   tormenta eth0 .3 (standby)  ─┤ xbr-lan    ├─ tormenta eth1 .3   xbr-ha
//!   mutante1..N eth0 (DHCP)     ─┘            └
//! ```
//!
//! Client `mutanteN` has MAC `02:00:00:00:00:NN` (N in hex); mutante3's is
//! reserved to 192.168.50.33 in the Kea configs `lab/venus/<server>.json`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::addr::{Ipv4Cidr, Mac};
use crate::kea::{Kea, KeaConfig};
use crate::lab::Lab;
use crate::topology::{Host, Role, Topology};

/// The client LAN segment (servers' `eth0`).
pub const LAN: &str = "lan";
/// The server-to-server HA segment (servers' `eth1`).
pub const HA: &str = "ha";
/// The primary server host.
pub const PRIMARY: &str = "lobezno";
/// The standby server host.
pub const STANDBY: &str = "tormenta";
/// Both servers, primary first.
pub const SERVERS: [&str; 2] = [PRIMARY, STANDBY];

/// LAN subnet.
pub const LAN_SUBNET: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 50, 0), 24);
/// HA subnet.
pub const HA_SUBNET: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 51, 0), 24);
/// Primary's LAN address (its DHCP server identifier).
pub const PRIMARY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
/// Standby's LAN address.
pub const STANDBY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 3);
/// Primary's HA address (its peer URL host).
pub const PRIMARY_HA: Ipv4Addr = Ipv4Addr::new(192, 168, 51, 2);
/// Standby's HA address.
pub const STANDBY_HA: Ipv4Addr = Ipv4Addr::new(192, 168, 51, 3);
/// First address of the dynamic pool.
pub const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 100);
/// Last address of the dynamic pool.
pub const POOL_LAST: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 199);
/// The client with a reservation.
pub const RESERVED_CLIENT: usize = 3;
/// Its reserved address.
pub const RESERVED_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 33);
/// Valid lifetime in the venus configs, seconds (short so drills are quick).
pub const LEASE_TIME: u32 = 60;
/// Fewest clients venus is built with.
pub const MIN_CLIENTS: usize = 3;
/// Most clients (names must fit `mutanteNN`, MACs one byte).
pub const MAX_CLIENTS: usize = 99;

/// Name of client `n` (1-based): `mutante<n>`.
pub fn client(n: usize) -> String {
    format!("mutante{n}")
}

/// MAC of client `n`: `02:00:00:00:00:<n>`.
pub fn client_mac(n: usize) -> Mac {
    Mac::local(0, u8::try_from(n).unwrap_or(u8::MAX))
}

/// Whether `ip` is in the dynamic pool.
pub fn in_pool(ip: Ipv4Addr) -> bool {
    (POOL_FIRST..=POOL_LAST).contains(&ip)
}

/// The venus topology with `clients` clients (at least 3, so mutante3 with
/// its reservation always exists).
pub fn topology(clients: usize) -> anyhow::Result<Topology> {
    if !(MIN_CLIENTS..=MAX_CLIENTS).contains(&clients) {
        bail!("venus needs {MIN_CLIENTS}..={MAX_CLIENTS} clients, got {clients}");
    }
    let server = |name: &str, lan: Ipv4Addr, ha: Ipv4Addr, last: u8| {
        Host::new(name, Role::Server).port(LAN, Some(Ipv4Cidr::new(lan, 24)), Some(Mac::local(0x50, last))).port(
            HA,
            Some(Ipv4Cidr::new(ha, 24)),
            Some(Mac::local(0x51, last)),
        )
    };
    let mut t = Topology::new()
        .segment(LAN, LAN_SUBNET)
        .segment(HA, HA_SUBNET)
        .host(server(PRIMARY, PRIMARY_LAN, PRIMARY_HA, 2))
        .host(server(STANDBY, STANDBY_LAN, STANDBY_HA, 3));
    for n in 1..=clients {
        t = t.host(Host::new(client(n), Role::Client).port(LAN, None, Some(client_mac(n))));
    }
    Ok(t)
}

/// Path of the checked-in Kea config of `server` (`lab/venus/<server>.json`).
pub fn kea_config_path(server: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("venus").join(format!("{server}.json"))
}

/// The checked-in Kea config of `server`, ready to patch.
pub fn kea_config(server: &str) -> anyhow::Result<KeaConfig> {
    if !SERVERS.contains(&server) {
        bail!("{server:?} is not a venus server");
    }
    KeaConfig::from_file(&kea_config_path(server))
}

/// Starts real Kea on both servers with the checked-in configs (lease
/// files per lab) and waits until both are in HOT-STANDBY, i.e. the
/// primary serves clients. Returns (primary, standby).
pub fn start_kea_pair(lab: &Lab, timeout: Duration) -> anyhow::Result<(Kea, Kea)> {
    let mut primary = Kea::start(lab, PRIMARY, &kea_config(PRIMARY)?)?;
    let mut standby = Kea::start(lab, STANDBY, &kea_config(STANDBY)?)?;
    primary.wait_ha_state("HOT-STANDBY", timeout).context("primary never reached HOT-STANDBY")?;
    standby.wait_ha_state("HOT-STANDBY", timeout).context("standby never reached HOT-STANDBY")?;
    Ok((primary, standby))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_matches_the_mission() {
        let t = topology(4).unwrap();
        t.validate().unwrap();
        assert_eq!(t.hosts_with(Role::Server), ["lobezno", "tormenta"]);
        assert_eq!(t.hosts_with(Role::Client), ["mutante1", "mutante2", "mutante3", "mutante4"]);
        let lobezno = t.get_host(PRIMARY).unwrap();
        assert_eq!(lobezno.iface_on(LAN).as_deref(), Some("eth0"));
        assert_eq!(lobezno.iface_on(HA).as_deref(), Some("eth1"));
        assert_eq!(lobezno.ports[0].address.unwrap().to_string(), "192.168.50.2/24");
        assert_eq!(t.get_host(STANDBY).unwrap().ports[1].address.unwrap().to_string(), "192.168.51.3/24");
        let m3 = t.get_host("mutante3").unwrap();
        assert_eq!(m3.ports[0].mac.unwrap().to_string(), "02:00:00:00:00:03");
        assert_eq!(m3.ports[0].address, None);
        assert_eq!(m3.iface_on(HA), None, "clients must not reach the HA link");
        assert!(topology(2).is_err());
        topology(MAX_CLIENTS).unwrap().validate().unwrap();
    }

    #[test]
    fn checked_in_configs_say_what_the_mission_says() {
        for (me, url) in [(PRIMARY, "http://192.168.51.2:8000/"), (STANDBY, "http://192.168.51.3:8000/")] {
            let c = kea_config(me).unwrap();
            let v = c.value();
            let d = &v["Dhcp4"];
            assert_eq!(c.this_server().unwrap(), me);
            assert_eq!(d["interfaces-config"]["interfaces"], serde_json::json!(["eth0"]));
            assert_eq!((d["renew-timer"].as_u64(), d["rebind-timer"].as_u64()), (Some(30), Some(45)));
            assert_eq!(d["valid-lifetime"].as_u64(), Some(u64::from(LEASE_TIME)));
            assert_eq!(d["authoritative"], true);
            assert_eq!(d["lease-database"]["persist"], true);
            let s = &d["subnet4"][0];
            assert_eq!((s["id"].as_u64(), s["subnet"].as_str()), (Some(1), Some("192.168.50.0/24")));
            assert_eq!(s["pools"][0]["pool"], "192.168.50.100-192.168.50.199");
            assert_eq!(s["reservations"][0]["hw-address"], "02:00:00:00:00:03");
            assert_eq!(s["reservations"][0]["ip-address"], "192.168.50.33");
            let peers = c.peer_urls().unwrap();
            assert!(peers.contains(&(me.to_owned(), url.to_owned())), "{peers:?}");
            assert_eq!(peers.len(), 2);
        }
    }

    #[test]
    fn rendering_overrides_lease_file_and_urls_only() {
        let original = kea_config(PRIMARY).unwrap();
        let mut c = original.clone();
        c.lease_file(std::path::Path::new("/tmp/xlab-9-9/lobezno/kea-leases4.csv")).unwrap();
        c.peer_url(STANDBY, "http://192.168.51.3:8001/").unwrap();
        assert_eq!(c.lease_file_path().unwrap().to_str(), Some("/tmp/xlab-9-9/lobezno/kea-leases4.csv"));
        let mut back = c.clone();
        back.lease_file(&original.lease_file_path().unwrap()).unwrap();
        back.peer_url(STANDBY, "http://192.168.51.3:8000/").unwrap();
        assert_eq!(back, original, "render touched more than it should");
    }
}

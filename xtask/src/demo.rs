//! `cargo xtask demo`: the first thing a newcomer runs. Sets the machine
//! up, builds, and walks through the mission in the `venus` lab, step by
//! step: lobezno serves the LAN with xdhcpd, mutante3 gets its reserved
//! address, other machines get pool addresses, their renewals are answered
//! by the XDP program in the kernel, lobezno is killed with SIGKILL and restarted from its
//! lease file, and every client keeps its address. The lab is torn down at
//! the end, also on error or Ctrl-C.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use lab::{Lab, venus};

use crate::{build, setup};

const CLIENTS: usize = 5;
const T: Duration = Duration::from_secs(15);

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// Sets up, builds and runs the demo.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    step(1, "setting up this machine (cargo xtask setup)");
    setup::run()?;
    step(2, "building xdhcpd with its embedded XDP program (cargo xtask build)");
    let xdhcpd = build::release()?;

    step(3, &format!("bringing up the venus lab: lobezno, tormenta, mutante1..{CLIENTS} in network namespaces"));
    let lab = Lab::up(venus::topology(CLIENTS)?).context("bringing up the venus lab")?;
    println!("    lab {} up: namespaces {}", lab.id(), lab.namespaces().join(" "));

    step(4, "starting xdhcpd on lobezno with lab/venus/lobezno.json (Kea format, HA section left out)");
    let dir = lab.host_dir(venus::PRIMARY)?;
    let leases = dir.join("leases4.csv");
    let mut cfg = venus::kea_config(venus::PRIMARY)?;
    // Renewal timer of 2 s so the demo shows renewals (answered by the
    // kernel) within seconds.
    cfg.without_ha()?.lease_file(&leases)?.set("/Dhcp4/renew-timer", 2.into())?.set("/Dhcp4/rebind-timer", 4.into())?;
    let cfg_path = dir.join("xdhcpd.json");
    cfg.write(&cfg_path)?;
    let argv = [xdhcpd.to_str().context("non-UTF-8 path")?, "run", "-c", cfg_path.to_str().context("non-UTF-8 path")?];
    let mut server = lab.spawn(venus::PRIMARY, "xdhcpd", &argv)?;
    server.wait_for_log("serving", T).with_context(|| server.log())?;
    print_matching(&server.log(), "attach mode");

    step(5, "clients ask for addresses with the real ISC dhclient");
    let mut clients = Vec::new();
    for n in 1..=CLIENTS {
        let name = venus::client(n);
        let dh = lab.dhclient(&name)?;
        let t0 = Instant::now();
        let lease = dh.obtain(T).with_context(|| format!("{name} got no lease\n{}", server.log()))?;
        let note = if n == venus::RESERVED_CLIENT { "  <- reservation" } else { "" };
        println!(
            "    {name:<9} {}  {:<15} from {} lease {}s in {:>4} ms{note}",
            venus::client_mac(n),
            lease.address,
            lease.server_id,
            lease.lease_time,
            t0.elapsed().as_millis()
        );
        if n == venus::RESERVED_CLIENT {
            anyhow::ensure!(lease.address == venus::RESERVED_ADDR, "mutante3 did not get its reservation: {lease:?}");
        }
        clients.push((name, dh, lease.address));
    }
    println!("    lease file {} now holds {} rows", leases.display(), rows(&leases));

    step(6, "clients renew by unicast at T1 (2 s): the XDP program answers from its lease map");
    for (name, dh, addr) in &clients {
        let t0 = Instant::now();
        let lease = dh.wait_renewal(T).with_context(|| format!("{name} renewal\n{}", server.log()))?;
        anyhow::ensure!(lease.address == *addr, "{name} renewed to {} instead of {addr}", lease.address);
        println!("    {name:<9} renewed {addr} after {:>4} ms", t0.elapsed().as_millis());
    }

    step(7, "disaster: SIGKILL xdhcpd on lobezno, then restart it from its lease file");
    server.kill()?;
    let t0 = Instant::now();
    let mut server = lab.spawn(venus::PRIMARY, "xdhcpd", &argv)?;
    server.wait_for_log("serving", T).with_context(|| server.log())?;
    println!("    back and serving {} ms after the kill", t0.elapsed().as_millis());
    print_matching(&server.log(), "lease store loaded");

    step(8, "every client reboots (INIT-REBOOT), renews, and keeps its address");
    for (name, dh, addr) in &clients {
        let lease = dh.renew(T).with_context(|| format!("{name} renewal\n{}", server.log()))?;
        anyhow::ensure!(lease.address == *addr, "{name} lost {addr}: now {}", lease.address);
        // …and its next unicast renewal is the restarted kernel program's.
        let again = dh.wait_renewal(T).with_context(|| format!("{name} renewal\n{}", server.log()))?;
        anyhow::ensure!(again.address == *addr, "{name} renewed to {}", again.address);
        println!("    {name:<9} kept {addr}");
    }

    step(9, "stopping xdhcpd (its counters) and tearing the lab down");
    server.stop(T)?;
    print_matching(&server.log(), "XDP counters");
    let answered = server
        .log()
        .lines()
        .rev()
        .find_map(|l| l.split("(AnsweredAck, ").nth(1).and_then(|r| r.split(')').next()).map(str::to_owned))
        .unwrap_or_default();
    println!("    renewals answered in the kernel (XDP_TX) since the restart: {answered}");
    print_matching(&server.log(), "stopped");
    lab.down()?;
    println!(
        "\ndemo done in {:.1} s: {} clients served, mutante3 on {}, no address lost across a kill -9.",
        started.elapsed().as_secs_f64(),
        clients.len(),
        venus::RESERVED_ADDR
    );
    println!("(HA failover between lobezno and tormenta joins this demo with the HA work.)");
    Ok(())
}

fn rows(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0)
}

fn print_matching(log: &str, needle: &str) {
    for line in log.lines().filter(|l| l.contains(needle)) {
        println!("    xdhcpd: {}", line.split_once(" INFO ").or(line.split_once(" WARN ")).map_or(line, |(_, r)| r).trim());
    }
}

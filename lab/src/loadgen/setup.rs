//! Lab wiring a run needs around it: the server's address, the clients'
//! neighbour entries and a promiscuous receiver. Separate from the run, as
//! it is done once per lab, not per run.

use anyhow::Context as _;

use super::{Client, Server};

/// The server end of a lab host's interface: its MAC (from the topology)
/// and first IPv4 address.
pub fn server_of(lab: &crate::Lab, host: &str, segment: &str) -> anyhow::Result<Server> {
    let h = lab.topology().get_host(host)?;
    let port = h.ports.iter().find(|p| p.segment == segment).with_context(|| format!("{host} is not on {segment}"))?;
    let mac = port.mac.with_context(|| format!("{host} has no fixed MAC on {segment}"))?;
    let ip = port.address.with_context(|| format!("{host} has no address on {segment}"))?.addr;
    Ok(Server { mac: mac.0, ip })
}

/// Makes the clients' addresses reachable from `host`'s `iface` the way
/// a LAN of bound clients is: a connected route for `subnet` (no default
/// route, nothing leaves the lab) and a permanent neighbour entry per
/// client, so a server replying through its UDP socket (xdhcpd
/// `--no-xdp`) needs no ARP from clients that are only frames, and no
/// server pays for 10,000 ARP exchanges the others skip. Permanent entries
/// are not counted against the neighbour table's gc thresholds.
pub fn make_reachable(
    lab: &crate::Lab,
    host: &str,
    iface: &str,
    subnet: crate::Ipv4Cidr,
    clients: &[Client],
) -> anyhow::Result<()> {
    let ns = lab.netns(host)?;
    crate::netns::ip(&ns, &["route", "replace", &subnet.to_string(), "dev", iface])?;
    let mut batch = String::new();
    for c in clients {
        let m = c.mac;
        batch.push_str(&format!(
            "neigh replace {} lladdr {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} dev {iface} nud permanent\n",
            c.addr, m[0], m[1], m[2], m[3], m[4], m[5]
        ));
    }
    let path = lab.host_dir(host)?.join("loadgen-neighbours.batch");
    std::fs::write(&path, batch).with_context(|| format!("writing {}", path.display()))?;
    let path = path.to_str().context("non-UTF-8 lab dir")?;
    crate::netns::ip(&ns, &["-batch", path]).context("adding the clients' neighbour entries")?;
    Ok(())
}

/// Lets the load generator's host receive answers addressed to the
/// clients' MACs (veth does not filter by MAC, promiscuous mode makes
/// that explicit).
pub fn prepare_client(lab: &crate::Lab, host: &str, iface: &str) -> anyhow::Result<()> {
    crate::netns::ip(&lab.netns(host)?, &["link", "set", iface, "promisc", "on"])?;
    Ok(())
}

//! Helpers shared by the lab tests (`lab_relay`, `lab_protocol`): xdhcpd in
//! a lab host, its final counters, captures read back, and a hand-made DHCP
//! client for the messages dhclient never sends on Linux (DECLINE, INFORM,
//! the broadcast flag, an INIT-REBOOT for a foreign address, garbage).
//!
//! Each test binary uses a different subset, hence the `dead_code` allow.
#![allow(dead_code)]

pub mod drill;
pub mod pgsql;
pub mod pki;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable as _, Encodable as _};
use lab::{KeaConfig, Lab, Process};

/// Bound for anything that should take a second or two.
pub const T: Duration = Duration::from_secs(15);

/// xdhcpd running in a lab host with its own lease file.
pub struct Xdhcpd {
    /// The daemon.
    pub process: Process,
    /// Its memfile lease store.
    pub leases: PathBuf,
}

impl Xdhcpd {
    /// Waits until HA relationship member `server` (its this-server-name)
    /// has entered `state` for the `n`-th time, per the daemon's
    /// `HA <server>: <from> → <to> (partner …)` log lines (the log keeps
    /// earlier transitions, hence the count).
    pub fn wait_ha(&mut self, server: &str, state: &str, n: usize, timeout: Duration) {
        let (who, to) = (format!("HA {server}: "), format!("→ {state} ("));
        let until = Instant::now() + timeout;
        loop {
            let log = self.process.log();
            if log.lines().filter(|l| l.contains(&who) && l.contains(&to)).count() >= n {
                return;
            }
            assert!(Instant::now() < until, "{server} never entered {state} {n} time(s):\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Renders `cfg` into `host`'s dir with a per-lab lease file, starts
    /// `xdhcpd run -c` (XDP attached unless `extra` says `--no-xdp`) and
    /// waits until it serves.
    pub fn start(lab: &Lab, host: &str, cfg: &KeaConfig, extra: &[&str]) -> Xdhcpd {
        let leases = lab.host_dir(host).unwrap().join("leases4.csv");
        Xdhcpd::start_with_leases(lab, host, cfg, &leases, extra)
    }

    /// [`Xdhcpd::start`] with the lease file at `leases` (a tmpfs the test
    /// fills, say).
    pub fn start_with_leases(lab: &Lab, host: &str, cfg: &KeaConfig, leases: &Path, extra: &[&str]) -> Xdhcpd {
        Xdhcpd::start_with_env(lab, host, cfg, leases, extra, &[])
    }

    /// [`Xdhcpd::start_with_leases`] with environment variables set (a
    /// test hook, say).
    pub fn start_with_env(
        lab: &Lab,
        host: &str,
        cfg: &KeaConfig,
        leases: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Xdhcpd {
        let dir = lab.host_dir(host).unwrap();
        let leases = leases.to_path_buf();
        let mut cfg = cfg.clone();
        cfg.lease_file(&leases).unwrap();
        let path = dir.join("xdhcpd.json");
        cfg.write(&path).unwrap();
        let mut argv = vec![env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", path.to_str().unwrap()];
        argv.extend_from_slice(extra);
        let (program, args) = argv.split_first().unwrap();
        let mut command = lab.cmd(host, program).args(args);
        for (k, v) in env {
            command = command.env(k, v);
        }
        let mut process = command.spawn("xdhcpd").unwrap();
        process.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", process.log()));
        Xdhcpd { process, leases }
    }

    /// The lease file's rows (`address,hwaddr,client_id,valid_lifetime,
    /// expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context`),
    /// header skipped, oldest first.
    pub fn rows(&self) -> Vec<Vec<String>> {
        lease_rows(&self.leases)
    }

    /// The newest row for `address`, if any.
    pub fn last_row(&self, address: Ipv4Addr) -> Option<Vec<String>> {
        let a = address.to_string();
        self.rows().into_iter().rev().find(|r| r[0] == a)
    }

    /// SIGTERM, a clean exit, and the counters of its final `stopped` line.
    pub fn stop(&mut self) -> FinalStats {
        assert!(self.process.is_running(), "xdhcpd died before the end of the test:\n{}", self.process.log());
        let status = self.process.stop(T).unwrap();
        let log = self.process.log();
        assert!(status.success(), "xdhcpd exited {status} on SIGTERM:\n{log}");
        FinalStats::parse(&log).unwrap_or_else(|| panic!("no final stats line in the log:\n{log}"))
    }
}

/// Rows of a Kea memfile CSV, header skipped.
pub fn lease_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').map(str::to_owned).collect()).collect()
}

/// The counters xdhcpd logs when it stops: `stopped stats=Stats {
/// received: {"discover": 2}, dropped: {Truncated: 1}, silent: {..}, sent:
/// {..}, .. }`, one map per field.
#[derive(Debug)]
pub struct FinalStats {
    /// The whole log line, for failure messages.
    pub line: String,
    maps: BTreeMap<String, BTreeMap<String, u64>>,
}

impl FinalStats {
    /// Finds and parses the last `stopped` line of `log`.
    pub fn parse(log: &str) -> Option<FinalStats> {
        let line = log.lines().rev().find(|l| l.contains("stopped") && l.contains("Stats {"))?.to_owned();
        let mut maps = BTreeMap::new();
        let mut rest = &line[line.find("Stats {")? + "Stats {".len()..];
        // Each map field is `name: {k: v, k: v}`; scalar fields are skipped.
        while let Some(open) = rest.find(": {") {
            let name = rest[..open].rsplit([' ', ',', '{']).next()?.trim().to_owned();
            let body_start = open + 3;
            let close = body_start + rest[body_start..].find('}')?;
            let mut map = BTreeMap::new();
            for entry in rest[body_start..close].split(", ").filter(|e| !e.trim().is_empty()) {
                let (k, v) = entry.rsplit_once(": ")?;
                map.insert(k.trim().trim_matches('"').to_owned(), v.trim().parse().ok()?);
            }
            maps.insert(name, map);
            rest = &rest[close + 1..];
        }
        Some(FinalStats { line, maps })
    }

    /// One counter map (`received`, `dropped`, `silent`, `sent`); empty if
    /// nothing was counted.
    pub fn map(&self, name: &str) -> BTreeMap<String, u64> {
        assert!(self.maps.contains_key(name), "no {name:?} map in {}", self.line);
        self.maps[name].clone()
    }

    /// One counter, 0 if absent.
    pub fn get(&self, map: &str, key: &str) -> u64 {
        self.map(map).get(key).copied().unwrap_or(0)
    }
}

/// Runs `f` on a thread that has entered `host`'s network namespace, so
/// sockets it opens live there (and keep working from any thread after).
pub fn in_netns<R: Send + 'static>(
    lab: &Lab,
    host: &str,
    f: impl FnOnce() -> anyhow::Result<R> + Send + 'static,
) -> anyhow::Result<R> {
    let path = lab::netns::path(&lab.netns(host)?);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path)?;
        // Only this thread switches; it ends right after.
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}

/// A DHCP client socket in a lab host: UDP `0.0.0.0:68` bound to one
/// interface, broadcast allowed. Sees what the kernel delivers to port 68
/// there: broadcasts, and unicasts to an address the host has.
pub struct RawClient {
    sock: UdpSocket,
    /// The MAC put in chaddr.
    pub mac: [u8; 6],
}

impl RawClient {
    /// Opens the socket in `host` on `iface`; `mac` is the chaddr it will
    /// claim (normally the interface's own).
    pub fn open(lab: &Lab, host: &str, iface: &str, mac: [u8; 6]) -> RawClient {
        let iface = iface.to_owned();
        let sock = in_netns(lab, host, move || {
            use socket2::{Domain, Protocol, Socket, Type};
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_reuse_address(true)?;
            s.set_broadcast(true)?;
            s.bind_device(Some(iface.as_bytes()))?;
            s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68).into())?;
            Ok(UdpSocket::from(s))
        })
        .unwrap();
        RawClient { sock, mac }
    }

    /// Sends raw bytes to `to` (port 67 of a server, or the broadcast).
    pub fn send_bytes(&self, bytes: &[u8], to: SocketAddrV4) {
        self.sock.send_to(bytes, to).unwrap();
    }

    /// Broadcasts raw bytes to `255.255.255.255:67`.
    pub fn broadcast_bytes(&self, bytes: &[u8]) {
        self.send_bytes(bytes, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67));
    }

    /// Sends `msg` to `to`.
    pub fn send(&self, msg: &Message, to: SocketAddrV4) {
        self.send_bytes(&msg.to_vec().unwrap(), to);
    }

    /// Broadcasts `msg` to `255.255.255.255:67`.
    pub fn broadcast(&self, msg: &Message) {
        self.send(msg, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67));
    }

    /// The first BOOTREPLY with transaction id `xid` within `timeout`.
    pub fn recv(&self, xid: u32, timeout: Duration) -> Option<Message> {
        self.recv_bytes(xid, timeout).and_then(|b| Message::from_bytes(&b).ok())
    }

    /// The bytes of the first BOOTREPLY with transaction id `xid` within
    /// `timeout` (for comparing exactly what two servers sent).
    pub fn recv_bytes(&self, xid: u32, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            self.sock.set_read_timeout(Some(left)).unwrap();
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else { return None };
            if let Ok(m) = Message::from_bytes(&buf[..n])
                && m.opcode() == Opcode::BootReply
                && m.xid() == xid
            {
                return Some(buf[..n].to_vec());
            }
        }
    }

    /// Sends `msg` (broadcast) and waits for its reply.
    pub fn exchange(&self, msg: &Message, timeout: Duration) -> Option<Message> {
        self.broadcast(msg);
        self.recv(msg.xid(), timeout)
    }
}

/// A BOOTREQUEST of `kind` from `mac` with transaction id `xid`, asking
/// for routers, DNS and domain name.
pub fn request(kind: MessageType, mac: [u8; 6], xid: u32) -> Message {
    let mut m =
        Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
    m.set_xid(xid);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::DomainName,
    ]));
    m
}

/// Sets the broadcast flag of `m`.
pub fn with_broadcast_flag(mut m: Message) -> Message {
    m.set_flags(Flags::default().set_broadcast());
    m
}

/// Option 53 of `m`.
pub fn msg_type(m: &Message) -> Option<MessageType> {
    m.opts().msg_type()
}

/// An IPv4-list option (routers, DNS) of `m`.
pub fn ips(m: &Message, code: OptionCode) -> Vec<Ipv4Addr> {
    match m.opts().get(code) {
        Some(DhcpOption::Router(v) | DhcpOption::DomainNameServer(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// Option 15 of `m`.
pub fn domain_name(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Option 54 of `m`.
pub fn server_id(m: &Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    }
}

/// The decoded packets of a capture whose DHCP message type is `kind`
/// ("Discover", "Offer", "Request", "ACK", "NACK", "Decline", "Inform"…,
/// as tcpdump prints option 53).
pub fn dhcp_packets(packets: &[String], kind: &str) -> Vec<String> {
    let needle = format!("DHCP-Message (53), length 1: {kind}");
    packets.iter().filter(|p| p.lines().any(|l| l.trim() == needle)).cloned().collect()
}

/// The first line of a tcpdump `-e -vv` packet (MACs) and its IP/UDP line
/// (`a.b.c.d.67 > e.f.g.h.68:`), for assertions on where it went.
pub fn route_of(packet: &str) -> (String, String) {
    let mut lines = packet.lines();
    let eth = lines.next().unwrap_or_default().to_owned();
    let ip = lines.find(|l| l.contains(" > ")).unwrap_or_default().trim().to_owned();
    (eth, ip)
}

/// One XDP outcome counter (`AnsweredOffer`, …) from the last `XDP
/// counters` line xdhcpd logs when it stops.
pub fn xdp_counter(log: &str, name: &str) -> u64 {
    let line =
        log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find(&format!("({name}, ")).unwrap_or_else(|| panic!("{name} not in {line}"));
    line[at + name.len() + 3..].split(')').next().unwrap().parse().unwrap()
}

/// Kea command `cmd` (no arguments) to xdhcpd's default control listener
/// from inside `host`: the answer's one element.
pub fn control_command(lab: &Lab, host: &str, cmd: &str) -> serde_json::Value {
    let body = format!(r#"{{"command": "{cmd}", "service": ["dhcp4"]}}"#);
    let url = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    let out = lab.run(host, &["curl", "-sS", "--max-time", "15", "-H", "Content-Type: application/json", "-d", &body, &url]).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{cmd} on {host}: {e}: {}", out.stdout));
    v[0].clone()
}

/// `GET http://<DEFAULT_CONTROL_ADDR>/<path>` from inside `host` (xdhcpd's
/// default control listener).
pub fn control_get(lab: &Lab, host: &str, path: &str) -> String {
    lab.run(host, &["curl", "-sS", "--max-time", "5", &format!("http://{}/{path}", dhcp_user::api::DEFAULT_CONTROL_ADDR)]).unwrap().stdout
}

//! Kea's command channel (`control-socket`) with Kea's own tools in front,
//! in the `venus` lab: xdhcpd in lobezno with a unix control socket;
//! Debian's real `kea-ctrl-agent` in the same namespace forwards to it;
//! `kea-shell` lists xdhcpd's commands and reads the lease a real
//! dhclient obtained; `socat`-style raw use (one command, one answer, the
//! connection closed), the lock that keeps a second server off the
//! socket, and a `config-set` that moves the socket are checked too. Root and the lab's tools are required.

use std::{
    io::{Read as _, Write as _},
    time::{Duration, Instant},
};

mod common;

use common::Xdhcpd;
use lab::{Lab, venus};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);
const CA_PORT: &str = "8000";

/// Runs `kea-shell` in `host` against the agent, `args` on stdin (the
/// inside of the arguments map: kea-shell adds the braces).
fn kea_shell(lab: &Lab, host: &str, command: &str, args: &str) -> Value {
    let script = format!(
        "printf '%s' '{args}' | kea-shell --host 127.0.0.1 --port {CA_PORT} --service dhcp4 --timeout 5 {command}"
    );
    let out = lab.cmd(host, "sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "kea-shell {command}: {}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("kea-shell {command}: {e}: {}", out.stdout))
}

/// One command over the unix socket at `path`, its answer.
fn raw(path: &std::path::Path, cmd: &Value) -> Value {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(cmd.to_string().as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn kea_ctrl_agent_and_kea_shell_drive_xdhcpd_over_the_unix_socket() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let socket = dir.join("kea4-ctrl-socket");
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set("/Dhcp4/control-socket", json!({"socket-type": "unix", "socket-name": socket})).unwrap();
    let mut xdhcpd = Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &["--no-xdp"]);
    assert!(socket.exists(), "no socket at {}:\n{}", socket.display(), xdhcpd.process.log());

    // Kea's own control agent, configured as for kea-dhcp4.
    let ca_cfg = dir.join("kea-ctrl-agent.conf");
    let ca = json!({"Control-agent": {
        "http-host": "127.0.0.1", "http-port": CA_PORT.parse::<u16>().unwrap(),
        "control-sockets": {"dhcp4": {"socket-type": "unix", "socket-name": socket}},
        "loggers": [{"name": "kea-ctrl-agent", "severity": "INFO", "output_options": [{"output": "stdout"}]}]
    }});
    std::fs::write(&ca_cfg, ca.to_string()).unwrap();
    let script =
        format!("KEA_PIDFILE_DIR={d} KEA_LOCKFILE_DIR={d} exec kea-ctrl-agent -c {c}", d = dir.display(), c = ca_cfg.display());
    let mut agent = lab.spawn(venus::PRIMARY, "kea-ctrl-agent", &["sh", "-c", &script]).unwrap();
    agent.wait_for_log("CTRL_AGENT_HTTP_SERVICE_STARTED", T).unwrap_or_else(|e| panic!("{e:#}\n{}", agent.log()));

    let list = kea_shell(&lab, venus::PRIMARY, "list-commands", "");
    assert_eq!(list[0]["result"], 0, "{list}");
    let names: Vec<&str> = list[0]["arguments"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for c in ["lease4-get", "statistic-get", "config-get", "status-get", "leases-reclaim"] {
        assert!(names.contains(&c), "{c} missing from {names:?}");
    }

    let lease = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", xdhcpd.process.log()));
    let got = kea_shell(&lab, venus::PRIMARY, "lease4-get", &format!(r#""ip-address": "{}""#, lease.address));
    assert_eq!(got[0]["result"], 0, "{got}");
    assert_eq!(got[0]["arguments"]["hw-address"], venus::client_mac(1).to_string());
    let stats = kea_shell(&lab, venus::PRIMARY, "statistic-get", r#""name": "pkt4-ack-sent""#);
    assert!(stats[0]["arguments"]["pkt4-ack-sent"][0][0].as_i64().unwrap() >= 1, "{stats}");

    // Raw, as socat does: one command in pieces, one answer, then EOF.
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(br#"{"command": "status-"#).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(br#"get"}"#).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "connection not closed after the answer");
    let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(v["result"], 0, "{v}");
    assert_eq!(v["arguments"]["pid"], xdhcpd.process.pid());

    // A second server on the same socket is refused, the first keeps it.
    let second = dir.join("second.json");
    std::fs::write(&second, std::fs::read_to_string(dir.join("xdhcpd.json")).unwrap()).unwrap();
    let out = lab
        .cmd(venus::PRIMARY, env!("CARGO_BIN_EXE_xdhcpd"))
        .args(["run", "--no-xdp", "--control-addr", "127.0.0.1:0", "-c", second.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = &out.stderr;
    assert!(err.contains("another server uses this control socket"), "{err}");
    assert!(socket.exists());
    // The same config, Kea's command line: refused by the pid file.
    let out = lab
        .cmd(venus::PRIMARY, env!("CARGO_BIN_EXE_xdhcpd"))
        .args(["-c", dir.join("xdhcpd.json").to_str().unwrap(), "--no-xdp", "--control-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stderr.contains("another server runs with this configuration"), "{}", out.stderr);
    let pid_file = dir.join("xdhcpd.kea-dhcp4.pid");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), xdhcpd.process.pid().to_string());

    // config-set naming another socket moves the channel, as Kea does:
    // the answer comes back on the old one, which is then gone.
    let moved = dir.join("kea4-ctrl-socket-2");
    let mut new_cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("xdhcpd.json")).unwrap()).unwrap();
    new_cfg["Dhcp4"]["control-socket"]["socket-name"] = json!(moved);
    let v = raw(&socket, &json!({"command": "config-set", "arguments": new_cfg}));
    assert_eq!(v["result"], 0, "{v}\n{}", xdhcpd.process.log());
    let deadline = Instant::now() + T;
    while socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!socket.exists(), "the old socket stayed");
    assert!(!dir.join("kea4-ctrl-socket.lock").exists(), "the old lock file stayed");
    assert_eq!(raw(&moved, &json!({"command": "status-get"}))["arguments"]["pid"], xdhcpd.process.pid());

    agent.stop(T).unwrap();
    xdhcpd.stop();
    assert!(!moved.exists(), "socket left behind");
    assert!(!socket.exists(), "socket left behind");
    assert!(!pid_file.exists(), "pid file left behind");
}

//! Packet captures with tcpdump inside a host: proof of what was really on
//! the wire (who answered, unicast or broadcast, which MACs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::cmd;
use crate::process::Process;

/// A running tcpdump writing a pcap file.
#[derive(Debug)]
pub struct Capture {
    process: Process,
    pcap: PathBuf,
}

impl Capture {
    /// Starts capturing: returns once tcpdump reports it is listening, so
    /// no packet sent after this call is missed.
    pub(crate) fn start(mut process: Process, pcap: PathBuf, timeout: Duration) -> anyhow::Result<Capture> {
        process.wait_for_log("listening on", timeout).context("tcpdump did not start")?;
        Ok(Capture { process, pcap })
    }

    /// Stops tcpdump (it flushes the file on SIGTERM) and returns the pcap.
    pub fn stop(mut self) -> anyhow::Result<Pcap> {
        self.process.stop(Duration::from_secs(5))?;
        Ok(Pcap { path: self.pcap.clone() })
    }

    /// tcpdump's own log (start line, packet counts after stop).
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A finished capture file.
#[derive(Debug, Clone)]
pub struct Pcap {
    path: PathBuf,
}

impl Pcap {
    /// Wraps an existing pcap file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Pcap { path: path.into() }
    }

    /// Where the pcap is (inside the lab dir: copy it before the lab drops
    /// if you want to keep it, or set `XLAB_KEEP=1`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The capture as `tcpdump -r FILE -n -e -vv` prints it: one decoded
    /// DHCP packet per paragraph, with MACs, for assertions and for eyes.
    pub fn text(&self) -> anyhow::Result<String> {
        let mut c = Command::new("tcpdump");
        c.arg("-r").arg(&self.path).args(["-n", "-e", "-vv"]);
        Ok(cmd::run_ok(&mut c, Duration::from_secs(30))?.stdout)
    }
}

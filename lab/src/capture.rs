//! Packet captures with tcpdump inside a host: proof of what was really on
//! the wire (who answered, unicast or broadcast, which MACs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::cmd;
use crate::process::Process;

/// How long [`Capture::stop`] lets in-flight packets land.
const SETTLE: Duration = Duration::from_millis(50);

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
    /// Waits a moment first: a packet sent just before the call may still
    /// be between the kernel and tcpdump.
    pub fn stop(mut self) -> anyhow::Result<Pcap> {
        std::thread::sleep(SETTLE);
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

    /// [`Pcap::text`] cut into one string per packet (a packet starts at
    /// an unindented line), so a test can find "the unicast REQUEST".
    pub fn packets(&self) -> anyhow::Result<Vec<String>> {
        Ok(split_packets(&self.text()?))
    }
}

fn split_packets(text: &str) -> Vec<String> {
    let mut packets: Vec<String> = Vec::new();
    for line in text.lines() {
        match packets.last_mut() {
            Some(p) if line.starts_with([' ', '\t']) => {
                p.push('\n');
                p.push_str(line);
            }
            _ => packets.push(line.to_owned()),
        }
    }
    packets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_start_at_unindented_lines() {
        let text = "10:00:00.1 a > b, IPv4\n    0.0.0.0.68 > x\n\t  Client-Ethernet-Address a\n10:00:00.2 b > a, IPv4\n    y\n";
        let p = split_packets(text);
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("10:00:00.1") && p[0].ends_with("Client-Ethernet-Address a"));
        assert_eq!(p[1], "10:00:00.2 b > a, IPv4\n    y");
        assert!(split_packets("").is_empty());
    }
}

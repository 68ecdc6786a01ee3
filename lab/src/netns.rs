//! Named network namespaces (`ip netns`): create, run in, empty, delete.
//!
//! Deleting a namespace only unmounts its name; the namespace (and every
//! interface in it) lives on while any process is still inside. So
//! [`remove`] first kills every process whose network namespace is this
//! one, found by inode under `/proc`, which catches daemons that forked
//! away from us (dhclient) as well as our own children.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cmd::{self, Output, SHORT};
use crate::wait::wait_until;

/// Where `ip netns` keeps namespace names.
pub const NETNS_DIR: &str = "/run/netns";

/// The bind-mount file behind a namespace name.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether a namespace of this name exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Every named namespace, as `ip netns list` shows them.
pub fn list() -> anyhow::Result<Vec<String>> {
    let out = cmd::run_ok(Command::new("ip").args(["netns", "list"]), SHORT)?;
    // Lines look like `name (id: 3)` or just `name`.
    Ok(out.stdout.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

/// Creates namespace `name` (fails if it exists).
pub fn add(name: &str) -> anyhow::Result<()> {
    cmd::run_ok(Command::new("ip").args(["netns", "add", name]), SHORT)?;
    Ok(())
}

/// `ip -n <ns> <args…>`, failing on a non-zero exit.
pub fn ip(ns: &str, args: &[&str]) -> anyhow::Result<Output> {
    cmd::run_ok(Command::new("ip").args(["-n", ns]).args(args), SHORT)
}

/// A command that runs `program` inside namespace `ns` (`ip netns exec`
/// execs it in place, so the child's pid is the program's).
pub fn command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

/// Runs a short command inside `ns`, failing on a non-zero exit.
pub fn exec(ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
    let (program, args) = argv.split_first().context("empty command line")?;
    cmd::run_ok(command(ns, program).args(args), SHORT)
}

/// Identity (device, inode) of namespace `name`.
pub fn id(name: &str) -> anyhow::Result<(u64, u64)> {
    let m = std::fs::metadata(path(name)).with_context(|| format!("no namespace {name}"))?;
    Ok((m.dev(), m.ino()))
}

/// Identity of process `pid`'s network namespace; `None` once it has
/// exited (zombies have none).
pub fn of_pid(pid: u32) -> Option<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    Some((m.dev(), m.ino()))
}

/// Ids of every process whose network namespace is `name`.
pub fn pids(name: &str) -> anyhow::Result<Vec<u32>> {
    let target = match std::fs::metadata(path(name)) {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path(name).display())),
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        // Processes come and go while we look (and zombies have no
        // namespace): skip what we cannot stat.
        let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) else { continue };
        if (meta.dev(), meta.ino()) == target {
            found.push(pid);
        }
    }
    Ok(found)
}

/// SIGKILLs every process inside `name` and waits (bounded) until none is
/// left.
pub fn kill_all(name: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_until(&format!("processes in namespace {name} to die"), timeout, || {
        let pids = pids(name)?;
        if pids.is_empty() {
            return Ok(Some(()));
        }
        for pid in pids {
            let Ok(raw) = libc::pid_t::try_from(pid) else { continue };
            // SAFETY: kill(2) with a pid read from /proc and a valid signal
            // number; no memory is involved.
            unsafe { libc::kill(raw, libc::SIGKILL) };
        }
        Ok(None)
    })
}

/// Kills everything inside `name` and deletes it. Absent is fine: removal
/// is idempotent and may race with another cleaner.
pub fn remove(name: &str) -> anyhow::Result<()> {
    if !exists(name) {
        return Ok(());
    }
    let killed = kill_all(name, Duration::from_secs(5));
    let out = cmd::run(Command::new("ip").args(["netns", "delete", name]), SHORT)?;
    if !out.success() && exists(name) {
        bail!("`{}` failed: {}", out.command, out.stderr.trim());
    }
    killed
}

/// Sets sysctls inside `ns` (`key=value` pairs).
pub fn sysctl(ns: &str, settings: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["sysctl", "-q", "-w"];
    argv.extend_from_slice(settings);
    exec(ns, &argv)?;
    Ok(())
}

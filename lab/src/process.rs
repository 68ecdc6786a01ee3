//! Long-running programs in a host (servers, tcpdump): start, stop
//! gracefully, crash on purpose (SIGKILL), freeze and thaw (SIGSTOP/SIGCONT)
//! — the failure drills an HA server has to survive.
//!
//! Output goes to a log file in the lab directory so a test can wait for a
//! line ("listening on", a state transition) and show the log on failure.
//! A [`Process`] is SIGKILLed and reaped when dropped; lab teardown also
//! kills everything in the lab's namespaces, so nothing outlives the lab.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cmd::{describe, wait_child};
use crate::wait::wait_until;

/// A running program inside a lab host.
#[derive(Debug)]
pub struct Process {
    name: String,
    host: String,
    child: Child,
    log: PathBuf,
    /// Where this run's output starts in the log: a restarted server
    /// appends to the same file, and its waits must not match old lines.
    log_start: u64,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `cmd` (already set up to run in the host's namespace) through
    /// `start`, with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &str,
        host: &str,
        mut cmd: Command,
        log: PathBuf,
        start: impl FnOnce(&mut Command) -> anyhow::Result<Child>,
    ) -> anyhow::Result<Process> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let log_start = file.metadata().map(|m| m.len()).unwrap_or(0);
        let err = file.try_clone().context("dup log file")?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = start(&mut cmd).with_context(|| format!("{host}: could not start `{}`", describe(&cmd)))?;
        Ok(Process { name: name.to_owned(), host: host.to_owned(), child, log, log_start, status: None })
    }

    /// The name given at spawn (also the log file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host it runs in.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything this run has printed so far.
    pub fn log(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(self.log_start).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Waits until its log contains `needle`, failing early if it exits
    /// first (with the log in the error).
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let what = format!("{} in {} to print {needle:?}", self.name, self.host);
        wait_until(&what, timeout, || {
            if self.log().contains(needle) {
                return Ok(Some(()));
            }
            if let Some(status) = self.try_status()? {
                bail!(
                    "{} in {} exited ({status}) before printing {needle:?}; log:\n{}",
                    self.name,
                    self.host,
                    self.log()
                );
            }
            Ok(None)
        })
        .with_context(|| format!("log so far:\n{}", self.log()))
    }

    /// Its exit status if it has exited (reaping it), `None` while running.
    pub fn try_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait().with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.status)
    }

    /// Whether it is still running (a stopped process counts as running).
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_status(), Ok(None))
    }

    /// Sends `signal` (a `libc::SIG*` number) unless it has already exited.
    pub fn signal(&mut self, signal: i32) -> anyhow::Result<()> {
        if self.try_status()?.is_some() {
            bail!("{} in {} has already exited", self.name, self.host);
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) on our own unreaped child (its pid cannot have been
        // reused) with a caller-chosen signal number; no memory involved.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("kill -{signal} {}", self.name));
        }
        Ok(())
    }

    /// Graceful stop: SIGTERM, wait up to `timeout`, then SIGKILL. Returns
    /// how it ended.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_status()? {
            return Ok(status);
        }
        self.signal(libc::SIGTERM)?;
        // A frozen process cannot act on SIGTERM.
        let _ = self.signal(libc::SIGCONT);
        if let Some(status) = wait_child(&mut self.child, timeout)? {
            self.status = Some(status);
            return Ok(status);
        }
        self.kill()
    }

    /// Crash on purpose: SIGKILL and reap. Returns how it ended.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_status()? {
            return Ok(status);
        }
        self.signal(libc::SIGKILL)?;
        let status = wait_child(&mut self.child, Duration::from_secs(10))?
            .with_context(|| format!("{} did not die after SIGKILL", self.name))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Freezes it (SIGSTOP): it keeps its sockets but answers nothing, like
    /// a hung server.
    pub fn pause(&mut self) -> anyhow::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&mut self) -> anyhow::Result<()> {
        self.signal(libc::SIGCONT)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

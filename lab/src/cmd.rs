//! Running a command to completion with a timeout and captured output.
//!
//! Output goes to anonymous temp files rather than pipes: tools like
//! `dhclient` daemonize and a forked child holding a pipe open would make a
//! pipe reader wait for it, while a file is just read once the command
//! itself has exited.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Default bound for short commands (`ip`, `ethtool`, `sysctl`).
pub const SHORT: Duration = Duration::from_secs(10);

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for error messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Turns a non-zero exit into an error that quotes the command and its
    /// stderr, so a failing test says why.
    pub fn check(self) -> anyhow::Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            bail!("`{}` failed ({}): {}", self.command, self.status, self.stderr.trim())
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}\nstdout:\n{}\nstderr:\n{}", self.command, self.status, self.stdout, self.stderr)
    }
}

/// A command line as text, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, killing it after `timeout`. A non-zero exit
/// is not an error here (see [`Output::check`]); failing to start or timing
/// out is.
pub fn run(cmd: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    run_with(cmd, timeout, |c| Ok(c.spawn()?))
}

/// [`run`], with the spawn step supplied by the caller (the lab uses it to
/// start commands under its lock, see `Resources::start_in`).
pub fn run_with(
    cmd: &mut Command,
    timeout: Duration,
    start: impl FnOnce(&mut Command) -> anyhow::Result<Child>,
) -> anyhow::Result<Output> {
    let command = describe(cmd);
    let mut out = tempfile::tempfile().context("temp file for stdout")?;
    let mut err = tempfile::tempfile().context("temp file for stderr")?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().context("dup stdout file")?))
        .stderr(Stdio::from(err.try_clone().context("dup stderr file")?));
    let mut child = start(cmd).with_context(|| format!("could not start `{command}`"))?;
    let status = match wait_child(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{command}` did not finish within {timeout:?}; killed. stderr: {}", read_all(&mut err).trim());
        }
    };
    Ok(Output { command, status, stdout: read_all(&mut out), stderr: read_all(&mut err) })
}

/// Runs `cmd` and fails on a non-zero exit.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    run(cmd, timeout)?.check()
}

/// Waits for `child` to exit for at most `timeout`; `None` if it is still
/// running then. Polls, since std has no timed wait.
pub fn wait_child(child: &mut Child, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let start = Instant::now();
    let mut step = Duration::from_micros(500);
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child process")? {
            return Ok(Some(status));
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ok(None);
        }
        std::thread::sleep(step.min(timeout - elapsed));
        step = (step * 2).min(Duration::from_millis(50));
    }
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    if file.rewind().is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_both_streams_and_status() {
        let out = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), SHORT).unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
        let err = out.check().unwrap_err().to_string();
        assert!(err.contains("err") && err.contains("sh -c"), "{err}");
    }

    #[test]
    fn kills_on_timeout() {
        let start = Instant::now();
        let err = run(Command::new("sleep").arg("30"), Duration::from_millis(100)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("did not finish"), "{err}");
    }

    #[test]
    fn a_daemon_holding_stdout_does_not_block() {
        // The background sleep keeps the output file open; `run` must return
        // when `sh` exits, not when the sleep does.
        let start = Instant::now();
        let out = run(Command::new("sh").args(["-c", "sleep 3 & echo started"]), SHORT).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(out.stdout, "started\n");
    }
}

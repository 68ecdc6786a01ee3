//! Kea's pid file (`src/lib/process/daemon.cc`, `src/lib/util/pid_file.cc`):
//! `<dir>/<config file name without extension>.kea-dhcp4.pid`, holding the
//! process id. A second server started on the same config finds a live
//! pid there and refuses to start, as Kea does; a file left by a crashed
//! process (its pid no longer alive) is taken over.
//!
//! `<dir>` is `KEA_PIDFILE_DIR` when set (Kea's variable; keactrl-style
//! scripts and Forge set it). Kea falls back to its compiled-in run
//! directory; xdhcpd falls back to the config file's directory, so that
//! servers run from per-host directories (the lab, tests) never share one.
//! The process name is Kea's (`kea-dhcp4`), so scripts that read
//! `kea-dhcp4.kea-dhcp4.pid` find xdhcpd as they find Kea.

use std::path::{Path, PathBuf};

/// Kea's process name in the file name.
const PROC_NAME: &str = "kea-dhcp4";

/// Why the pid file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another live process wrote it: a server already runs on this config.
    #[error("PID: {pid} exists, PID file: {}: another server runs with this configuration", path.display())]
    Exists {
        /// The live process.
        pid: i32,
        /// The pid file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("unable to write PID file {}: {source}", path.display())]
    Write {
        /// The pid file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The pid file's path for `config` (Kea's `makePIDFileName`).
pub fn path_for(config: &Path, env_dir: Option<&Path>) -> PathBuf {
    let dir = match env_dir {
        Some(d) => d.to_path_buf(),
        None => config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    };
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!("{stem}.{PROC_NAME}.pid"))
}

/// The pid a file names, if it names a live process (Kea's
/// `PIDFile::check`; a pid we cannot signal for lack of permission is
/// alive too).
fn live_pid(path: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

/// This process's pid file; removed when dropped (a clean exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the file for `config`, refusing if a live server wrote it.
    pub fn create(config: &Path) -> Result<PidFile, PidFileError> {
        let env = std::env::var_os("KEA_PIDFILE_DIR").map(PathBuf::from);
        let path = path_for(config, env.as_deref());
        if let Some(pid) = live_pid(&path).filter(|p| *p != std::process::id() as i32) {
            return Err(PidFileError::Exists { pid, path });
        }
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .map_err(|source| PidFileError::Write { path: path.clone(), source })?;
        Ok(PidFile { path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_follows_keas_rule() {
        let c = Path::new("/etc/kea/kea-dhcp4.conf");
        assert_eq!(path_for(c, Some(Path::new("/run/kea"))), PathBuf::from("/run/kea/kea-dhcp4.kea-dhcp4.pid"));
        assert_eq!(path_for(c, None), PathBuf::from("/etc/kea/kea-dhcp4.kea-dhcp4.pid"));
        assert_eq!(path_for(Path::new("x.json"), None), PathBuf::from("./x.kea-dhcp4.pid"));
    }

    #[test]
    fn a_live_pid_refuses_a_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.kea-dhcp4.pid");
        // pid 1 is always alive (init of this pid namespace).
        std::fs::write(&path, "1\n").unwrap();
        assert_eq!(live_pid(&path), Some(1));
        std::fs::write(&path, format!("{}\n", i32::MAX)).unwrap();
        assert_eq!(live_pid(&path), None);
        std::fs::write(&path, "junk").unwrap();
        assert_eq!(live_pid(&path), None);
    }
}

//! Teardown that always happens: the process-wide registry of live labs, the
//! signal handler that tears them all down on Ctrl-C/SIGTERM/SIGHUP, and the
//! sweep that removes what a killed run (SIGKILL, power cut) left behind.
//!
//! A lab's resources are a list of namespace names and a temp directory;
//! tearing down means killing every process in those namespaces and
//! deleting them, which also destroys every interface the lab made (all of
//! them live inside lab namespaces). The same routine serves `Drop`, the
//! signal handler and the stale sweep.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::names;
use crate::netns;

/// Everything one lab owns on the machine, by name.
#[derive(Debug)]
pub(crate) struct Resources {
    pub id: String,
    /// Host namespaces first, then switch namespaces.
    pub namespaces: Vec<String>,
    pub dir: PathBuf,
    pub keep_dir: bool,
    /// Whether the lab is (possibly partly) built. Held while building or
    /// tearing down so Drop and the signal thread never interleave.
    pub up: Mutex<bool>,
}

impl Resources {
    /// Locks the up-flag, surviving a panic of a previous holder (teardown
    /// must still run after a panic).
    pub fn lock(&self) -> MutexGuard<'_, bool> {
        self.up.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Kills and deletes every namespace, removes the temp dir unless kept.
    /// Keeps going after an error so one stuck namespace does not leak the
    /// rest; reports the first error.
    pub fn teardown_locked(&self, up: &mut bool) -> anyhow::Result<()> {
        let result = remove_namespaces(&self.namespaces);
        *up = false;
        if self.keep_dir {
            // Marks the directory as kept on purpose, so the stale sweep
            // leaves it for a post-mortem.
            let _ = std::fs::write(self.dir.join(KEEP_MARKER), b"");
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        result
    }
}

/// Kills processes in all of `namespaces` first (so nothing reacts to its
/// peers vanishing), then deletes them.
fn remove_namespaces(namespaces: &[String]) -> anyhow::Result<()> {
    let mut first_err = None;
    for ns in namespaces {
        if let Err(e) = netns::kill_all(ns, Duration::from_secs(5)) {
            first_err.get_or_insert(e);
        }
    }
    for ns in namespaces {
        if let Err(e) = netns::remove(ns) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// File in a lab's temp dir that tells the stale sweep to keep it.
pub(crate) const KEEP_MARKER: &str = "KEEP";

static LIVE: Mutex<Vec<Arc<Resources>>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<Arc<Resources>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a lab as live (before anything is built, so a signal during
/// `up` still cleans up) and makes sure the signal handler is installed.
pub(crate) fn register(res: Arc<Resources>) {
    install_signal_handler();
    live().push(res);
}

/// Forgets a torn-down lab.
pub(crate) fn unregister(id: &str) {
    live().retain(|r| r.id != id);
}

/// Tears down every live lab of this process. The signal handler calls it;
/// a program with its own shutdown path may too.
pub fn teardown_all() {
    // Clone the list so the registry lock is not held during teardown
    // (Drop takes the lab lock, then the registry lock).
    let labs: Vec<Arc<Resources>> = live().clone();
    for res in labs {
        let mut up = res.lock();
        if let Err(e) = res.teardown_locked(&mut up) {
            eprintln!("lab {}: teardown: {e:#}", res.id);
        }
    }
    live().clear();
}

/// Installs, once per process, a thread that waits for SIGINT, SIGTERM or
/// SIGHUP, tears every live lab down, then lets the signal take its default
/// effect (the process dies of it, as it would have without the lab).
fn install_signal_handler() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("lab: cannot install signal handler ({e}); a signal would leak labs until cleanup_stale()");
                return;
            }
        };
        let spawned = std::thread::Builder::new().name("lab-signals".into()).spawn(move || {
            if let Some(sig) = signals.forever().next() {
                teardown_all();
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
        if let Err(e) = spawned {
            eprintln!("lab: cannot start signal thread ({e}); a signal would leak labs until cleanup_stale()");
        }
    });
}

/// Removes every lab namespace and temp directory whose owning process is
/// gone (killed with SIGKILL, crashed before its Drop ran), killing any
/// process still inside. Labs of live processes, including parallel test
/// runs, are left alone. Returns the namespaces removed. [`crate::Lab::up`]
/// calls it first, so leftovers never pile up.
pub fn cleanup_stale() -> anyhow::Result<Vec<String>> {
    let stale: Vec<String> = netns::list()?
        .into_iter()
        .filter(|ns| names::owner_pid(ns).is_some_and(|pid| !names::pid_alive(pid)))
        .collect();
    remove_namespaces(&stale).context("removing stale lab namespaces")?;
    for dir in stale_dirs() {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(stale)
}

fn stale_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            names::lab_id_of(&name) == Some(&*name)
                && names::owner_pid(&name).is_some_and(|p| !names::pid_alive(p))
                && !e.path().join(KEEP_MARKER).exists()
        })
        .map(|e| e.path())
        .collect()
}

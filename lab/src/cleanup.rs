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

use std::process::{Child, Command};

use anyhow::{Context, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::names;
use crate::netns;
use crate::wait::wait_until;

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

    /// Starts `cmd`, which enters namespace `ns` (`ip netns exec`), and
    /// returns once the child is inside it (or already gone). Holding the
    /// lab lock until then closes a race: a teardown scanning for processes
    /// while `ip` is still between opening the namespace and entering it
    /// would miss it, and the program would then run on in a deleted,
    /// invisible namespace.
    pub fn start_in(&self, ns: &str, cmd: &mut Command) -> anyhow::Result<Child> {
        let up = self.lock();
        if !*up {
            bail!("lab {} is down", self.id);
        }
        let target = netns::id(ns)?;
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let joined = wait_until("a new process to enter its namespace", Duration::from_secs(5), || {
            Ok(match netns::of_pid(pid) {
                Some(id) if id != target => None,
                _ => Some(()),
            })
        });
        if let Err(e) = joined {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        drop(up);
        Ok(child)
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
            crate::tmpfs::unmount_under(&self.dir);
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
    let stale: Vec<String> =
        netns::list()?.into_iter().filter(|ns| names::lab_id_of(ns).is_some_and(|id| !owner_alive(id))).collect();
    remove_namespaces(&stale).context("removing stale lab namespaces")?;
    for dir in stale_dirs() {
        crate::postgres::stop_stale_server(&dir);
        crate::tmpfs::unmount_under(&dir);
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
            names::lab_id_of(&name) == Some(&*name) && !owner_alive(&name) && !e.path().join(KEEP_MARKER).exists()
        })
        .map(|e| e.path())
        .collect()
}

/// File in a lab's temp dir holding its owner's start time, so a recycled
/// pid is not mistaken for the owner (pid_max can be as low as 32768).
pub(crate) const OWNER_FILE: &str = "owner";

/// The fields of `/proc/<pid>/stat` the sweep needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub state: char,
    pub ppid: u32,
    /// Clock ticks after boot: with the pid, identifies a process for life.
    pub start: u64,
}

/// Parses `/proc/<pid>/stat` (the command name may contain spaces and
/// parentheses, so fields are counted after its last `)`).
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is stat field 3 (state); starttime is field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's start time, recorded in each lab's [`OWNER_FILE`].
pub(crate) fn own_start_time() -> Option<u64> {
    proc_stat(std::process::id()).map(|s| s.start)
}

/// Whether the process that made lab `id` may still be using it. Dead
/// means: no such pid; a zombie orphaned to pid 1 (an init that does not
/// reap, as in some containers, would keep it forever); or a pid now held
/// by a process that started at another time than the recorded owner. A
/// zombie whose parent lives (a test that has not reaped it yet) counts as
/// alive. Names that are not lab names count as alive: never touched.
pub(crate) fn owner_alive(id: &str) -> bool {
    let Some(pid) = names::owner_pid(id) else { return true };
    let Some(stat) = proc_stat(pid) else { return false };
    if stat.state == 'Z' && stat.ppid == 1 {
        return false;
    }
    let owner_file = std::env::temp_dir().join(id).join(OWNER_FILE);
    match std::fs::read_to_string(owner_file).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
        Some(recorded) => recorded == stat.start,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (we ird) (name)) S 77 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(ProcStat { state: 'S', ppid: 77, start: 987_654 }));
        assert_eq!(parse_stat("1 (x) Z 1"), None);
    }

    #[test]
    fn this_process_owns_its_labs() {
        let id = names::next_lab_id();
        assert!(owner_alive(&id));
        assert!(own_start_time().is_some());
        assert!(owner_alive("not-a-lab"), "foreign names must never be swept");
        // No such pid can exist above pid_max's hard limit (2^22).
        assert!(!owner_alive(&names::lab_id(4_194_305, 0)));
    }
}

//! A real PostgreSQL 15 server per test, for the SQL lease backend and its
//! interop with Kea (`kea-admin`, `kea-dhcp4` with `"type": "postgresql"`).
//!
//! # Why it looks like this
//!
//! Each [`Postgres`] is a fresh cluster (`initdb`) in its own lab temp dir
//! `/tmp/xlab-<pid>-<n>/`, so tests run in parallel without sharing a
//! table, and nothing of the machine's own PostgreSQL (if any) is touched.
//! PostgreSQL refuses to run as root, so the cluster belongs to an
//! unprivileged user: Debian's `postgres` account (made by the postgresql
//! package), else `nobody`.
//!
//! The server (`postgres`, the postmaster itself rather than `pg_ctl
//! start`) is a child of the test: [`Drop`] (also on panic) shuts it down
//! at once and removes the directory; a test killed with SIGKILL leaves a
//! directory whose owner is dead, and the lab's stale sweep
//! ([`crate::cleanup_stale`]) stops its server through `postmaster.pid`
//! ([`stop_stale_server`]) before removing it. It listens on a unix socket
//! in the temp dir (what Kea and our backend use: `host` = that directory)
//! and on a free port of 127.0.0.1 (for later TCP tests).
//!
//! Every role has a password and the server demands it (scram-sha-256 on
//! the socket as on TCP), so a test that passes a wrong password fails as
//! it would in production. `fsync` is off: it only matters when the
//! machine itself crashes, while a killed server still finds every
//! committed row after a restart.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cleanup::{OWNER_FILE, own_start_time};
use crate::cmd::{self, Output, wait_child};
use crate::names;
use crate::wait::wait_until;

/// Debian's PostgreSQL 15 programs.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The cluster's superuser (made by `initdb`).
pub const SUPERUSER: &str = "xlab_admin";

/// The superuser's password.
pub const SUPERUSER_PASSWORD: &str = "xlab-admin-pw";

/// How long the server may take to start or stop.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A database and the role that owns it, as a lease backend connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// Database name (Kea's `name`).
    pub name: String,
    /// Owner role (Kea's `user`).
    pub user: String,
    /// Its password (Kea's `password`).
    pub password: String,
}

/// A running PostgreSQL cluster in a temp dir; stopped and removed on drop.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    port: u16,
    uid: u32,
    gid: u32,
    server: Option<Child>,
}

impl Postgres {
    /// Makes a cluster (`initdb`) in a fresh lab temp dir and starts its
    /// server; returns once it accepts connections.
    pub fn start() -> anyhow::Result<Postgres> {
        if let Err(e) = crate::cleanup_stale() {
            eprintln!("lab: sweeping stale labs failed (continuing): {e:#}");
        }
        let (uid, gid) = server_account()?;
        let dir = std::env::temp_dir().join(names::next_lab_id());
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // From here on Drop removes the directory, whatever fails.
        let mut pg = Postgres { dir, port: 0, uid, gid, server: None };
        if let Some(start) = own_start_time() {
            std::fs::write(pg.dir.join(OWNER_FILE), format!("{start}\n")).context("writing the owner file")?;
        }
        std::os::unix::fs::chown(&pg.dir, Some(uid), Some(gid)).context("handing the temp dir to the server account")?;
        let pwfile = pg.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n")).context("writing the password file")?;
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        let mut initdb = pg.as_server_account(Path::new(BIN_DIR).join("initdb"));
        initdb
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        cmd::run_ok(&mut initdb, Duration::from_secs(120)).context("initdb")?;
        let _ = std::fs::remove_file(&pwfile);
        pg.start_server()?;
        Ok(pg)
    }

    /// Starts the server again after [`Postgres::stop`] or
    /// [`Postgres::kill`] (same data, same port), waiting until it accepts
    /// connections.
    pub fn start_server(&mut self) -> anyhow::Result<()> {
        if self.server.is_some() {
            bail!("postgres in {} is already running", self.dir.display());
        }
        if self.port == 0 {
            self.port = free_port()?;
        }
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the server log")?;
        std::os::unix::fs::chown(self.log_path(), Some(self.uid), Some(self.gid))?;
        let mut server = self.as_server_account(Path::new(BIN_DIR).join("postgres"));
        server
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=100", "-c", "logging_collector=off"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.server = Some(server.spawn().context("starting postgres")?);
        let socket = self.dir.join(format!(".s.PGSQL.{}", self.port));
        wait_until("postgres to accept connections", START_TIMEOUT, || {
            if let Some(status) = self.server.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("postgres exited ({status}) while starting; log:\n{}", self.log());
            }
            if !socket.exists() {
                return Ok(None);
            }
            let ready = Command::new(Path::new(BIN_DIR).join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(&self.dir)
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .context("running pg_isready")?;
            Ok(ready.success().then_some(()))
        })
        .with_context(|| format!("log:\n{}", self.log()))
    }

    /// Fast shutdown (SIGINT: open transactions are rolled back, clients
    /// disconnected), waiting for the server to exit. Start it again with
    /// [`Postgres::start_server`].
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.signal_and_reap(libc::SIGINT)
    }

    /// Crash on purpose: SIGKILL to the postmaster. Its backends notice and
    /// exit; the next start replays the write-ahead log.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.signal_and_reap(libc::SIGKILL)
    }

    fn signal_and_reap(&mut self, signal: i32) -> anyhow::Result<()> {
        let Some(mut child) = self.server.take() else { return Ok(()) };
        if child.try_wait()?.is_none() {
            let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
            // SAFETY: kill(2) on our own unreaped child; no memory involved.
            unsafe { libc::kill(pid, signal) };
            if wait_child(&mut child, START_TIMEOUT)?.is_none() {
                let _ = child.kill();
                let _ = child.wait();
                bail!("postgres did not exit within {START_TIMEOUT:?} of signal {signal}; killed");
            }
        }
        if signal == libc::SIGKILL {
            // The postmaster's backends outlive it briefly; the data dir's
            // shared memory is free only once they are gone.
            let pid_file = self.data_dir().join("postmaster.pid");
            let _ = wait_until("postgres backends to exit", START_TIMEOUT, || {
                Ok(backends_gone(&self.data_dir()).then_some(()))
            });
            let _ = std::fs::remove_file(pid_file);
        }
        Ok(())
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The directory holding the unix socket: the `host` for libpq, Kea
    /// and our backend.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// [`Postgres::socket_dir`] as text, for configs.
    pub fn host(&self) -> String {
        self.dir.display().to_string()
    }

    /// The port (of the unix socket's name and of 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where the server writes its log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Everything the server has logged.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log_path()).unwrap_or_default()).into_owned()
    }

    /// Runs `sql` with `psql` as the superuser in database `db`; returns
    /// its unaligned, tuples-only output. Fails on any SQL error.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        self.psql_as(db, SUPERUSER, SUPERUSER_PASSWORD, sql)
    }

    /// [`Postgres::psql`] as another role.
    pub fn psql_as(&self, db: &str, user: &str, password: &str, sql: &str) -> anyhow::Result<String> {
        let mut c = Command::new(Path::new(BIN_DIR).join("psql"));
        c.arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10");
        Ok(cmd::run_ok(&mut c, Duration::from_secs(60))?.stdout)
    }

    /// Makes a login role and a database it owns (what an operator does
    /// before `kea-admin db-init`).
    pub fn create_database(&self, name: &str, user: &str, password: &str) -> anyhow::Result<Database> {
        for word in [name, user] {
            if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                bail!("{word:?}: database and role names here are plain identifiers");
            }
        }
        let quoted = password.replace('\'', "''");
        self.psql("postgres", &format!("CREATE ROLE {user} LOGIN PASSWORD '{quoted}'"))?;
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {user}"))?;
        Ok(Database { name: name.to_owned(), user: user.to_owned(), password: password.to_owned() })
    }

    /// [`Postgres::create_database`], then Kea's schema made by Kea's own
    /// tool: `kea-admin db-init pgsql`.
    pub fn create_kea_database(&self, name: &str, user: &str, password: &str) -> anyhow::Result<Database> {
        let db = self.create_database(name, user, password)?;
        self.kea_admin("db-init", &db, &[])?;
        Ok(db)
    }

    /// Runs `kea-admin COMMAND pgsql` against `db` with `extra` arguments.
    pub fn kea_admin(&self, command: &str, db: &Database, extra: &[&str]) -> anyhow::Result<Output> {
        let mut c = Command::new("kea-admin");
        c.args([command, "pgsql", "-h"])
            .arg(&self.dir)
            .arg("-P")
            .arg(self.port.to_string())
            .args(["-u", &db.user, "-p", &db.password, "-n", &db.name])
            .args(extra)
            // kea-admin 2.2's lease-dump drops `-P`; libpq reads the port here.
            .env("PGPORT", self.port.to_string());
        let out = cmd::run(&mut c, Duration::from_secs(120))?;
        // kea-admin reports some failures only in its output.
        if !out.success() || out.stdout.contains("ERROR/kea-admin") || out.stderr.contains("ERROR/kea-admin") {
            bail!("{out}");
        }
        Ok(out)
    }

    /// `kea-admin lease-dump pgsql -4`: Kea's own CSV of `db`'s v4 leases.
    pub fn kea_lease_dump(&self, db: &Database) -> anyhow::Result<String> {
        let out = self.dir.join(format!("lease-dump-{}.csv", names::next_lab_id()));
        let path = out.to_str().context("dump path is not UTF-8")?;
        self.kea_admin("lease-dump", db, &["-4", "-y", "-o", path])?;
        let text = std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        let _ = std::fs::remove_file(&out);
        Ok(text)
    }

    fn as_server_account(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        // `Command::uid` also drops root's supplementary groups.
        c.uid(self.uid).gid(self.gid).current_dir(&self.dir).env("HOME", &self.dir).env_remove("PGDATA");
        c
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.signal_and_reap(libc::SIGQUIT) {
            eprintln!("lab: stopping postgres in {}: {e:#}", self.dir.display());
        }
        // Backends that outlived the postmaster still hold the directory.
        let _ = wait_until("postgres backends to exit", START_TIMEOUT, || Ok(backends_gone(&self.data_dir()).then_some(())));
        if std::env::var(crate::lab::KEEP_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
            eprintln!("lab: kept {}", self.dir.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("lab: removing {}: {e}", self.dir.display());
        }
    }
}

/// Stops the server of a dead run's cluster in `dir` (a stale lab temp
/// dir), found through its `data/postmaster.pid`; the stale sweep calls it
/// before removing the directory. A dir without a cluster is left alone.
pub fn stop_stale_server(dir: &Path) {
    let Some(pid) = postmaster_pid(&dir.join("data")) else { return };
    if !is_postgres(pid) {
        return;
    }
    // SIGQUIT: immediate shutdown, which also ends every backend.
    // SAFETY: kill(2) on a pid just checked to be a postgres process.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let _ = wait_until("a stale postgres to exit", START_TIMEOUT, || Ok((!is_postgres(pid)).then_some(())));
}

fn postmaster_pid(data: &Path) -> Option<libc::pid_t> {
    std::fs::read_to_string(data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

fn is_postgres(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
}

/// No process still runs with its working directory in `data` (each
/// backend's cwd is the data dir).
fn backends_gone(data: &Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return true };
    let data = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    !procs.filter_map(Result::ok).any(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == data))
}

/// The unprivileged account the cluster runs as: `postgres`, else `nobody`.
fn server_account() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
        })
    };
    find("postgres").or_else(|| find("nobody")).context("neither a postgres nor a nobody account in /etc/passwd")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

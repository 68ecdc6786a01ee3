//! The per-test PostgreSQL: a real server Kea's own tool can set up, that
//! demands passwords, survives a restart with its data, and leaves nothing
//! behind on drop, on panic, or (through the stale sweep) when its owner
//! was SIGKILLed.

use std::process::Command;
use std::time::Duration;

use lab::Postgres;
use lab::wait_until;

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
}

fn postmaster_pid(pg: &Postgres) -> i32 {
    let text = std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

#[test]
fn kea_admin_makes_kea_2_2_schema_and_passwords_are_checked() {
    let pg = Postgres::start().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT current_user").unwrap().trim(), lab::postgres::SUPERUSER);
    let uid = pg.psql("postgres", "SELECT 1").map(|_| ()).and_then(|()| {
        let meta = std::fs::metadata(pg.data_dir())?;
        Ok(std::os::unix::fs::MetadataExt::uid(&meta))
    });
    assert_ne!(uid.unwrap(), 0, "the cluster must not belong to root");

    let db = pg.create_kea_database("kea", "kea", "s3cret pw").unwrap();
    let version = pg.psql_as(&db.name, &db.user, &db.password, "SELECT version, minor FROM schema_version").unwrap();
    assert_eq!(version.trim(), "13|0", "Kea 2.2's PostgreSQL schema is 13.0");
    assert_eq!(pg.kea_admin("db-version", &db, &[]).unwrap().stdout.trim(), "13.0");
    let dump = pg.kea_lease_dump(&db).unwrap();
    assert_eq!(dump.lines().next(), Some("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context"));

    let wrong = pg.psql_as(&db.name, &db.user, "not it", "SELECT 1").unwrap_err().to_string();
    assert!(wrong.contains("password authentication failed"), "{wrong}");
}

#[test]
fn data_survives_a_crash_and_restart() {
    let mut pg = Postgres::start().unwrap();
    pg.psql("postgres", "CREATE TABLE t (x int); INSERT INTO t VALUES (7)").unwrap();
    let first = postmaster_pid(&pg);
    pg.kill().unwrap();
    assert!(!pg.is_running());
    assert!(pg.psql("postgres", "SELECT 1").is_err(), "a killed server must not answer");
    pg.start_server().unwrap();
    assert_ne!(postmaster_pid(&pg), first);
    assert_eq!(pg.psql("postgres", "SELECT x FROM t").unwrap().trim(), "7");
    pg.stop().unwrap();
    pg.start_server().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM t").unwrap().trim(), "1");
}

#[test]
fn drop_and_panic_leave_nothing() {
    let pg = Postgres::start().unwrap();
    let (dir, pid) = (pg.socket_dir().to_owned(), postmaster_pid(&pg));
    assert!(running(pid));
    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!running(pid));

    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let pg = Postgres::start().unwrap();
        tx.send((pg.socket_dir().to_owned(), postmaster_pid(&pg))).unwrap();
        panic!("test failure while a server runs");
    })
    .join();
    assert!(panicked.is_err());
    let (dir, pid) = rx.recv().unwrap();
    assert!(!dir.exists(), "{} left behind after a panic", dir.display());
    assert!(!running(pid));
}

/// A process that owns a cluster is SIGKILLed (no Drop runs); the next
/// lab start sweeps its server and directory.
#[test]
fn a_sigkilled_owner_is_swept() {
    if std::env::var_os("XLAB_PG_CHILD").is_some() {
        let pg = Postgres::start().unwrap();
        println!("{} {}", pg.socket_dir().display(), postmaster_pid(&pg));
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "a_sigkilled_owner_is_swept", "--nocapture"])
        .env("XLAB_PG_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (dir, pid) = wait_until("the child to start its cluster", Duration::from_secs(60), || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line)?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next().and_then(|p| p.parse::<i32>().ok())) {
            (Some(dir), Some(pid)) if dir.starts_with('/') => Ok(Some((std::path::PathBuf::from(dir), pid))),
            _ => Ok(None),
        }
    })
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(running(pid), "the server outlives its SIGKILLed owner until swept");
    lab::cleanup_stale().unwrap();
    assert!(!running(pid), "stale server still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

//! `xdhcpd lease-dump` / `lease-upload` against a real PostgreSQL 15 with
//! Kea 2.2's schema: our dump is the file `kea-admin lease-dump pgsql`
//! writes for the same rows, and a memfile uploaded into a fresh database
//! dumps back (by Kea's tool) as the same leases, with the memfile's
//! replay rules (last row wins, valid lifetime 0 deletes).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use dhcp_user::leases::csv::{HEADER, Schema};
use dhcp_user::leases::pgsql::{PgLeaseDb, transfer};
use dhcp_user::leases::{ClientId, HwAddr, INFINITE_LIFETIME, Lease, LeaseState};
use lab::Postgres;
use lab::postgres::Database;
use serde_json::json;

mod common;
use common::pgsql::settings;

/// A minimal config whose lease-database is `db`.
fn config(dir: &Path, pg: &Postgres, db: &Database) -> PathBuf {
    let cfg = json!({ "Dhcp4": {
        "interfaces-config": { "interfaces": ["lo"] },
        "lease-database": { "type": "postgresql", "name": db.name, "host": pg.host(), "port": pg.port(),
                            "user": db.user, "password": db.password },
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.100-192.168.50.199" } ] } ] } });
    let path = dir.join(format!("{}.json", db.name));
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    path
}

fn xdhcpd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xdhcpd")).args(args).output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

fn parse(csv: &str) -> Vec<Lease> {
    let mut lines = csv.lines();
    let schema = Schema::parse_header(lines.next().unwrap()).unwrap();
    lines.map(|l| transfer::from_dump(schema.parse_row(l).unwrap_or_else(|e| panic!("{l}: {e}")))).collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Leases with every column in use.
fn variety() -> Vec<Lease> {
    let t = now();
    let mac = |n: u8| Some(HwAddr::ethernet([2, 0, 0, 0, 0, n]));
    let mut full = Lease::new(Ipv4Addr::new(192, 168, 50, 101), mac(1), None, 1, t, 3600);
    full.client_id = Some(ClientId::new(vec![1, 2, 0, 0, 0, 0, 1]).unwrap());
    full.hostname = "a,b.example".into();
    full.fqdn_fwd = true;
    full.fqdn_rev = true;
    full.user_context = Some(json!({ "ISC": { "relay-agent-info": "0x0104" }, "n": 3 }));
    let declined = Lease::declined(Ipv4Addr::new(192, 168, 50, 102), 1, 86_400, t);
    let mut reclaimed = Lease::new(Ipv4Addr::new(192, 168, 50, 103), mac(3), None, 4_000_000_000, t - 10_000, 60);
    reclaimed.state = LeaseState::ExpiredReclaimed;
    let mut forever = Lease::new(Ipv4Addr::new(10, 1, 2, 3), mac(4), None, 2, t, 60);
    forever.valid_lifetime = INFINITE_LIFETIME;
    forever.expire = t + u64::from(INFINITE_LIFETIME);
    vec![forever, full, declined, reclaimed]
}

#[tokio::test(flavor = "multi_thread")]
async fn our_dump_is_keas_and_an_upload_round_trips() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let store = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap();
    let leases = variety();
    for l in &leases {
        store.insert(l).await.unwrap();
    }

    // lease-dump writes what kea-admin lease-dump writes, byte for byte.
    let cfg = config(dir.path(), &pg, &db);
    let out = dir.path().join("dump.csv");
    let said = ok(&xdhcpd(&["lease-dump", "-c", cfg.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    assert!(said.contains("4 leases dumped"), "{said}");
    let ours = std::fs::read_to_string(&out).unwrap();
    let keas = pg.kea_lease_dump(&db).unwrap();
    assert_eq!(ours, keas, "our dump differs from kea-admin's");
    assert!(ours.starts_with(&format!("{HEADER}\n")));
    let mut sorted = leases.clone();
    sorted.sort_by_key(|l| l.address);
    assert_eq!(parse(&ours), sorted);

    // An existing file is not replaced unless asked.
    let again = xdhcpd(&["lease-dump", "-c", cfg.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--overwrite"));

    // Uploaded into an empty database, Kea's tool dumps the same file.
    let db2 = pg.create_kea_database("kea2", "kea2", "kea2-pw").unwrap();
    let cfg2 = config(dir.path(), &pg, &db2);
    let said = ok(&xdhcpd(&["lease-upload", "-c", cfg2.to_str().unwrap(), out.to_str().unwrap()]));
    assert!(said.contains("4 leases uploaded"), "{said}");
    assert_eq!(pg.kea_lease_dump(&db2).unwrap(), keas);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_replays_memfile_rows_as_kea_loads_them() {
    let pg = Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let cfg = config(dir.path(), &pg, &db);
    let t = now();
    // .1 then the live file: .105 renewed later, .106 deleted, one bad row.
    let older = dir.path().join("leases4.csv.1");
    let live = dir.path().join("leases4.csv");
    std::fs::write(
        &older,
        format!(
            "{HEADER}\n192.168.50.105,02:00:00:00:00:05,,60,{t},1,0,0,,0,\n192.168.50.106,02:00:00:00:00:06,,60,{t},1,0,0,,0,\n"
        ),
    )
    .unwrap();
    let later = t + 500;
    std::fs::write(
        &live,
        format!(
            "{HEADER}\n192.168.50.105,02:00:00:00:00:05,,60,{later},1,0,0,m5,0,\n192.168.50.106,02:00:00:00:00:06,,0,{},1,0,0,,0,\nnot,a,row\n",
            t - 60
        ),
    )
    .unwrap();
    // A row already in the database for .105 is replaced.
    let store = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap();
    store.insert(&Lease::new(Ipv4Addr::new(192, 168, 50, 105), Some(HwAddr::ethernet([2, 0, 0, 0, 0, 9])), None, 1, t, 60)).await.unwrap();

    let said = ok(&xdhcpd(&["lease-upload", "-c", cfg.to_str().unwrap(), older.to_str().unwrap(), live.to_str().unwrap()]));
    assert!(said.contains("1 leases uploaded") && said.contains("skipped"), "{said}");
    let rows = parse(&pg.kea_lease_dump(&db).unwrap());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].address, rows[0].expire, rows[0].hostname.as_str()), (Ipv4Addr::new(192, 168, 50, 105), later, "m5"));
    assert_eq!(rows[0].hwaddr.as_ref().unwrap().bytes(), [2, 0, 0, 0, 0, 5]);

    // A config without a database is refused, saying why.
    let memfile = dir.path().join("memfile.json");
    std::fs::write(&memfile, r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["lo"] }, "subnet4": [] } }"#).unwrap();
    let out = xdhcpd(&["lease-upload", "-c", memfile.to_str().unwrap(), live.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not \"type\": \"postgresql\""), "{out:?}");
}

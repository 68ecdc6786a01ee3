//! The PostgreSQL lease backend against a real PostgreSQL 15 per test, with
//! Kea 2.2's schema made by `kea-admin db-init pgsql`: the schema check,
//! Kea's statements and their race semantics, loading, and interop both
//! ways — `kea-admin lease-dump` reads our rows, and we read the row a real
//! `kea-dhcp4` wrote for a real dhclient.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcp_user::config::Secret;
use dhcp_user::leases::csv::Schema;
use dhcp_user::leases::pgsql::{PgError, PgLeaseDb};
use dhcp_user::leases::{ClientId, HwAddr, INFINITE_LIFETIME, Lease, LeaseState};
use lab::postgres::Database;
use lab::{Kea, KeaConfig, Lab, Postgres, venus};
use serde_json::json;

mod common;
use common::pgsql::settings;

/// A cluster with a Kea database and our backend connected to it.
async fn kea_db() -> (Postgres, Database, PgLeaseDb) {
    let pg = Postgres::start().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let store = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap();
    (pg, db, store)
}

/// lobezno's venus config, without HA, with its leases in `db`.
fn venus_on(pg: &Postgres, db: &Database) -> KeaConfig {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set(
        "/Dhcp4/lease-database",
        json!({ "type": "postgresql", "name": db.name, "host": pg.host(), "port": pg.port(),
                "user": db.user, "password": db.password }),
    )
    .unwrap();
    cfg
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn lease(last: u8, mac: u8, cltt: u64) -> Lease {
    Lease::new(Ipv4Addr::new(192, 168, 50, last), Some(HwAddr::ethernet([2, 0, 0, 0, 0, mac])), None, 1, cltt, 3600)
}

#[tokio::test]
async fn the_schema_is_checked_and_the_password_never_shown() {
    let pg = Postgres::start().unwrap();
    let db = pg.create_kea_database("kea", "kea", "pw-8675309").unwrap();
    let store = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap();
    assert_eq!(store.schema_version(), (13, 0));

    let empty = pg.create_database("empty", "other", "pw-8675309").unwrap();
    let e = PgLeaseDb::connect(&settings(&pg, &empty)).await.unwrap_err();
    assert!(matches!(e, PgError::NoSchema { .. }), "{e}");
    assert!(e.to_string().contains("kea-admin db-init pgsql"), "{e}");

    pg.psql("kea", "UPDATE schema_version SET minor = 1").unwrap();
    let e = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap_err().to_string();
    assert!(e.contains("13.1") && e.contains("13.0, Kea 2.2"), "{e}");
    assert_eq!(pg.psql("kea", "SELECT version, minor FROM schema_version").unwrap().trim(), "13|1", "never altered");

    let mut wrong = settings(&pg, &db);
    wrong.password = Some(Secret::new("pw-wrong-271828"));
    let e = PgLeaseDb::connect(&wrong).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    let text = format!("{shown} {:#}", anyhow::Error::from(e));
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("271828") && !text.contains("8675309"), "password shown: {text}");
}

#[tokio::test]
async fn kea_statements_with_their_race_rules() {
    let (_pg, _db, store) = kea_db().await;
    let t = now();
    let mut a = lease(101, 1, t);
    a.client_id = Some(ClientId::new(vec![1, 2, 0, 0, 0, 0, 1]).unwrap());
    a.hostname = "Mutante1.example".into();
    store.insert(&a).await.unwrap();
    assert_eq!(store.get(a.address).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get(Ipv4Addr::new(192, 168, 50, 102)).await.unwrap(), None);

    // Another client racing for the same address loses, and is told so.
    let rival = lease(101, 2, t);
    assert!(matches!(store.insert(&rival).await, Err(PgError::AddressTaken(addr)) if addr == a.address));
    assert_eq!(store.get(a.address).await.unwrap(), Some(a.clone()), "the loser must not overwrite");

    // A renewal applies to the row as read; a second one from the same
    // stale read finds it changed.
    let mut renewed = a.clone();
    renewed.expire += 600;
    store.update(&renewed, &a).await.unwrap();
    let mut again = a.clone();
    again.expire += 900;
    assert!(matches!(store.update(&again, &a).await, Err(PgError::Changed(_))));
    assert_eq!(store.get(a.address).await.unwrap(), Some(renewed.clone()));

    assert_eq!(store.by_hwaddr(1, a.hwaddr.as_ref().unwrap()).await.unwrap(), [renewed.clone()]);
    assert!(store.by_hwaddr(2, a.hwaddr.as_ref().unwrap()).await.unwrap().is_empty());
    assert_eq!(store.by_client_id(1, a.client_id.as_ref().unwrap()).await.unwrap(), [renewed.clone()]);
    assert_eq!(store.by_hostname("mutante1.EXAMPLE").await.unwrap(), [renewed.clone()]);

    // Deleting what was read before the renewal is refused; the current one goes.
    assert!(matches!(store.delete(&a).await, Err(PgError::Changed(_))));
    store.delete(&renewed).await.unwrap();
    assert_eq!(store.get(a.address).await.unwrap(), None);

    // Upsert takes a lease as it is, over whatever the row held.
    store.insert(&a).await.unwrap();
    store.upsert(&rival).await.unwrap();
    assert_eq!(store.get(a.address).await.unwrap(), Some(rival));

    // What Kea's schema cannot hold is refused before the database.
    let mut later = lease(150, 3, t);
    later.state = LeaseState::Other(3);
    assert!(matches!(store.insert(&later).await, Err(PgError::Unwritable { .. })));
}

#[tokio::test]
async fn pages_expiry_and_a_full_load_with_a_bad_row() {
    let (pg, _db, store) = kea_db().await;
    let t = now();
    for i in 0..5u8 {
        store.insert(&lease(100 + i, i, t - 7200 + u64::from(i))).await.unwrap();
    }
    let mut reclaimed = lease(110, 10, t - 7200);
    reclaimed.state = LeaseState::ExpiredReclaimed;
    store.insert(&reclaimed).await.unwrap();
    let live = lease(120, 20, t);
    store.insert(&live).await.unwrap();

    let page = store.page_after(None, 3).await.unwrap();
    let addrs: Vec<u8> = page.iter().map(|l| l.address.octets()[3]).collect();
    assert_eq!(addrs, [100, 101, 102]);
    let page = store.page_after(Some(page[2].address), 10).await.unwrap();
    assert_eq!(page.iter().map(|l| l.address.octets()[3]).collect::<Vec<_>>(), [103, 104, 110, 120]);

    let expired = store.expired(t, 3).await.unwrap();
    assert_eq!(expired.iter().map(|l| l.address.octets()[3]).collect::<Vec<_>>(), [100, 101, 102], "oldest first");
    assert_eq!(store.expired(t, 100).await.unwrap().len(), 5, "reclaimed and live leases are not expired work");

    // More rows than a page (made in SQL), and one no one can read: a
    // client id of one byte, which Kea refuses too.
    pg.psql(
        "kea",
        "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, \
         hostname, state, user_context) SELECT 167772160 + g, '\\x020000000001'::bytea, ''::bytea, 3600, \
         now() + interval '1 hour', 2, false, false, '', 0, '' FROM generate_series(1, 10005) AS g",
    )
    .unwrap();
    pg.psql("kea", "UPDATE lease4 SET client_id = '\\x01'::bytea WHERE address = 167772160 + 77").unwrap();
    let loaded = store.load_all().await.unwrap();
    assert_eq!(loaded.leases.len(), 7 + 10_004);
    assert_eq!(loaded.bad_rows.len(), 1);
    let bad = loaded.bad_rows[0].to_string();
    assert!(bad.contains("10.0.0.77") && bad.contains("client_id"), "{bad}");
    assert!(loaded.leases.windows(2).all(|w| w[0].address < w[1].address));
}

/// Two servers (two pools) race for the same 40 addresses; each address
/// is won exactly once and the database holds exactly the winners.
#[tokio::test]
async fn concurrent_servers_never_share_an_address() {
    let (pg, db, one) = kea_db().await;
    let two = PgLeaseDb::connect(&settings(&pg, &db)).await.unwrap();
    let t = now();
    let mut tasks = Vec::new();
    for (server, store) in [(1u8, one.clone()), (2u8, two.clone())] {
        for i in 0..40u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let l = lease(100 + i, server, t);
                match store.insert(&l).await {
                    Ok(()) => Some((l.address, server)),
                    Err(PgError::AddressTaken(_)) => None,
                    Err(e) => panic!("{e} {e:?}"),
                }
            }));
        }
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    won.sort();
    assert_eq!(won.len(), 40, "each address won exactly once: {won:?}");
    assert!(won.windows(2).all(|w| w[0].0 != w[1].0));
    for (addr, server) in won {
        let row = one.get(addr).await.unwrap().unwrap();
        assert_eq!(row.hwaddr.unwrap().bytes()[5], server, "{addr}: the row is the winner's");
    }
}

/// `kea-admin lease-dump pgsql` (Kea's own reader) reads back what we
/// wrote, field by field, through the memfile CSV it produces.
#[tokio::test]
async fn kea_admin_reads_our_rows() {
    let (pg, db, store) = kea_db().await;
    let t = now();
    let mut full = lease(101, 1, t);
    full.client_id = Some(ClientId::new(vec![1, 2, 0, 0, 0, 0, 1]).unwrap());
    full.hostname = "a,b.example".into();
    full.fqdn_fwd = true;
    full.user_context = Some(json!({ "ISC": { "relay-agent-info": "0x0104" }, "n": 3 }));
    let declined = Lease::declined(Ipv4Addr::new(192, 168, 50, 102), 1, 86_400, t);
    let mut reclaimed = lease(103, 3, t - 10_000);
    reclaimed.state = LeaseState::ExpiredReclaimed;
    reclaimed.subnet_id = 4_000_000_000;
    let ours = [full, declined, reclaimed];
    for l in &ours {
        store.insert(l).await.unwrap();
    }
    let dump = pg.kea_lease_dump(&db).unwrap();
    let mut lines = dump.lines();
    let schema = Schema::parse_header(lines.next().unwrap()).unwrap();
    let kea: Vec<Lease> = lines.map(|l| schema.parse_row(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert_eq!(kea, ours, "dump:\n{dump}");

    // Kea's rule for an infinite lease: the column holds cltt.
    let mut forever = lease(104, 4, t);
    forever.valid_lifetime = INFINITE_LIFETIME;
    forever.expire = t + u64::from(INFINITE_LIFETIME);
    store.insert(&forever).await.unwrap();
    let dump = pg.kea_lease_dump(&db).unwrap();
    let row = dump.lines().find(|l| l.starts_with("192.168.50.104,")).unwrap();
    assert!(row.contains(&format!(",4294967295,{t},1,")), "{row}");
    assert_eq!(store.get(forever.address).await.unwrap(), Some(forever));
}

/// A real `kea-dhcp4` on the database serves a real dhclient; we read the
/// lease it wrote, and a renewal we write is what Kea then sees.
#[tokio::test(flavor = "multi_thread")]
async fn we_read_the_lease_kea_dhcp4_wrote() {
    let (pg, db, store) = kea_db().await;
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap()).unwrap();
    let cfg = venus_on(&pg, &db);
    let mut kea = Kea::start(&lab, venus::PRIMARY, &cfg).unwrap();
    let before = now();
    let got = lab.dhclient(&venus::client(1)).unwrap().obtain(Duration::from_secs(20)).unwrap();
    let after = now();

    let row = store.get(got.address).await.unwrap().unwrap_or_else(|| panic!("no row; Kea log:\n{}", kea.process().log()));
    assert_eq!(row.hwaddr.as_ref().unwrap().bytes(), venus::client_mac(1).0);
    assert_eq!(row.subnet_id, 1);
    assert_eq!(row.valid_lifetime, venus::LEASE_TIME);
    assert_eq!(row.state, LeaseState::Default);
    assert!(
        (before..=after).contains(&row.cltt()),
        "cltt {} outside {before}..={after}: Kea's local-time text and our epoch disagree",
        row.cltt()
    );
    assert_eq!(store.load_all().await.unwrap().leases, [row.clone()]);

    // Our renewal of Kea's lease, conditional on the row Kea wrote; Kea's
    // own reader then sees our expiration.
    let mut renewed = row.clone();
    renewed.expire += 1000;
    store.update(&renewed, &row).await.unwrap();
    let dump = pg.kea_lease_dump(&db).unwrap();
    assert!(dump.contains(&format!(",{},{},1,", venus::LEASE_TIME, renewed.expire)), "{dump}");
    kea.process().stop(Duration::from_secs(10)).unwrap();
}


/// xdhcpd with `"type": "postgresql"`: each ACK's lease is in the database
/// by the time the client has it (no waiting: the ACK waits for the
/// commit); Kea 2.2 then serves the same client from that row, and xdhcpd
/// restarted loads Kea's row and keeps the client's address.
#[tokio::test(flavor = "multi_thread")]
async fn xdhcpd_and_kea_take_turns_on_one_database() {
    let (pg, db, store) = kea_db().await;
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap()).unwrap();
    let cfg = venus_on(&pg, &db);
    let path = lab.host_dir(venus::PRIMARY).unwrap().join("xdhcpd-pgsql.json");
    cfg.write(&path).unwrap();
    let start_xdhcpd = || {
        let argv = [env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", path.to_str().unwrap(), "--no-xdp"];
        let mut p = lab.spawn(venus::PRIMARY, "xdhcpd", &argv).unwrap();
        p.wait_for_log("serving", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
        p
    };
    let client = venus::client(1);
    let mac = venus::client_mac(1).0;

    let mut xdhcpd = start_xdhcpd();
    let before = now();
    let first = lab.dhclient(&client).unwrap().obtain(Duration::from_secs(20)).unwrap();
    let row = store.get(first.address).await.unwrap().unwrap_or_else(|| panic!("ACK before commit:\n{}", xdhcpd.log()));
    assert_eq!(row.hwaddr.as_ref().unwrap().bytes(), mac);
    assert!(row.cltt() >= before && row.valid_lifetime == venus::LEASE_TIME, "{row:?}");
    assert!(xdhcpd.log().contains("opening PostgreSQL lease database") && !xdhcpd.log().contains("kea-pw"));
    let dump = pg.kea_lease_dump(&db).unwrap();
    assert!(dump.contains(&format!("{},{}", first.address, venus::client_mac(1))), "{dump}");
    xdhcpd.stop(Duration::from_secs(10)).unwrap();

    // Kea finds the client's lease in the row we wrote and renews it there.
    let mut kea_cfg = cfg.clone();
    kea_cfg.set("/Dhcp4/hooks-libraries", json!([])).unwrap();
    let mut kea = Kea::start(&lab, venus::PRIMARY, &kea_cfg).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let by_kea = lab.dhclient(&client).unwrap().obtain(Duration::from_secs(20)).unwrap();
    assert_eq!(by_kea.address, first.address, "Kea did not honour our row:\n{}", kea.process().log());
    let renewed = store.get(first.address).await.unwrap().unwrap();
    assert!(renewed.cltt() > row.cltt(), "Kea did not renew in the database: {renewed:?} vs {row:?}");
    kea.process().stop(Duration::from_secs(10)).unwrap();

    // xdhcpd loads Kea's row at start and keeps the client where it is.
    let mut xdhcpd = start_xdhcpd();
    assert!(xdhcpd.log().contains("leases=1"), "{}", xdhcpd.log());
    let again = lab.dhclient(&client).unwrap().obtain(Duration::from_secs(20)).unwrap();
    assert_eq!(again.address, first.address);
    let last = store.get(first.address).await.unwrap().unwrap();
    assert!(last.cltt() >= renewed.cltt() && last.hwaddr == row.hwaddr, "{last:?}");
    xdhcpd.stop(Duration::from_secs(10)).unwrap();
}

/// The shared-database rule ([`dhcp_user::leases::pgsql::shared`]) as the
/// statements apply it: another client never takes a live address, nor
/// one that ran out less than the reuse fence ago; the same client renews
/// but never goes back in time; a release keeps the address fenced.
#[tokio::test]
async fn shared_writes_keep_other_clients_off_a_live_or_fenced_address() {
    use dhcp_user::leases::pgsql::shared::REUSE_FENCE;
    let (_pg, _db, store) = kea_db().await;
    let t = now();
    let fence = REUSE_FENCE.as_secs();
    let x = lease(101, 1, t);
    store.write_shared(&x).await.unwrap();
    let y = lease(101, 2, t);
    assert!(matches!(store.write_shared(&y).await, Err(PgError::AddressTaken(_))), "a live address taken");
    assert_eq!(store.get(x.address).await.unwrap(), Some(x.clone()));

    // The same client: a renewal goes, a stale older write does not.
    let mut renewed = x.clone();
    renewed.expire += 100;
    store.write_shared(&renewed).await.unwrap();
    assert!(matches!(store.write_shared(&x).await, Err(PgError::AddressTaken(_))), "went back in time");
    // A reclaim as read (same expiration) goes; one from before the renewal does not.
    let mut stale_reclaim = x.clone();
    stale_reclaim.state = LeaseState::ExpiredReclaimed;
    assert!(store.write_shared(&stale_reclaim).await.is_err());

    // A release before the fence: marked reclaimed in place, expiration
    // kept, and still no other client.
    store.remove_shared(&renewed).await.unwrap();
    let row = store.get(x.address).await.unwrap().unwrap();
    assert_eq!((row.state, row.expire, row.hwaddr.clone()), (LeaseState::ExpiredReclaimed, renewed.expire, x.hwaddr.clone()));
    assert!(store.write_shared(&y).await.is_err(), "a released address reused before its fence");
    // The same client takes it back at once.
    let mut back = row.clone();
    back.state = LeaseState::Default;
    back.expire += 60;
    store.write_shared(&back).await.unwrap();

    // Ran out, but less than the fence ago: still not another client's.
    let recent = lease(102, 1, t - 3600 - fence / 2);
    store.write_shared(&recent).await.unwrap();
    assert!(store.write_shared(&lease(102, 2, t)).await.is_err(), "reused inside the fence");
    // Ran out longer ago than the fence: another client may have it.
    let old = lease(103, 1, t - 3600 - fence - 5);
    store.write_shared(&old).await.unwrap();
    let z = lease(103, 3, t);
    store.write_shared(&z).await.unwrap();
    assert_eq!(store.get(z.address).await.unwrap(), Some(z.clone()));
    // A removal after the fence deletes the row.
    let gone = lease(104, 1, t - 3600 - fence - 5);
    store.write_shared(&gone).await.unwrap();
    store.remove_shared(&gone).await.unwrap();
    assert_eq!(store.get(gone.address).await.unwrap(), None);
    // A removal of a row changed since it was read is refused.
    assert!(matches!(store.remove_shared(&x).await, Err(PgError::Changed(_))));

    // An infinite lease never runs out, whatever its (cltt) column says.
    let mut forever = lease(105, 1, t - 10 * 3600);
    forever.valid_lifetime = INFINITE_LIFETIME;
    forever.expire = t - 10 * 3600 + u64::from(INFINITE_LIFETIME);
    store.write_shared(&forever).await.unwrap();
    assert!(store.write_shared(&lease(105, 2, t)).await.is_err(), "an infinite lease taken");

    // A decline may replace a live row: nobody gets the address during probation.
    let declined = Lease::declined(z.address, 1, 86_400, t);
    store.write_shared(&declined).await.unwrap();
    assert!(store.write_shared(&lease(103, 4, t)).await.is_err());
}

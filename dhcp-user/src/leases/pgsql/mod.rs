//! The PostgreSQL lease backend: DHCPv4 leases in Kea 2.2's own `lease4`
//! table, so Kea and xdhcpd can share one database or take over from each
//! other, and several servers can serve one network from it.
//!
//! # Why it looks like this
//!
//! - The schema is Kea's, made by `kea-admin db-init pgsql`; at start the
//!   backend checks its version ([`schema`]) and refuses one it does not
//!   know. It never creates or alters a table.
//! - Rows are written and read exactly as Kea's `PgSqlLeaseMgr` does
//!   ([`row`]): same columns, encodings and the same statements' shapes,
//!   so Kea reads our rows and we read Kea's (tested with `kea-admin
//!   lease-dump` and with a real `kea-dhcp4` serving a real client).
//! - The address is the table's primary key, which is what makes several
//!   servers safe: [`PgLeaseDb::insert`] of an address someone else holds
//!   fails with [`PgError::AddressTaken`] (the reply waiting for that write
//!   is withheld, the row is read back into memory, and the client's
//!   retransmission is decided against it: see [`shared`]), and
//!   [`PgLeaseDb::update`] / [`PgLeaseDb::delete`] apply only
//!   if the row still has the expiration it was read with (Kea's rule),
//!   else [`PgError::Changed`].
//! - A statement returns once PostgreSQL has committed it, so awaiting a
//!   write is what "durable" means here, as a resolved `Durable` is for the
//!   memfile: the ACK still goes out only after that.
//! - Timestamps are bound as `timestamptz` values, not local-time text as
//!   Kea does, so our rows are right whatever the server's or database's
//!   time zone (Kea's own rows are right only when its time zone matches
//!   the database session's).
//!
//! # Layout
//!
//! - [`row`]: pure `Lease` ↔ columns, Kea's rules.
//! - [`schema`]: the version check.
//! - [`connect`]: settings → pool.
//! - `writer`: the store's sink for this backend (its `Durable`s resolve
//!   on commit), per-address ordered lanes over the pool.
//! - [`reconnect`]: Kea's rules for a lost database (pure);
//!   [`monitor`]: noticing the loss, reconnecting, telling the daemon.
//! - [`shared`]: several active servers on one database, and why the
//!   kernel stays exact.
//! - [`transfer`]: `lease-dump` / `lease-upload` between memfile CSV
//!   and the database.
//! - `error`: [`PgError`].

pub mod connect;
mod error;
pub mod monitor;
pub mod reconnect;
pub mod row;
pub mod schema;
pub mod shared;
pub mod transfer;
pub(crate) mod writer;

use std::net::Ipv4Addr;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

pub use error::{PgError, PgResult};

use super::model::{ClientId, HwAddr, Lease, LeaseState};
use crate::config::Postgresql;
use row::{COLUMNS, Columns, Values};

/// Rows per round trip when loading the whole table.
pub const LOAD_PAGE: i64 = 10_000;

const INSERT: &str = "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, \
                      fqdn_rev, hostname, state, user_context) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const UPDATE: &str = "UPDATE lease4 SET hwaddr = $2, client_id = $3, valid_lifetime = $4, expire = $5, \
                      subnet_id = $6, fqdn_fwd = $7, fqdn_rev = $8, hostname = $9, state = $10, user_context = $11 \
                      WHERE address = $1 AND expire = $12";

const UPSERT: &str = "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, \
                      fqdn_rev, hostname, state, user_context) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                      ON CONFLICT (address) DO UPDATE SET hwaddr = EXCLUDED.hwaddr, client_id = EXCLUDED.client_id, \
                      valid_lifetime = EXCLUDED.valid_lifetime, expire = EXCLUDED.expire, \
                      subnet_id = EXCLUDED.subnet_id, fqdn_fwd = EXCLUDED.fqdn_fwd, fqdn_rev = EXCLUDED.fqdn_rev, \
                      hostname = EXCLUDED.hostname, state = EXCLUDED.state, user_context = EXCLUDED.user_context";

/// [`UPSERT`] that replaces an existing row only where the shared-database
/// rule allows it ([`shared`]): the same client (hardware address and
/// client id) not going back in time, a declined lease (nobody gets the
/// address during probation), or a row whose lease ran out at least the
/// reuse fence ($12 seconds) ago by the database's clock (infinite leases
/// never run out).
const GUARDED_UPSERT: &str = "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, \
                              fqdn_fwd, fqdn_rev, hostname, state, user_context) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                              ON CONFLICT (address) DO UPDATE SET hwaddr = EXCLUDED.hwaddr, \
                              client_id = EXCLUDED.client_id, valid_lifetime = EXCLUDED.valid_lifetime, \
                              expire = EXCLUDED.expire, subnet_id = EXCLUDED.subnet_id, fqdn_fwd = EXCLUDED.fqdn_fwd, \
                              fqdn_rev = EXCLUDED.fqdn_rev, hostname = EXCLUDED.hostname, state = EXCLUDED.state, \
                              user_context = EXCLUDED.user_context \
                              WHERE (coalesce(lease4.hwaddr, ''::bytea) = EXCLUDED.hwaddr \
                              AND coalesce(lease4.client_id, ''::bytea) = EXCLUDED.client_id \
                              AND lease4.expire <= EXCLUDED.expire) OR EXCLUDED.state = 1 \
                              OR (lease4.valid_lifetime != 4294967295 \
                              AND lease4.expire + make_interval(secs => $12) <= now())";

/// Deletes the row as it was read if its lease ran out at least the reuse
/// fence ($3 seconds) ago.
const FENCED_DELETE: &str = "DELETE FROM lease4 WHERE address = $1 AND expire = $2 \
                             AND expire + make_interval(secs => $3) <= now()";

/// Marks the row as it was read expired-reclaimed, keeping its expiration
/// (the fence still counts from it): a release before the fence has passed.
const RELEASE_IN_PLACE: &str = "UPDATE lease4 SET state = 2, hostname = '', fqdn_fwd = false, fqdn_rev = false \
                                WHERE address = $1 AND expire = $2";

/// The constraint Kea's schema names lease4's primary key (the address).
const PRIMARY_KEY: &str = "lease4_pkey";

const DELETE: &str = "DELETE FROM lease4 WHERE address = $1 AND expire = $2";

/// What [`PgLeaseDb::load_all`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every readable row, by address.
    pub leases: Vec<Lease>,
    /// Rows neither Kea nor we can read, with why (they stay untouched).
    pub bad_rows: Vec<PgError>,
}

/// Kea's `lease4` table behind a connection pool. Cheap to clone.
#[derive(Clone)]
pub struct PgLeaseDb {
    pool: Pool,
    target: String,
    schema: (i64, i64),
    health: Arc<monitor::Health>,
    conflicts: Arc<shared::Conflicts>,
}

impl std::fmt::Debug for PgLeaseDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeaseDb").field("target", &self.target).field("schema", &self.schema).finish()
    }
}

impl PgLeaseDb {
    /// Connects to the database `cfg` names and checks its Kea schema
    /// version; fails (naming the database, never the password) if it is
    /// unreachable, refuses the login, or holds a schema we do not know.
    pub async fn connect(cfg: &Postgresql) -> PgResult<PgLeaseDb> {
        let target = connect::target(cfg);
        let pool = connect::pool(cfg)?;
        let client = pool.get().await.map_err(|source| PgError::Pool { target: target.clone(), source })?;
        let schema = schema::verify(&client, &target).await?;
        drop(client);
        Ok(PgLeaseDb { pool, target, schema, health: Arc::default(), conflicts: Arc::default() })
    }

    /// `name on host:port`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The Kea schema version found at connect.
    pub fn schema_version(&self) -> (i64, i64) {
        self.schema
    }

    /// Whether the database is usable, as the statements found it.
    pub fn health(&self) -> &Arc<monitor::Health> {
        &self.health
    }

    /// Addresses whose writes failed, to be read again ([`shared`]).
    pub fn conflicts(&self) -> &Arc<shared::Conflicts> {
        &self.conflicts
    }

    async fn client(&self) -> PgResult<Object> {
        if !self.health.is_up() {
            return Err(PgError::Lost { target: self.target.clone() });
        }
        self.pool.get().await.map_err(|source| PgError::Pool { target: self.target.clone(), source })
    }

    /// `r` after telling [`monitor::Health`] about its error, if any.
    fn seen<T>(&self, what: &str, r: PgResult<T>) -> PgResult<T> {
        if let Err(e) = &r {
            self.health.saw(what, e);
        }
        r
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let r = async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        };
        self.seen(statement_name(sql), r.await)
    }

    /// Each row's address column and the row read as a lease.
    async fn select(&self, filter: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<(i64, PgResult<Lease>)>> {
        let r = async {
            let client = self.client().await?;
            let statement = client.prepare_cached(&format!("SELECT {COLUMNS} FROM lease4 {filter}")).await?;
            let rows = client.query(&statement, params).await?;
            Ok(rows.iter().map(read_row).collect())
        };
        self.seen("select lease4", r.await)
    }

    /// A round trip on a pooled connection: how the monitor notices a
    /// loss while no lease is being written.
    pub async fn ping(&self) -> PgResult<()> {
        let r = async { Ok(self.client().await?.simple_query("SELECT 1").await.map(drop)?) };
        self.seen("ping", r.await)
    }

    /// Kea's reopen after a loss: every idle connection dropped (they
    /// died with the server or the path to it), a new one made and the
    /// schema version checked on it. Bypasses [`monitor::Health`], which
    /// the monitor sets up again once this succeeds.
    pub async fn reopen(&self) -> PgResult<()> {
        self.pool.retain(|_, _| false);
        let client = self.pool.get().await.map_err(|source| PgError::Pool { target: self.target.clone(), source })?;
        schema::verify(&client, &self.target).await.map(drop)
    }

    /// [`PgLeaseDb::select`] where one unreadable row fails the whole
    /// answer, as in Kea.
    async fn select_all(&self, filter: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Lease>> {
        self.select(filter, params).await?.into_iter().map(|(_, lease)| lease).collect()
    }

    /// Adds a lease for an address that has none (Kea's `addLease`).
    /// Another server's row for the same address makes it fail with
    /// [`PgError::AddressTaken`], never overwrite.
    pub async fn insert(&self, lease: &Lease) -> PgResult<()> {
        let v = values(lease)?;
        match self.execute(INSERT, &v.params()).await {
            // Only the table's own key: Kea's statistics trigger can also
            // hit a unique violation (two first leases of a subnet at
            // once), which says nothing about the address.
            Err(PgError::Db(e))
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint()) == Some(PRIMARY_KEY) =>
            {
                Err(PgError::AddressTaken(lease.address))
            }
            other => other.map(drop),
        }
    }

    /// Replaces the row of `lease.address` if it still expires when it did
    /// as `read` (the lease as it was read before the change), as Kea's
    /// `updateLease4` does; otherwise [`PgError::Changed`].
    pub async fn update(&self, lease: &Lease, read: &Lease) -> PgResult<()> {
        let v = values(lease)?;
        let old = row::timestamp(row::db_expire(read));
        let mut params = v.params();
        params.push(&old);
        match self.execute(UPDATE, &params).await? {
            0 => Err(PgError::Changed(lease.address)),
            _ => Ok(()),
        }
    }

    /// Writes `lease` whatever the row holds: for a lease this server is
    /// told to take as it is (an HA partner's update, `lease4-update`,
    /// an upload), not for allocation.
    pub async fn upsert(&self, lease: &Lease) -> PgResult<()> {
        let v = values(lease)?;
        self.execute(UPSERT, &v.params()).await.map(drop)
    }

    /// Writes `lease` as a server sharing the database may ([`shared`]):
    /// a new row, or over a row the rule lets it replace; otherwise
    /// [`PgError::AddressTaken`] and the row is left as it is.
    pub async fn write_shared(&self, lease: &Lease) -> PgResult<()> {
        let v = values(lease)?;
        let fence = shared::REUSE_FENCE.as_secs_f64();
        let mut params = v.params();
        params.push(&fence);
        match self.execute(GUARDED_UPSERT, &params).await? {
            0 => Err(PgError::AddressTaken(lease.address)),
            _ => Ok(()),
        }
    }

    /// Removes `lease` (as it was read) as a server sharing the database
    /// may: the row goes once its lease ran out at least the reuse fence
    /// ago; before that it is marked expired-reclaimed in place, so no
    /// other client gets the address before the fence. A row changed since
    /// the read is left alone ([`PgError::Changed`]).
    pub async fn remove_shared(&self, lease: &Lease) -> PgResult<()> {
        let key = row::address_key(lease.address);
        let expire = row::timestamp(row::db_expire(lease));
        let fence = shared::REUSE_FENCE.as_secs_f64();
        if self.execute(FENCED_DELETE, &[&key, &expire, &fence]).await? > 0 {
            return Ok(());
        }
        match self.execute(RELEASE_IN_PLACE, &[&key, &expire]).await? {
            0 => Err(PgError::Changed(lease.address)),
            _ => Ok(()),
        }
    }

    /// Deletes the row of `lease` if it is still the one that was read
    /// (same address and expiration, Kea's `deleteLease`); otherwise
    /// [`PgError::Changed`].
    pub async fn delete(&self, lease: &Lease) -> PgResult<()> {
        let expire = row::timestamp(row::db_expire(lease));
        match self.execute(DELETE, &[&row::address_key(lease.address), &expire]).await? {
            0 => Err(PgError::Changed(lease.address)),
            _ => Ok(()),
        }
    }

    /// The lease of `addr`, if any.
    pub async fn get(&self, addr: Ipv4Addr) -> PgResult<Option<Lease>> {
        Ok(self.select_all("WHERE address = $1", &[&row::address_key(addr)]).await?.pop())
    }

    /// Leases of a hardware address in a subnet.
    pub async fn by_hwaddr(&self, subnet_id: u32, hwaddr: &HwAddr) -> PgResult<Vec<Lease>> {
        self.select_all("WHERE hwaddr = $1 AND subnet_id = $2", &[&hwaddr.bytes(), &i64::from(subnet_id)]).await
    }

    /// Leases of a client identifier in a subnet.
    pub async fn by_client_id(&self, subnet_id: u32, client_id: &ClientId) -> PgResult<Vec<Lease>> {
        self.select_all("WHERE client_id = $1 AND subnet_id = $2", &[&client_id.bytes(), &i64::from(subnet_id)]).await
    }

    /// Leases with `hostname`, compared without case (Kea's index).
    pub async fn by_hostname(&self, hostname: &str) -> PgResult<Vec<Lease>> {
        self.select_all("WHERE lower(hostname) = $1", &[&hostname.to_lowercase()]).await
    }

    /// Up to `limit` leases with addresses after `after` (from the first
    /// when `None`), in address order: Kea's `lease4-get-page`.
    pub async fn page_after(&self, after: Option<Ipv4Addr>, limit: usize) -> PgResult<Vec<Lease>> {
        let from = after.map_or(-1, row::address_key);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_all("WHERE address > $1 ORDER BY address LIMIT $2", &[&from, &limit]).await
    }

    /// Up to `limit` leases expired before `now` (unix seconds) and not yet
    /// reclaimed, oldest first: what reclamation works through (Kea's
    /// `getExpiredLeases4`).
    pub async fn expired(&self, now: u64, limit: usize) -> PgResult<Vec<Lease>> {
        let reclaimed = i64::from(LeaseState::ExpiredReclaimed.code());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select_all(
            "WHERE state != $1 AND valid_lifetime != 4294967295 AND expire < $2 ORDER BY expire LIMIT $3",
            &[&reclaimed, &row::timestamp(now), &limit],
        )
        .await
    }

    /// Every row, in pages of [`LOAD_PAGE`]: what a server loads at start
    /// (its allocator and kernel map start from it). Unreadable rows are
    /// reported in [`Loaded::bad_rows`] and left alone, as the memfile
    /// load skips bad lines.
    pub async fn load_all(&self) -> PgResult<Loaded> {
        let mut out = Loaded::default();
        let mut from: i64 = -1;
        loop {
            let page = self.select("WHERE address > $1 ORDER BY address LIMIT $2", &[&from, &LOAD_PAGE]).await?;
            let n = page.len();
            for (address, lease) in page {
                from = address;
                match lease {
                    Ok(lease) => out.leases.push(lease),
                    Err(e) => out.bad_rows.push(e),
                }
            }
            if i64::try_from(n).unwrap_or(i64::MAX) < LOAD_PAGE {
                return Ok(out);
            }
        }
    }
}

/// A statement's name for Kea's fatal-error message (its first words).
fn statement_name(sql: &str) -> &str {
    let end = sql.match_indices(' ').nth(2).map_or(sql.len(), |(i, _)| i);
    &sql[..end]
}

fn values(lease: &Lease) -> PgResult<Values> {
    row::values(lease).map_err(|reason| PgError::Unwritable { address: lease.address, reason })
}

impl Values {
    /// The eleven parameters of [`INSERT`] / [`UPDATE`] / [`UPSERT`].
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.address,
            &self.hwaddr,
            &self.client_id,
            &self.valid_lifetime,
            &self.expire,
            &self.subnet_id,
            &self.fqdn_fwd,
            &self.fqdn_rev,
            &self.hostname,
            &self.state,
            &self.user_context,
        ]
    }
}

fn read_row(r: &tokio_postgres::Row) -> (i64, PgResult<Lease>) {
    // The primary key: never NULL.
    let address: i64 = r.try_get(0).unwrap_or(-1);
    (address, read_columns(r, address))
}

fn read_columns(r: &tokio_postgres::Row, address: i64) -> PgResult<Lease> {
    let bad = |reason: String| PgError::BadRow { address: row::address_text(address), reason };
    let columns = (|| -> Result<Columns, tokio_postgres::Error> {
        Ok(Columns {
            address,
            hwaddr: r.try_get(1)?,
            client_id: r.try_get(2)?,
            valid_lifetime: r.try_get(3)?,
            expire: r.try_get(4)?,
            subnet_id: r.try_get(5)?,
            fqdn_fwd: r.try_get(6)?,
            fqdn_rev: r.try_get(7)?,
            hostname: r.try_get(8)?,
            state: r.try_get(9)?,
            user_context: r.try_get(10)?,
        })
    })()
    .map_err(|e| bad(e.to_string()))?;
    row::lease(columns).map_err(bad)
}

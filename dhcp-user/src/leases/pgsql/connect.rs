//! `lease-database` settings → a connection pool.
//!
//! Kea's keys map onto libpq's (and tokio-postgres's): `host` (a path is a
//! unix-socket directory), `port`, `user`, `password`, `name` → `dbname`,
//! `connect-timeout`. The pool hands one connection to each request in
//! flight, so concurrent allocations do not queue behind one socket; a
//! broken connection is dropped and a new one made on the next request,
//! which is how service comes back after the database returns.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::error::{PgError, PgResult};
use crate::config::Postgresql;

/// Connections per server: enough for the packet workers and the API at
/// once, few enough that several servers fit PostgreSQL's default 100.
pub const POOL_SIZE: usize = 16;

/// Why `trust-anchor` / `cert-file` / `key-file` are refused for
/// PostgreSQL. Kea 2.2 does not use them either: built without TLS it
/// refuses them (`DHCPSRV_PGSQL_NO_TLS_SUPPORT`); built with it, it only
/// turns libpq's TLS on (`DHCPSRV_PGSQL_TLS_SUPPORT`) and passes none of
/// the files, so the server's certificate is checked against nothing the
/// configuration names. Connecting while ignoring files that ask for
/// verification would be worse than refusing.
pub const NO_TLS: &str = "TLS to PostgreSQL (trust-anchor, cert-file, key-file) is refused, as Kea 2.2 built without \
                          it refuses it (DHCPSRV_PGSQL_NO_TLS_SUPPORT): Kea 2.2 never applies these files to a \
                          PostgreSQL connection, so it cannot verify the server with them; connect over a unix \
                          socket or a trusted network, and remove the three keys";

/// `name on host:port`: how messages name the database (never with the
/// password).
pub fn target(cfg: &Postgresql) -> String {
    format!("{} on {}:{}", cfg.name, cfg.host, cfg.port)
}

/// The driver's settings for `cfg`.
pub fn client_config(cfg: &Postgresql) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.dbname(&cfg.name).host(&cfg.host).port(cfg.port).connect_timeout(cfg.connect_timeout);
    c.application_name("xdhcpd");
    if let Some(user) = &cfg.user {
        c.user(user);
    }
    if let Some(password) = &cfg.password {
        c.password(password.expose());
    }
    c
}

/// A pool for `cfg` (no connection is made yet).
pub fn pool(cfg: &Postgresql) -> PgResult<Pool> {
    let target = target(cfg);
    if cfg.tls.is_some() {
        return Err(PgError::Settings { target, reason: NO_TLS.into() });
    }
    let manager =
        Manager::from_config(client_config(cfg), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    // Waiting for a slot, connecting and checking a connection each get
    // the operator's connect-timeout, so no request waits unbounded.
    let wait = Some(cfg.connect_timeout.max(Duration::from_secs(1)));
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(wait)
        .recycle_timeout(wait)
        .build()
        .map_err(|e| PgError::Settings { target, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OnFail, Secret};

    #[test]
    fn kea_keys_become_driver_settings_and_the_password_stays_hidden() {
        let cfg = Postgresql {
            name: "kea".into(),
            host: "/tmp/pg".into(),
            port: 6432,
            user: Some("kea".into()),
            password: Some(Secret::new("pw-314159")),
            connect_timeout: Duration::from_secs(3),
            max_reconnect_tries: 0,
            reconnect_wait_time: Duration::ZERO,
            on_fail: OnFail::StopRetryExit,
            tls: None,
        };
        let c = client_config(&cfg);
        assert_eq!(c.get_dbname(), Some("kea"));
        assert_eq!(c.get_ports(), &[6432]);
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert!(matches!(c.get_hosts(), [tokio_postgres::config::Host::Unix(p)] if p.to_str() == Some("/tmp/pg")));
        assert!(!format!("{c:?}").contains("314159"), "the driver's Debug shows the password");
        assert_eq!(target(&cfg), "kea on /tmp/pg:6432");
    }

    #[test]
    fn tls_is_refused_as_kea_2_2_refuses_it_naming_the_keys() {
        let mut cfg = Postgresql {
            name: "kea".into(),
            host: "db.example".into(),
            port: 5432,
            user: None,
            password: None,
            connect_timeout: Duration::from_secs(3),
            max_reconnect_tries: 0,
            reconnect_wait_time: Duration::ZERO,
            on_fail: OnFail::StopRetryExit,
            tls: Some(crate::config::DbTls { trust_anchor: "/etc/ssl/ca.pem".into(), client_cert: None }),
        };
        let e = pool(&cfg).err().expect("refused").to_string();
        assert!(e.contains("kea on db.example:5432") && e.contains("trust-anchor") && e.contains("DHCPSRV_PGSQL_NO_TLS_SUPPORT"), "{e}");
        cfg.tls = None;
        assert!(pool(&cfg).is_ok());
    }
}

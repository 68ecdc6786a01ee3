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
        return Err(PgError::Settings {
            target,
            reason: "TLS to the database (trust-anchor) is not supported yet; connect over a unix socket or a \
                     trusted network"
                .into(),
        });
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
}

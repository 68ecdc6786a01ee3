//! The PostgreSQL lease backend's settings for a lab database.

use std::time::Duration;

use dhcp_user::config::{OnFail, Postgresql, Secret};
use lab::Postgres;
use lab::postgres::Database;

/// How our backend connects to `db` in `pg` (no reconnects: a test sees
/// a loss as it happens).
pub fn settings(pg: &Postgres, db: &Database) -> Postgresql {
    Postgresql {
        name: db.name.clone(),
        host: pg.host(),
        port: pg.port(),
        user: Some(db.user.clone()),
        password: Some(Secret::new(db.password.clone())),
        // Also the bound on waiting for a pooled connection: generous, as
        // a loaded test machine makes a burst of logins slow.
        connect_timeout: Duration::from_secs(15),
        max_reconnect_tries: 0,
        reconnect_wait_time: Duration::ZERO,
        on_fail: OnFail::StopRetryExit,
        tls: None,
    }
}

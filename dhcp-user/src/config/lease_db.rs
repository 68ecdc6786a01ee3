//! `Dhcp4.lease-database`: the memfile, or a PostgreSQL database holding
//! Kea's own schema.
//!
//! Kea reads every key of the map for every backend and each backend uses
//! its own; xdhcp keeps Kea's keys and defaults but says so when a key does
//! nothing for the chosen backend (a warning), and refuses the backends it
//! does not have (`mysql`) and the one setting it cannot honour for
//! PostgreSQL (`cipher-list`: the client's TLS library picks the suites).
//!
//! PostgreSQL's keys and Kea's defaults: `name` (required), `host`
//! (`localhost`; a path is a unix-socket directory, as for libpq), `port`
//! (5432; 0 means the default, as in Kea), `user`, `password` (a
//! [`Secret`]: never in an error, a log or `Debug`), `connect-timeout`
//! (seconds, 5, must be > 0), `max-reconnect-tries` (0),
//! `reconnect-wait-time` (milliseconds, 0), `on-fail` (`stop-retry-exit`),
//! and TLS to the database with `trust-anchor` (the CA that signed the
//! server's certificate) plus optionally `cert-file` and `key-file` (a
//! client certificate), both or neither.

use std::path::PathBuf;
use std::time::Duration;

use super::error::Invalid;
use super::ha::Secret;
use super::wire;

type Warnings = Vec<(String, String)>;

/// Kea's default lease file for DHCPv4 (Debian's build).
pub const DEFAULT_LEASE_FILE: &str = "/var/lib/kea/kea-leases4.csv";

/// Kea's default PostgreSQL port.
pub const DEFAULT_PGSQL_PORT: u16 = 5432;

/// Kea's default `connect-timeout` for PostgreSQL (`PGSQL_DEFAULT_CONNECTION_TIMEOUT`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `lease-database`: which backend holds the leases, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDatabase {
    /// `"type": "memfile"` (also when `lease-database` is absent).
    Memfile(Memfile),
    /// `"type": "postgresql"`: Kea's schema in a PostgreSQL database.
    Postgresql(Postgresql),
}

impl LeaseDatabase {
    /// The memfile settings, when the leases live in the memfile.
    pub fn memfile(&self) -> Option<&Memfile> {
        match self {
            LeaseDatabase::Memfile(m) => Some(m),
            LeaseDatabase::Postgresql(_) => None,
        }
    }

    /// The PostgreSQL settings, when the leases live in PostgreSQL.
    pub fn postgresql(&self) -> Option<&Postgresql> {
        match self {
            LeaseDatabase::Postgresql(p) => Some(p),
            LeaseDatabase::Memfile(_) => None,
        }
    }
}

impl Default for LeaseDatabase {
    /// Kea's default: the memfile at [`DEFAULT_LEASE_FILE`].
    fn default() -> Self {
        LeaseDatabase::Memfile(Memfile::default())
    }
}

/// The memfile's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memfile {
    /// `name`: the CSV file (default [`DEFAULT_LEASE_FILE`]).
    pub name: PathBuf,
    /// `persist` (default true): false keeps leases in memory only.
    pub persist: bool,
    /// `lfc-interval` in seconds (default 3600; 0 disables cleanup).
    pub lfc_interval: u32,
    /// `max-row-errors` (default 0: unlimited).
    pub max_row_errors: u32,
}

impl Default for Memfile {
    fn default() -> Self {
        Memfile { name: PathBuf::from(DEFAULT_LEASE_FILE), persist: true, lfc_interval: 3600, max_row_errors: 0 }
    }
}

/// What the server does when it loses its database and cannot get it back
/// (Kea's `on-fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFail {
    /// `stop-retry-exit`: stop serving, retry, exit when retries run out.
    #[default]
    StopRetryExit,
    /// `serve-retry-exit`: keep serving what needs no database, retry,
    /// exit when retries run out.
    ServeRetryExit,
    /// `serve-retry-continue`: keep serving what needs no database, retry,
    /// and keep running when retries run out.
    ServeRetryContinue,
}

/// TLS to the database server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTls {
    /// `trust-anchor`: the CA certificate(s) the server's must chain to.
    pub trust_anchor: PathBuf,
    /// `cert-file` and `key-file`: a client certificate and its key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A PostgreSQL lease database with Kea's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgresql {
    /// `name`: the database.
    pub name: String,
    /// `host`: a host name, an address, or a unix-socket directory (a path).
    pub host: String,
    /// `port` (default [`DEFAULT_PGSQL_PORT`]).
    pub port: u16,
    /// `user`, if set.
    pub user: Option<String>,
    /// `password`, if set; never printed.
    pub password: Option<Secret>,
    /// `connect-timeout` (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// `max-reconnect-tries` (default 0: no retry).
    pub max_reconnect_tries: u32,
    /// `reconnect-wait-time` (milliseconds in the file, default 0).
    pub reconnect_wait_time: Duration,
    /// `on-fail` (default [`OnFail::StopRetryExit`]).
    pub on_fail: OnFail,
    /// TLS settings, when `trust-anchor` is set.
    pub tls: Option<DbTls>,
}

impl Postgresql {
    /// Whether `host` names a unix-socket directory rather than a network
    /// host (libpq's rule: it starts with a slash).
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }
}

/// Stage 2 of `lease-database` at JSON path `path`.
pub(super) fn validate(db: Option<&wire::LeaseDatabase>, path: &str, w: &mut Warnings) -> Result<LeaseDatabase, Invalid> {
    let Some(db) = db else { return Ok(LeaseDatabase::default()) };
    let at = |key: &str| format!("{path}.{key}");
    if db.user_context.is_some() {
        w.push((at("user-context"), "ignored".into()));
    }
    match db.kind.as_str() {
        "memfile" => memfile(db, path, w).map(LeaseDatabase::Memfile),
        "postgresql" => postgresql(db, path, w).map(LeaseDatabase::Postgresql),
        other => Err(Invalid::new(at("type"), format!("{other:?}: expected \"memfile\" or \"postgresql\""))),
    }
}

fn memfile(db: &wire::LeaseDatabase, path: &str, w: &mut Warnings) -> Result<Memfile, Invalid> {
    let sql_keys = [
        ("host", db.host.is_some()),
        ("port", db.port.is_some()),
        ("user", db.user.is_some()),
        ("password", db.password.is_some()),
        ("connect-timeout", db.connect_timeout.is_some()),
        ("max-reconnect-tries", db.max_reconnect_tries.is_some()),
        ("reconnect-wait-time", db.reconnect_wait_time.is_some()),
        ("on-fail", db.on_fail.is_some()),
        ("trust-anchor", db.trust_anchor.is_some()),
        ("cert-file", db.cert_file.is_some()),
        ("key-file", db.key_file.is_some()),
        ("cipher-list", db.cipher_list.is_some()),
    ];
    for (key, _) in sql_keys.iter().filter(|(_, set)| *set) {
        w.push((format!("{path}.{key}"), "ignored: a database setting, and the leases are in the memfile".into()));
    }
    let mut out = Memfile::default();
    if let Some(n) = &db.name {
        if n.is_empty() {
            return Err(Invalid::new(format!("{path}.name"), "must not be empty"));
        }
        out.name = PathBuf::from(n);
    }
    out.persist = db.persist.unwrap_or(true);
    out.lfc_interval = db.lfc_interval.unwrap_or(3600);
    out.max_row_errors = db.max_row_errors.unwrap_or(0);
    Ok(out)
}

fn postgresql(db: &wire::LeaseDatabase, path: &str, w: &mut Warnings) -> Result<Postgresql, Invalid> {
    let at = |key: &str| format!("{path}.{key}");
    for (key, set) in
        [("persist", db.persist.is_some()), ("lfc-interval", db.lfc_interval.is_some()), ("max-row-errors", db.max_row_errors.is_some())]
    {
        if set {
            w.push((at(key), "ignored: a memfile setting, and the leases are in PostgreSQL".into()));
        }
    }
    let name = match db.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_owned(),
        Some(_) => return Err(Invalid::new(at("name"), "must not be empty")),
        None => return Err(Invalid::new(path, "a postgresql lease database needs \"name\" (the database)")),
    };
    let host = match db.host.as_deref() {
        None => "localhost".to_owned(),
        Some("") => return Err(Invalid::new(at("host"), "must not be empty")),
        Some(h) => h.to_owned(),
    };
    let port = match db.port {
        None | Some(0) => DEFAULT_PGSQL_PORT,
        Some(p) => u16::try_from(p)
            .map_err(|_| Invalid::new(at("port"), format!("{p} is out of range, expected 0..65535")))?,
    };
    let connect_timeout = match db.connect_timeout {
        None => DEFAULT_CONNECT_TIMEOUT,
        Some(t) if t > 0 && t <= i64::from(i32::MAX) => Duration::from_secs(t.unsigned_abs()),
        Some(t) => {
            return Err(Invalid::new(at("connect-timeout"), format!("{t}: must be an integer greater than 0 (seconds)")));
        }
    };
    let max_reconnect_tries = match db.max_reconnect_tries {
        None => 0,
        Some(n) => u32::try_from(n)
            .map_err(|_| Invalid::new(at("max-reconnect-tries"), format!("{n}: must be 0 or more (and fit 32 bits)")))?,
    };
    let reconnect_wait_time = match db.reconnect_wait_time {
        None => Duration::ZERO,
        Some(ms) => u32::try_from(ms).map(|ms| Duration::from_millis(u64::from(ms))).map_err(|_| {
            Invalid::new(at("reconnect-wait-time"), format!("{ms}: must be in 0..4294967295 (milliseconds)"))
        })?,
    };
    let on_fail = match db.on_fail.as_deref() {
        None => OnFail::default(),
        Some("stop-retry-exit") => OnFail::StopRetryExit,
        Some("serve-retry-exit") => OnFail::ServeRetryExit,
        Some("serve-retry-continue") => OnFail::ServeRetryContinue,
        Some(other) => {
            return Err(Invalid::new(
                at("on-fail"),
                format!("{other:?}: expected \"stop-retry-exit\", \"serve-retry-exit\" or \"serve-retry-continue\""),
            ));
        }
    };
    if db.cipher_list.is_some() {
        return Err(Invalid::new(
            at("cipher-list"),
            "not supported for postgresql: the TLS library chooses the cipher suites (TLS 1.2 and 1.3)",
        ));
    }
    let tls = tls(db, path)?;
    if tls.is_some() && host.starts_with('/') {
        return Err(Invalid::new(at("trust-anchor"), "TLS needs a network host, and host is a unix-socket directory"));
    }
    if db.user.as_deref() == Some("") {
        return Err(Invalid::new(at("user"), "must not be empty"));
    }
    Ok(Postgresql {
        name,
        host,
        port,
        user: db.user.clone(),
        password: db.password.clone(),
        connect_timeout,
        max_reconnect_tries,
        reconnect_wait_time,
        on_fail,
        tls,
    })
}

fn tls(db: &wire::LeaseDatabase, path: &str) -> Result<Option<DbTls>, Invalid> {
    let at = |key: &str| format!("{path}.{key}");
    let file = |key: &str, value: &Option<String>| -> Result<Option<PathBuf>, Invalid> {
        match value.as_deref() {
            None => Ok(None),
            Some("") => Err(Invalid::new(at(key), "must not be empty")),
            Some(f) => {
                let meta = std::fs::metadata(f).map_err(|e| Invalid::new(at(key), format!("{f:?}: {e}")))?;
                if !meta.is_file() {
                    return Err(Invalid::new(at(key), format!("{f:?} is not a regular file")));
                }
                Ok(Some(PathBuf::from(f)))
            }
        }
    };
    let ca = file("trust-anchor", &db.trust_anchor)?;
    let cert = file("cert-file", &db.cert_file)?;
    let key = file("key-file", &db.key_file)?;
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err(Invalid::new(at("cert-file"), "needs key-file too")),
        (None, Some(_)) => return Err(Invalid::new(at("key-file"), "needs cert-file too")),
    };
    match ca {
        Some(trust_anchor) => Ok(Some(DbTls { trust_anchor, client_cert })),
        None if client_cert.is_some() => {
            Err(Invalid::new(at("cert-file"), "a client certificate needs trust-anchor (to check the server's)"))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, parse};
    use super::*;

    fn with_db(db: &str) -> String {
        format!(
            r#"{{ "Dhcp4": {{
  "lease-database": {db},
  "subnet4": [ {{ "id": 1, "subnet": "10.0.0.0/24" }} ]
}} }}"#
        )
    }

    fn load(db: &str) -> Result<super::super::Config, ConfigError> {
        parse(&with_db(db), "kea-dhcp4.conf")
    }

    /// The error for `db`; checks it names the file, line 2 (where the map
    /// starts, as every value here is on that line) and `json_path`.
    fn refused(db: &str, json_path: &str) -> String {
        let e = load(db).expect_err("should be refused");
        let msg = e.to_string();
        assert!(msg.starts_with("kea-dhcp4.conf:2:"), "no file:line in {msg}");
        assert!(msg.contains(&format!(": {json_path}: ")), "{json_path} not named in {msg}");
        msg
    }

    #[test]
    fn postgresql_with_kea_defaults() {
        let c = load(r#"{ "type": "postgresql", "name": "kea" }"#).unwrap();
        let p = c.lease_database().postgresql().unwrap();
        assert_eq!((p.name.as_str(), p.host.as_str(), p.port), ("kea", "localhost", 5432));
        assert_eq!((p.user.as_ref(), p.password.as_ref()), (None, None));
        assert_eq!(p.connect_timeout, Duration::from_secs(5));
        assert_eq!((p.max_reconnect_tries, p.reconnect_wait_time), (0, Duration::ZERO));
        assert_eq!((p.on_fail, p.tls.as_ref()), (OnFail::StopRetryExit, None));
        assert!(c.lease_database().memfile().is_none());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn postgresql_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, "x").unwrap();
            p.display().to_string()
        };
        let (ca, cert, key) = (file("ca.pem"), file("c.pem"), file("k.pem"));
        let c = load(&format!(
            r#"{{ "type": "postgresql", "name": "leases", "host": "db.example", "port": 6432, "user": "kea",
                 "password": "hunter2", "connect-timeout": 3, "max-reconnect-tries": 10, "reconnect-wait-time": 500,
                 "on-fail": "serve-retry-continue", "trust-anchor": "{ca}", "cert-file": "{cert}", "key-file": "{key}",
                 "lfc-interval": 10 }}"#
        ))
        .unwrap();
        let p = c.lease_database().postgresql().unwrap();
        assert_eq!((p.host.as_str(), p.port, p.user.as_deref()), ("db.example", 6432, Some("kea")));
        assert_eq!(p.password.as_ref().map(Secret::expose), Some("hunter2"));
        assert_eq!((p.connect_timeout, p.max_reconnect_tries), (Duration::from_secs(3), 10));
        assert_eq!((p.reconnect_wait_time, p.on_fail), (Duration::from_millis(500), OnFail::ServeRetryContinue));
        let tls = p.tls.as_ref().unwrap();
        assert_eq!(tls.trust_anchor, PathBuf::from(&ca));
        assert_eq!(tls.client_cert, Some((PathBuf::from(cert), PathBuf::from(key))));
        assert!(!p.is_unix_socket());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].path.ends_with("lfc-interval") && c.warnings[0].message.contains("memfile setting"));
        assert!(!format!("{c:?}").contains("hunter2"), "the password shows in Debug");
    }

    #[test]
    fn memfile_still_default_and_sql_keys_warned() {
        let c = parse(r#"{ "Dhcp4": { } }"#, "f").unwrap();
        assert_eq!(c.lease_database().memfile(), Some(&Memfile::default()));
        let c = load(r#"{ "type": "memfile", "name": "/tmp/l.csv", "persist": false, "host": "x" }"#).unwrap();
        let m = c.lease_database().memfile().unwrap();
        assert_eq!((m.name.to_str(), m.persist), (Some("/tmp/l.csv"), false));
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].path.ends_with(".host"), "{:?}", c.warnings);
    }

    #[test]
    fn bad_values_name_their_key() {
        let pg = |extra: &str| format!(r#"{{ "type": "postgresql", "name": "kea", {extra} }}"#);
        refused(r#"{ "type": "mysql", "name": "kea" }"#, "Dhcp4.lease-database.type");
        refused(r#"{ "type": "postgresql" }"#, "Dhcp4.lease-database");
        refused(r#"{ "type": "postgresql", "name": "" }"#, "Dhcp4.lease-database.name");
        refused(&pg(r#""port": 70000"#), "Dhcp4.lease-database.port");
        refused(&pg(r#""port": -1"#), "Dhcp4.lease-database.port");
        refused(&pg(r#""connect-timeout": 0"#), "Dhcp4.lease-database.connect-timeout");
        refused(&pg(r#""max-reconnect-tries": -1"#), "Dhcp4.lease-database.max-reconnect-tries");
        refused(&pg(r#""reconnect-wait-time": 4294967296"#), "Dhcp4.lease-database.reconnect-wait-time");
        let m = refused(&pg(r#""on-fail": "retry""#), "Dhcp4.lease-database.on-fail");
        assert!(m.contains("serve-retry-continue"), "{m}");
        refused(&pg(r#""cipher-list": "AES""#), "Dhcp4.lease-database.cipher-list");
        refused(&pg(r#""trust-anchor": "/nonexistent/ca.pem""#), "Dhcp4.lease-database.trust-anchor");
        refused(&pg(r#""host": "/run/postgresql", "trust-anchor": "/etc/hostname""#), "Dhcp4.lease-database.trust-anchor");
        refused(&pg(r#""cert-file": "/etc/hostname", "key-file": "/etc/hostname""#), "Dhcp4.lease-database.cert-file");
        refused(&pg(r#""trust-anchor": "/etc/hostname", "key-file": "/etc/hostname""#), "Dhcp4.lease-database.key-file");
        refused(&pg(r#""user": """#), "Dhcp4.lease-database.user");
        refused(&pg(r#""readonly": true"#), "Dhcp4.lease-database.readonly");
    }

    #[test]
    fn a_password_never_shows_in_an_error() {
        for db in [
            r#"{ "type": "postgresql", "name": "kea", "password": 271828 }"#,
            r#"{ "type": "postgresql", "name": "kea", "password": ["pw-271828"] }"#,
            r#"{ "type": "postgresql", "name": "kea", "password": "pw-271828", "port": "x" }"#,
            r#"{ "type": "postgresql", "name": "kea", "password": "pw-271828", "on-fail": "never" }"#,
        ] {
            let msg = load(db).unwrap_err().to_string();
            assert!(msg.contains("Dhcp4.lease-database"), "{msg}");
            assert!(!msg.contains("271828"), "password in {msg}");
        }
    }
}

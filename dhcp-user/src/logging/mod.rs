//! Kea's `loggers`, written by a `tracing` layer.
//!
//! Operators, their scripts and ISC's Forge read Kea's log files: lines like
//! `2026-12-03 10:00:00.123 INFO  [kea-dhcp4.dhcp4/1234.1407…] DHCP4_STARTED
//! Kea DHCPv4 server version 0.1.0 started`, in the files `Dhcp4.loggers`
//! names, at the severity it sets. tracing stays the engine; [`KeaLayer`]
//! writes each event to the outputs of the Kea logger it belongs to.
//!
//! - Logger name: an event whose target starts with `kea-dhcp4` uses it as
//!   is (`info!(target: "kea-dhcp4.dhcp4", …)`); otherwise the module path
//!   maps to Kea's loggers ([`logger_name`]).
//! - Kea id: a `msgid` field (`msgid = "DHCP4_STARTED"`) is printed before
//!   the message, as Kea prints its message ids. Other fields follow the
//!   message as `key=value`.
//! - Severity: ERROR, WARN, INFO as is; DEBUG is Kea debug level 10 and
//!   TRACE level 55, unless the event has a `debuglevel` field.
//! - A logger without its own entry uses its closest configured ancestor's
//!   (`kea-dhcp4.packets` → `kea-dhcp4`); like Kea, a line goes only to the
//!   outputs of that one entry.
//!
//! `RUST_LOG` keeps working: the developer's stderr format is on when no
//! loggers are configured or when `RUST_LOG` is set.

pub mod format;
pub mod sink;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::loggers::{Destination, Logger, Severity};
use format::Record;
use sink::Sink;

/// Kea's root logger name for the DHCPv4 server.
pub const ROOT: &str = "kea-dhcp4";

/// The Kea logger name for a tracing target: a `kea-dhcp4…` target as is,
/// xdhcpd's modules by what they do (see the module docs).
pub fn logger_name(target: &str) -> Cow<'_, str> {
    if target == ROOT || target.starts_with("kea-dhcp4.") {
        return Cow::Borrowed(target);
    }
    let module = target.strip_prefix("dhcp_user::").map(|m| m.split("::").next().unwrap_or(m));
    let child = match module {
        Some("server" | "net") => "packets",
        Some("leases" | "reclaim") => "leases",
        Some("core" | "dhcp" | "glue") => "alloc-engine",
        Some("config" | "check" | "import") => "dhcpsrv",
        Some("ha" | "peer") => "ha-hooks",
        Some("api" | "kea") => "commands",
        _ => "dhcp4",
    };
    Cow::Owned(format!("{ROOT}.{child}"))
}

/// Kea severity and debug level of a tracing level (see the module docs).
pub fn severity_of(level: &Level) -> (Severity, u8) {
    match *level {
        Level::ERROR => (Severity::Error, 0),
        Level::WARN => (Severity::Warn, 0),
        Level::INFO => (Severity::Info, 0),
        Level::DEBUG => (Severity::Debug, 10),
        _ => (Severity::Debug, 55),
    }
}

/// Whether a logger set to `severity`/`debuglevel` writes an event.
pub fn passes(severity: Severity, debuglevel: u8, event: Severity, event_debug: u8) -> bool {
    event != Severity::None && event >= severity && (event != Severity::Debug || event_debug <= debuglevel)
}

struct Output {
    sink: Arc<Mutex<Sink>>,
    flush: bool,
    pattern: String,
}

struct Active {
    logger: Logger,
    outputs: Vec<Output>,
}

/// The configured loggers, most specific name first.
#[derive(Default)]
struct Loggers(Vec<Active>);

impl Loggers {
    fn find(&self, name: &str) -> Option<&Active> {
        self.0.iter().find(|a| {
            let n = a.logger.name.as_str();
            name == n || (name.starts_with(n) && name.as_bytes().get(n.len()) == Some(&b'.'))
        })
    }

    fn wants(&self, name: &str, sev: Severity, dbg: u8) -> bool {
        self.find(name).is_some_and(|a| !a.outputs.is_empty() && passes(a.logger.severity, a.logger.debuglevel, sev, dbg))
    }

    fn max_level(&self) -> LevelFilter {
        let to_level = |a: &Active| match a.logger.severity {
            _ if a.outputs.is_empty() => LevelFilter::OFF,
            // TRACE too: an event's `debuglevel` field may be lower than 55.
            Severity::Debug => LevelFilter::TRACE,
            Severity::Info => LevelFilter::INFO,
            Severity::Warn => LevelFilter::WARN,
            Severity::Error | Severity::Fatal => LevelFilter::ERROR,
            Severity::None => LevelFilter::OFF,
        };
        self.0.iter().map(to_level).max().unwrap_or(LevelFilter::OFF)
    }
}

/// The shared state behind the layer, its filter and [`Handle`].
#[derive(Clone, Default)]
struct Shared {
    loggers: Arc<RwLock<Arc<Loggers>>>,
    dev_stderr: Arc<AtomicBool>,
}

/// Opening an output failed; the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}: {1}")]
pub struct OpenError(pub String, #[source] pub std::io::Error);

/// Changes where the installed layer writes (start-up, reconfiguration).
#[derive(Clone)]
pub struct Handle {
    shared: Shared,
    rust_log: bool,
}

impl Handle {
    /// Writes to `loggers` from now on, replacing what was configured. An
    /// output that cannot be opened fails the whole change, as in Kea.
    pub fn configure(&self, loggers: &[Logger]) -> Result<(), OpenError> {
        let mut opened: HashMap<Destination, Arc<Mutex<Sink>>> = HashMap::new();
        let mut active = Vec::new();
        for l in loggers {
            let mut outputs = Vec::new();
            for o in &l.outputs {
                let sink = match opened.get(&o.destination) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let s = Sink::open(&o.destination, o.maxsize, o.maxver)
                            .map_err(|e| OpenError(format!("{:?}", o.destination), e))?;
                        let s = Arc::new(Mutex::new(s));
                        opened.insert(o.destination.clone(), Arc::clone(&s));
                        s
                    }
                };
                let default = match o.destination {
                    Destination::Syslog(_) => format::DEFAULT_SYSLOG_PATTERN,
                    _ => format::DEFAULT_PATTERN,
                };
                outputs.push(Output { sink, flush: o.flush, pattern: o.pattern.clone().unwrap_or_else(|| default.into()) });
            }
            active.push(Active { logger: l.clone(), outputs });
        }
        // A name given twice: as in Kea's logger manager (log4cplus), the
        // later entry's severity and debug level win, and the outputs of
        // both stay attached.
        let mut merged: Vec<Active> = Vec::new();
        for a in active {
            match merged.iter_mut().find(|m| m.logger.name == a.logger.name) {
                Some(m) => {
                    m.logger.severity = a.logger.severity;
                    m.logger.debuglevel = a.logger.debuglevel;
                    for o in a.outputs {
                        // One file named by both: written once.
                        if !m.outputs.iter().any(|x| Arc::ptr_eq(&x.sink, &o.sink)) {
                            m.outputs.push(o);
                        }
                    }
                }
                None => merged.push(a),
            }
        }
        let mut active = merged;
        // Most specific first, so that `find` returns the closest ancestor.
        active.sort_by_key(|a| std::cmp::Reverse(a.logger.name.len()));
        let old = std::mem::replace(&mut *self.shared.loggers.write().unwrap_or_else(|e| e.into_inner()), Arc::new(Loggers(active)));
        flush_all(&old);
        self.shared.dev_stderr.store(self.rust_log || loggers.is_empty(), Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
        Ok(())
    }

    /// Flushes buffered lines (before the process exits).
    pub fn flush(&self) {
        flush_all(&self.shared.loggers.read().unwrap_or_else(|e| e.into_inner()));
    }
}

fn flush_all(l: &Loggers) {
    for a in &l.0 {
        for o in &a.outputs {
            let _ = o.sink.lock().unwrap_or_else(|e| e.into_inner()).flush();
        }
    }
}

static GLOBAL: OnceLock<Handle> = OnceLock::new();

/// The handle [`init`] installed, for whoever reloads the configuration.
pub fn global() -> Option<&'static Handle> {
    GLOBAL.get()
}

/// Installs the process's subscriber: the developer's stderr format under
/// `RUST_LOG` (default `info`) and the Kea layer, with no loggers yet.
pub fn init() -> Handle {
    let rust_log = std::env::var_os("RUST_LOG").is_some();
    let shared = Shared::default();
    shared.dev_stderr.store(true, Ordering::Relaxed);
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let on = Arc::clone(&shared.dev_stderr);
    let dev = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(tracing_subscriber::filter::FilterExt::and(
            env,
            tracing_subscriber::filter::filter_fn(move |_| on.load(Ordering::Relaxed)),
        ));
    let kea = KeaLayer { shared: shared.clone() }.with_filter(KeaFilter { shared: shared.clone() });
    let _ = tracing_subscriber::registry().with(dev).with(kea).try_init();
    let handle = Handle { shared, rust_log };
    let _ = GLOBAL.set(handle.clone());
    handle
}

/// Lets through what some configured logger writes.
struct KeaFilter {
    shared: Shared,
}

impl<S> Filter<S> for KeaFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        let (sev, dbg) = severity_of(meta.level());
        let loggers = self.shared.loggers.read().unwrap_or_else(|e| e.into_inner());
        // An event's own `debuglevel` may be lower than the default.
        let dbg = if sev == Severity::Debug { 0 } else { dbg };
        meta.is_event() && loggers.wants(&logger_name(meta.target()), sev, dbg)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.shared.loggers.read().unwrap_or_else(|e| e.into_inner()).max_level())
    }
}

/// Writes events in Kea's format to the outputs of their Kea logger.
pub struct KeaLayer {
    shared: Shared,
}

#[derive(Default)]
struct Fields {
    message: String,
    msgid: Option<String>,
    debuglevel: Option<u64>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        match f.name() {
            "msgid" => self.msgid = Some(v.to_owned()),
            "message" => self.message.push_str(v),
            n => {
                let _ = write!(self.rest, " {n}={v}");
            }
        }
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        if f.name() == "debuglevel" {
            self.debuglevel = Some(v);
        } else {
            self.record_debug(f, &v);
        }
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        if f.name() == "debuglevel" {
            self.debuglevel = Some(v.max(0) as u64);
        } else {
            self.record_debug(f, &v);
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        match f.name() {
            "message" => {
                let _ = write!(self.message, "{v:?}");
            }
            n => {
                let _ = write!(self.rest, " {n}={v:?}");
            }
        }
    }
}

impl Fields {
    /// Kea's `%m`: message id, message, then the other fields.
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(id) = &self.msgid {
            s.push_str(id);
            s.push(' ');
        }
        s.push_str(&self.message);
        s.push_str(&self.rest);
        s
    }
}

fn thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as u64 }
}

impl<S: Subscriber> Layer<S> for KeaLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let name = logger_name(meta.target());
        let loggers = Arc::clone(&self.shared.loggers.read().unwrap_or_else(|e| e.into_inner()));
        let Some(active) = loggers.find(&name) else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (sev, default_dbg) = severity_of(meta.level());
        let dbg = fields.debuglevel.map_or(default_dbg, |d| d.min(99) as u8);
        if !passes(active.logger.severity, active.logger.debuglevel, sev, dbg) {
            return;
        }
        let message = fields.text();
        let record = Record {
            when: SystemTime::now(),
            severity: sev,
            logger: &name,
            pid: std::process::id(),
            thread: thread_id(),
            message: &message,
            file: meta.file(),
            line: meta.line(),
        };
        let mut line = String::new();
        for o in &active.outputs {
            line.clear();
            format::render(&o.pattern, &record, &mut line);
            let _ = o.sink.lock().unwrap_or_else(|e| e.into_inner()).write(sev, &line, o.flush);
        }
    }
}

#[cfg(test)]
mod tests;

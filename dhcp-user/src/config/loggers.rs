//! `Dhcp4.loggers`, read as Kea 2.2 reads it (`log_parser.cc`, `logging_info.cc`).
//!
//! Operators move their `kea-dhcp4.conf` over unchanged, so the loggers they
//! configured (names, severities, files, rotation) must keep working: the
//! `logging` module turns this into `tracing` outputs. Kea's rules kept here:
//! `name` and `severity` are mandatory; `debuglevel` is 0–99 (default 0); a
//! severity Kea does not know is read as INFO (Kea logs `LOG_BAD_SEVERITY`
//! and carries on; we warn); `output_options` entries need `output`, and
//! default to `flush` true, `maxsize` 10240000, `maxver` 1, the default
//! pattern. An entry without `output_options` has no output, as in Kea.
//! Deliberate difference: a negative `maxsize`/`maxver` is refused (Kea
//! casts it to an unsigned number or treats it as "no backups").

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::Invalid;

/// Stage 1: one `loggers` entry exactly as Kea spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WireLogger {
    /// Logger name, e.g. `kea-dhcp4` or `kea-dhcp4.packets`.
    pub name: Option<String>,
    /// FATAL, ERROR, WARN, INFO, DEBUG or NONE (any case).
    pub severity: Option<String>,
    /// 0–99, only meaningful with DEBUG.
    pub debuglevel: Option<i64>,
    /// Where the lines go (Kea spells this key with an underscore).
    #[serde(rename = "output_options")]
    pub output_options: Option<Vec<WireOutput>>,
    /// Kept by Kea, unused by both.
    #[allow(dead_code)]
    pub user_context: Option<Map<String, Value>>,
    /// Documentation by definition; accepted and unused.
    #[allow(dead_code)]
    pub comment: Option<String>,
}

/// Stage 1: one `output_options` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireOutput {
    /// A file path, `stdout`, `stderr`, `syslog` or `syslog:FACILITY`.
    pub output: Option<String>,
    /// Flush after every line (default true).
    pub flush: Option<bool>,
    /// Rotate a file when it would exceed this many bytes (0: never).
    pub maxsize: Option<u64>,
    /// How many rotated files to keep.
    pub maxver: Option<u32>,
    /// A log4cplus pattern replacing the default layout.
    pub pattern: Option<String>,
}

/// A Kea severity, most verbose first so that `<=` compares verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Everything up to the logger's debuglevel.
    Debug,
    /// Normal operation.
    Info,
    /// Something unusual that the server handled.
    Warn,
    /// Something failed.
    Error,
    /// The server cannot go on.
    Fatal,
    /// Nothing at all.
    None,
}

impl Severity {
    /// Kea's `getSeverity`: case-insensitive; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Severity> {
        const ALL: [(&str, Severity); 6] = [
            ("DEBUG", Severity::Debug),
            ("INFO", Severity::Info),
            ("WARN", Severity::Warn),
            ("ERROR", Severity::Error),
            ("FATAL", Severity::Fatal),
            ("NONE", Severity::None),
        ];
        ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, v)| *v)
    }

    /// The name log4cplus prints for `%p`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::None => "NONE",
        }
    }
}

/// Where one output writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// syslog(3) with this facility name (`LOCAL0` for plain `syslog`,
    /// Kea's root logger name `kea` for `syslog:`).
    Syslog(String),
    /// A file, appended to, rotated by size.
    File(PathBuf),
}

/// One validated `output_options` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where it writes.
    pub destination: Destination,
    /// Flush after every line.
    pub flush: bool,
    /// Rotate a file at this size in bytes; 0 never rotates.
    pub maxsize: u64,
    /// Rotated files kept (`file.1` … `file.N`).
    pub maxver: u32,
    /// log4cplus pattern; `None` means Kea's default for the destination.
    pub pattern: Option<String>,
}

/// One validated `loggers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logger {
    /// Full Kea logger name (`kea-dhcp4`, `kea-dhcp4.packets`, …).
    pub name: String,
    /// Least severe level written.
    pub severity: Severity,
    /// Highest debug level written when `severity` is DEBUG.
    pub debuglevel: u8,
    /// Outputs, in file order; empty writes nothing.
    pub outputs: Vec<Output>,
}

/// Kea's `LoggingDestination` defaults.
const DEFAULT_MAXSIZE: u64 = 10_240_000;
const DEFAULT_MAXVER: u32 = 1;

/// Stage 2 of `Dhcp4.loggers`: Kea's checks, each error naming its path;
/// warnings (path, message) for what Kea accepts with a complaint.
pub(crate) fn parse(
    list: Vec<WireLogger>,
    path: &str,
    warnings: &mut Vec<(String, String)>,
) -> Result<Vec<Logger>, Invalid> {
    list.into_iter().enumerate().map(|(i, l)| logger(l, &format!("{path}[{i}]"), warnings)).collect()
}

fn logger(l: WireLogger, path: &str, warnings: &mut Vec<(String, String)>) -> Result<Logger, Invalid> {
    let name = l.name.ok_or_else(|| Invalid::new(path, "loggers entry does not have a mandatory 'name' element"))?;
    let sev = l
        .severity
        .ok_or_else(|| Invalid::new(path, "loggers entry does not have a mandatory 'severity' element"))?;
    let severity = Severity::parse(&sev).unwrap_or_else(|| {
        warnings.push((format!("{path}.severity"), format!("unrecognized log severity: {sev}; INFO is used, as Kea does")));
        Severity::Info
    });
    let debuglevel = match l.debuglevel {
        None => 0,
        Some(d @ 0..=99) => d as u8,
        Some(d) => {
            return Err(Invalid::new(format!("{path}.debuglevel"), format!("Unsupported debuglevel value '{d}', expected 0-99")))
        }
    };
    let outputs = l
        .output_options
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(j, o)| output(o, &format!("{path}.output_options[{j}]")))
        .collect::<Result<_, _>>()?;
    Ok(Logger { name, severity, debuglevel, outputs })
}

fn output(o: WireOutput, path: &str) -> Result<Output, Invalid> {
    let out = o
        .output
        .ok_or_else(|| Invalid::new(path, "output_options entry does not have a mandatory 'output' element"))?;
    let destination = match out.as_str() {
        "stdout" => Destination::Stdout,
        "stderr" => Destination::Stderr,
        "syslog" => Destination::Syslog("LOCAL0".into()),
        "syslog:" => Destination::Syslog("kea".into()),
        s if s.starts_with("syslog:") => Destination::Syslog(s["syslog:".len()..].into()),
        "" => return Err(Invalid::new(format!("{path}.output"), "empty output: a file path, stdout, stderr or syslog")),
        s => Destination::File(PathBuf::from(s)),
    };
    let maxsize = o.maxsize.unwrap_or(DEFAULT_MAXSIZE);
    // Kea hands log4cplus the size in bytes, KB or MB and refuses what still
    // does not fit in an int32 of MB.
    if maxsize / 1_000_000 > i32::MAX as u64 {
        return Err(Invalid::new(format!("{path}.maxsize"), format!("expected maxsize < {}MB", i32::MAX)));
    }
    Ok(Output {
        destination,
        flush: o.flush.unwrap_or(true),
        maxsize,
        maxver: o.maxver.unwrap_or(DEFAULT_MAXVER),
        pattern: o.pattern.filter(|p| !p.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> Result<(Vec<Logger>, Vec<(String, String)>), Invalid> {
        let list: Vec<WireLogger> = serde_json::from_str(json).unwrap();
        let mut w = Vec::new();
        parse(list, "Dhcp4.loggers", &mut w).map(|l| (l, w))
    }

    #[test]
    fn forge_logger() {
        let (l, w) = run(
            r#"[{"name": "kea-dhcp4", "severity": "DEBUG", "debuglevel": 99,
                 "output_options": [{"output": "/tmp/kea.log"}], "user-context": {"a": 1}, "comment": "c"}]"#,
        )
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(
            l,
            [Logger {
                name: "kea-dhcp4".into(),
                severity: Severity::Debug,
                debuglevel: 99,
                outputs: vec![Output {
                    destination: Destination::File("/tmp/kea.log".into()),
                    flush: true,
                    maxsize: 10_240_000,
                    maxver: 1,
                    pattern: None,
                }],
            }]
        );
    }

    #[test]
    fn destinations_and_options() {
        let (l, _) = run(
            r#"[{"name": "kea-dhcp4.packets", "severity": "warn", "output_options": [
                 {"output": "stdout", "flush": false}, {"output": "stderr"}, {"output": "syslog"},
                 {"output": "syslog:local3"}, {"output": "syslog:"},
                 {"output": "f.log", "maxsize": 0, "maxver": 8, "pattern": "%m\n"}]}]"#,
        )
        .unwrap();
        let o = &l[0].outputs;
        assert_eq!(l[0].severity, Severity::Warn);
        assert_eq!(l[0].debuglevel, 0);
        assert_eq!(o[0].destination, Destination::Stdout);
        assert!(!o[0].flush);
        assert_eq!(o[1].destination, Destination::Stderr);
        assert_eq!(o[2].destination, Destination::Syslog("LOCAL0".into()));
        assert_eq!(o[3].destination, Destination::Syslog("local3".into()));
        assert_eq!(o[4].destination, Destination::Syslog("kea".into()));
        assert_eq!((o[5].maxsize, o[5].maxver, o[5].pattern.as_deref()), (0, 8, Some("%m\n")));
    }

    #[test]
    fn no_output_options_means_no_output() {
        let (l, _) = run(r#"[{"name": "kea-dhcp4", "severity": "INFO"}]"#).unwrap();
        assert!(l[0].outputs.is_empty());
    }

    #[test]
    fn unknown_severity_is_info_with_warning() {
        let (l, w) = run(r#"[{"name": "kea-dhcp4", "severity": "LOUD"}]"#).unwrap();
        assert_eq!(l[0].severity, Severity::Info);
        assert_eq!(w[0].0, "Dhcp4.loggers[0].severity");
    }

    #[test]
    fn refusals_name_the_path() {
        let e = run(r#"[{"severity": "INFO"}]"#).unwrap_err();
        assert_eq!(e.path, "Dhcp4.loggers[0]");
        assert!(e.message.contains("'name'"));
        let e = run(r#"[{"name": "kea-dhcp4"}]"#).unwrap_err();
        assert!(e.message.contains("'severity'"));
        let e = run(r#"[{"name": "kea-dhcp4", "severity": "DEBUG", "debuglevel": 100}]"#).unwrap_err();
        assert_eq!(e.path, "Dhcp4.loggers[0].debuglevel");
        assert!(e.message.contains("expected 0-99"));
        let e = run(r#"[{"name": "a", "severity": "DEBUG", "debuglevel": -1}]"#).unwrap_err();
        assert_eq!(e.path, "Dhcp4.loggers[0].debuglevel");
        let e = run(r#"[{"name": "a", "severity": "INFO", "output_options": [{"flush": true}]}]"#).unwrap_err();
        assert_eq!(e.path, "Dhcp4.loggers[0].output_options[0]");
        assert!(e.message.contains("'output'"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<Vec<WireLogger>>(r#"[{"name": "a", "severity": "INFO", "level": 1}]"#).is_err());
        assert!(serde_json::from_str::<Vec<WireOutput>>(r#"[{"output": "stdout", "rotate": 1}]"#).is_err());
    }
}

//! `xdhcpd check FILE...`: what is wrong with one server's configuration,
//! and with the servers of each HA relationship taken together.
//!
//! Loading a file (`config::load`) already refuses anything a single server
//! cannot run. What it cannot see is the pair: an HA standby only helps if
//! it knows the same peers, uses the same timers and has the same subnets,
//! pools, reservations and options as the server it replaces. A mismatch is
//! silent until the day the primary fails, which is why it is checked here,
//! ahead of time, from all the files at once.
//!
//! # Layout
//!
//! - this file: [`Finding`], [`Severity`], the I/O shell ([`check_paths`])
//!   and output ([`render_text`], [`render_json`]).
//! - `single/`: checks of one server: `subnet.rs` (pools, reservations,
//!   options that contradict the prefix), `timers.rs` (HA timers against
//!   lease lifetimes).
//! - `cross/`: checks across the given servers, relationships grouped by
//!   peer names in `mod.rs`: `peers.rs` (peers lists, roles, modes, timers,
//!   URLs), `subnets.rs` (subnets served by a relationship),
//!   `interfaces.rs`.
//! - `locate.rs`: JSON path → `line:column`, for every finding.
//!
//! The checks are pure functions of validated configs ([`Input`]); only
//! [`check_paths`] reads files.

#![warn(missing_docs)]

mod cross;
mod locate;
mod single;

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::{self, Config, ConfigError};

pub use cross::check_peers;
pub use single::check_server;

/// How bad a finding is. Only errors make `xdhcpd check` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to change unless it surprises you.
    Info,
    /// Works, but likely not as intended, or fragile.
    Warning,
    /// The configuration (or the pair) will misbehave: refused at load,
    /// clients without service, or no failover.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem, tied to a file and JSON path, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// The configuration file the finding is about.
    pub file: String,
    /// 1-based line of `path`'s value, when it could be located.
    pub line: Option<u32>,
    /// 1-based column of `path`'s value, when it could be located.
    pub column: Option<u32>,
    /// JSON path, e.g. `Dhcp4.subnet4[1].pools`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Finding {
    /// A finding not yet located (line and column are filled in by the shell).
    pub fn new(
        severity: Severity,
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            file: file.into(),
            line: None,
            column: None,
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Finding {
    /// One line: `severity: file:line:col: path: message (fix: …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, " (fix: {})", self.fix)?;
        }
        Ok(())
    }
}

/// One successfully loaded configuration, as the checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The file name as given on the command line.
    pub file: &'a str,
    /// The validated configuration.
    pub config: &'a Config,
    /// Index of `libdhcp_ha.so` in `Dhcp4.hooks-libraries` (for paths).
    pub ha_hook: Option<usize>,
}

impl Input<'_> {
    /// JSON path of relationship `r`.
    fn relationship_path(&self, r: usize) -> String {
        match self.ha_hook {
            Some(h) => format!("Dhcp4.hooks-libraries[{h}].parameters.high-availability[{r}]"),
            None => format!("Dhcp4.hooks-libraries.parameters.high-availability[{r}]"),
        }
    }

    /// A short name for messages: the file name without directories.
    fn short(&self) -> &str {
        Path::new(self.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.file)
    }
}

/// A load error as a finding: it keeps the loader's file, position and path.
pub fn load_error_finding(file: &str, e: &ConfigError) -> Finding {
    let (at_file, line, column) = match e.location() {
        Some(at) => (at.file.clone(), at.line, at.column),
        None => (file.to_owned(), None, None),
    };
    let message = match e {
        ConfigError::Read { source, .. } => format!("cannot read: {source}"),
        ConfigError::Syntax { message, .. } | ConfigError::Invalid { message, .. } => {
            message.clone()
        }
        ConfigError::Include {
            target, message, ..
        } => format!("cannot include \"{target}\": {message}"),
        ConfigError::UnknownKey { key, .. } => format!("unknown or unsupported key \"{key}\""),
    };
    Finding {
        severity: Severity::Error,
        file: at_file,
        line,
        column,
        path: e.path().unwrap_or("").to_owned(),
        message: format!("refused at load: {message}"),
        fix: "correct this value; xdhcpd will not start with this file (cross-peer checks skip it)"
            .into(),
    }
}

/// All checks on already loaded configs: load warnings as info, each
/// server alone, then the servers together.
pub fn check(inputs: &[Input<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for input in inputs {
        for w in &input.config.warnings {
            out.push(Finding {
                severity: Severity::Info,
                file: w.at.file.clone(),
                line: w.at.line,
                column: w.at.column,
                path: w.path.clone(),
                message: w.message.clone(),
                fix: "nothing, unless you relied on it".into(),
            });
        }
        out.extend(check_server(input));
    }
    out.extend(check_peers(inputs));
    out
}

/// Loads each file and runs every check; findings are located in their
/// files. Files that fail to load produce one error each and take no part
/// in the cross-peer checks.
pub fn check_paths<P: AsRef<Path>>(paths: &[P]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut loaded = Vec::new();
    for p in paths {
        let name = p.as_ref().display().to_string();
        match config::load(p) {
            Ok(c) => {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                loaded.push((name, c, text));
            }
            Err(e) => findings.push(load_error_finding(&name, &e)),
        }
    }
    let inputs: Vec<Input<'_>> = loaded
        .iter()
        .map(|(file, config, text)| Input {
            file,
            config,
            ha_hook: locate::ha_hook_index(text),
        })
        .collect();
    let mut checked = check(&inputs);
    for f in checked.iter_mut().filter(|f| f.line.is_none()) {
        if let Some((_, _, text)) = loaded.iter().find(|(name, _, _)| *name == f.file)
            && let Some((l, c)) = locate::line_col(text, &f.path)
        {
            f.line = Some(l);
            f.column = Some(c);
        }
    }
    findings.extend(checked);
    findings
}

/// Whether any finding is an error (the exit status of `xdhcpd check`).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Human output: one finding per line, then a one-line summary.
pub fn render_text(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&f.to_string());
        s.push('\n');
    }
    let count = |sev| findings.iter().filter(|f| f.severity == sev).count();
    s.push_str(&format!(
        "{} error(s), {} warning(s), {} info\n",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    s
}

/// Tool output: a JSON array of finding objects.
pub fn render_json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".into())
}

/// `xdhcpd check`: prints the findings; an error result (exit status 1)
/// when any finding is an error.
pub fn cli<P: AsRef<Path>>(paths: &[P], json: bool) -> anyhow::Result<()> {
    let findings = check_paths(paths);
    if json {
        println!("{}", render_json(&findings));
    } else {
        print!("{}", render_text(&findings));
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    anyhow::ensure!(errors == 0, "{errors} error(s) found");
    Ok(())
}

//! Kea's line layout: the subset of log4cplus's `PatternLayout` that Kea's
//! default patterns and operators' `pattern` settings use, so tools that
//! parse Kea's log lines parse ours.
//!
//! Conversions: `%D{…}` (local time) and `%d{…}` (UTC) with `%Y %y %m %d %H
//! %M %S %q` (milliseconds) `%Q` (milliseconds with microseconds) `%%`
//! inside the braces; `%p` severity, `%c` / `%c{N}` logger name (last N
//! components), `%i` process id, `%t` / `%T` thread id, `%m` message, `%n`
//! newline, `%F` / `%L` source file and line, `%%`. Each may carry log4cplus's
//! `-` (left-align), minimum width and `.max` width. Anything else is copied.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::loggers::Severity;

/// Kea's default pattern for console and file outputs (`output_option.cc`).
pub const DEFAULT_PATTERN: &str = "%D{%Y-%m-%d %H:%M:%S.%q} %-5p [%c/%i.%t] %m\n";
/// Kea's default pattern for syslog outputs (syslog adds the time itself).
pub const DEFAULT_SYSLOG_PATTERN: &str = "%-5p [%c.%t] %m\n";

/// One event, everything a pattern can print.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// When it happened.
    pub when: SystemTime,
    /// Kea severity.
    pub severity: Severity,
    /// Full Kea logger name, e.g. `kea-dhcp4.packets`.
    pub logger: &'a str,
    /// Process id (`%i`).
    pub pid: u32,
    /// Thread id as log4cplus prints it (`%t`).
    pub thread: u64,
    /// The text after the logger: message id, then message.
    pub message: &'a str,
    /// Source file, if known.
    pub file: Option<&'a str>,
    /// Source line, if known.
    pub line: Option<u32>,
}

/// A broken-down time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Four-digit year.
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–60.
    pub second: u32,
    /// 0–999999.
    pub micros: u32,
}

/// Breaks `t` down in the local time zone (`local`) or UTC, as log4cplus's
/// `%D` and `%d` do.
pub fn stamp(t: SystemTime, local: bool) -> Stamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as libc::time_t;
    // SAFETY: localtime_r/gmtime_r write only into `tm`, which is ours.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        if local {
            libc::localtime_r(&secs, &mut tm);
        } else {
            libc::gmtime_r(&secs, &mut tm);
        }
    }
    Stamp {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        micros: d.subsec_micros(),
    }
}

fn date(fmt: &str, s: &Stamp, out: &mut String) {
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match it.next() {
            Some('Y') => write!(out, "{:04}", s.year),
            Some('y') => write!(out, "{:02}", s.year.rem_euclid(100)),
            Some('m') => write!(out, "{:02}", s.month),
            Some('d') => write!(out, "{:02}", s.day),
            Some('H') => write!(out, "{:02}", s.hour),
            Some('M') => write!(out, "{:02}", s.minute),
            Some('S') => write!(out, "{:02}", s.second),
            Some('q') => write!(out, "{:03}", s.micros / 1000),
            Some('Q') => write!(out, "{:03}.{:03}", s.micros / 1000, s.micros % 1000),
            Some('%') => write!(out, "%"),
            Some(o) => write!(out, "%{o}"),
            None => write!(out, "%"),
        };
    }
}

/// Appends `r` laid out by `pattern` to `out`.
pub fn render(pattern: &str, r: &Record, out: &mut String) {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = pattern[i..].chars().next().unwrap_or('%');
        if c != '%' {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        i += 1;
        let left = b.get(i) == Some(&b'-');
        if left {
            i += 1;
        }
        let num = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            pattern[s..*i].parse::<usize>().ok()
        };
        let min = num(&mut i);
        let max = if b.get(i) == Some(&b'.') {
            i += 1;
            num(&mut i)
        } else {
            None
        };
        let Some(&conv) = b.get(i) else {
            out.push_str(&pattern[start..]);
            break;
        };
        i += 1;
        let mut arg = None;
        if b.get(i) == Some(&b'{') {
            if let Some(end) = pattern[i..].find('}') {
                arg = Some(&pattern[i + 1..i + end]);
                i += end + 1;
            }
        }
        let mut field = String::new();
        match conv {
            b'D' | b'd' => date(arg.unwrap_or("%Y-%m-%d %H:%M:%S"), &stamp(r.when, conv == b'D'), &mut field),
            b'p' => field.push_str(r.severity.as_str()),
            b'c' => {
                let n = arg.and_then(|a| a.parse::<usize>().ok()).unwrap_or(usize::MAX);
                let parts: Vec<&str> = r.logger.split('.').collect();
                field.push_str(&parts[parts.len().saturating_sub(n)..].join("."));
            }
            b'i' => field.push_str(&r.pid.to_string()),
            b't' | b'T' => field.push_str(&r.thread.to_string()),
            b'm' => field.push_str(r.message),
            b'n' => field.push('\n'),
            b'F' => field.push_str(r.file.unwrap_or("")),
            b'L' => field.push_str(&r.line.map(|l| l.to_string()).unwrap_or_default()),
            b'%' => field.push('%'),
            _ => {
                out.push_str(&pattern[start..i]);
                continue;
            }
        }
        if let Some(max) = max {
            // log4cplus truncates from the left.
            let n = field.chars().count();
            if n > max {
                field = field.chars().skip(n - max).collect();
            }
        }
        let pad = min.unwrap_or(0).saturating_sub(field.chars().count());
        if !left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&field);
        if left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rec(message: &str) -> Record<'_> {
        Record {
            // 2026-12-03 10:00:00.123456 UTC
            when: UNIX_EPOCH + Duration::from_micros(1_796_292_000_123_456),
            severity: Severity::Info,
            logger: "kea-dhcp4.dhcp4",
            pid: 1234,
            thread: 140_000_000_000_001,
            message,
            file: Some("src/daemon.rs"),
            line: Some(7),
        }
    }

    fn show(p: &str, r: &Record) -> String {
        let mut s = String::new();
        render(p, r, &mut s);
        s
    }

    #[test]
    fn kea_default_layout() {
        let r = rec("DHCP4_STARTED Kea DHCPv4 server version 0.1.0 started");
        let s = stamp(r.when, true);
        let when = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.123",
            s.year, s.month, s.day, s.hour, s.minute, s.second
        );
        assert_eq!(
            show(DEFAULT_PATTERN, &r),
            format!(
                "{when} INFO  [kea-dhcp4.dhcp4/1234.140000000000001] DHCP4_STARTED Kea DHCPv4 server version 0.1.0 started\n"
            )
        );
        assert_eq!(show(DEFAULT_SYSLOG_PATTERN, &r), "INFO  [kea-dhcp4.dhcp4.140000000000001] DHCP4_STARTED Kea DHCPv4 server version 0.1.0 started\n");
    }

    #[test]
    fn utc_dates_widths_and_literals() {
        let r = rec("hello");
        assert_eq!(show("%d{%Y-%m-%d %H:%M:%S.%Q %y%%}|%n", &r), "2026-12-03 10:00:00.123.456 26%|\n");
        assert_eq!(show("[%8p][%-8p][%.3c][%c{1}]", &r), "[    INFO][INFO    ][cp4][dhcp4]");
        assert_eq!(show("%F:%L %x 100%% %", &r), "src/daemon.rs:7 %x 100% %");
        assert_eq!(show("é%m", &r), "éhello");
    }
}

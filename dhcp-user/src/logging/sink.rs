//! Where formatted lines go: files rotated the way log4cplus's
//! `RollingFileAppender` rotates Kea's (`file`, `file.1` … `file.N`),
//! stdout, stderr, syslog(3).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::config::loggers::{Destination, Severity};

/// log4cplus refuses to roll files smaller than this (`MINIMUM_ROLLING_LOG_SIZE`).
pub const MIN_ROLLING_SIZE: u64 = 200 * 1024;

/// An appending file that rolls over by size.
#[derive(Debug)]
pub struct RollingFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    maxsize: u64,
    maxver: u32,
}

impl RollingFile {
    /// Opens `path` for appending; `maxsize` 0 never rotates.
    pub fn open(path: &Path, maxsize: u64, maxver: u32) -> io::Result<RollingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let maxsize = if maxsize == 0 { 0 } else { maxsize.max(MIN_ROLLING_SIZE) };
        Ok(RollingFile { path: path.to_owned(), out: BufWriter::new(file), size, maxsize, maxver })
    }

    /// Appends one line, first rolling over if it would pass `maxsize`.
    pub fn write_line(&mut self, line: &[u8], flush: bool) -> io::Result<()> {
        if self.maxsize > 0 && self.size > 0 && self.size + line.len() as u64 > self.maxsize {
            self.roll()?;
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        if flush {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    /// `file.N-1` → `file.N`, …, `file` → `file.1`; with `maxver` 0 the file
    /// is truncated, as log4cplus does.
    fn roll(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.maxver > 0 {
            let _ = std::fs::remove_file(self.numbered(self.maxver));
            for n in (1..self.maxver).rev() {
                let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.out = BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}

/// An open output.
#[derive(Debug)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// syslog(3) with this facility (already shifted, `LOG_LOCAL0` …).
    Syslog(libc::c_int),
    /// A rolling file.
    File(RollingFile),
}

/// syslog facility by name (case-insensitive); unknown names are `LOG_USER`.
pub fn facility(name: &str) -> libc::c_int {
    const ALL: [(&str, libc::c_int); 18] = [
        ("kern", libc::LOG_KERN),
        ("user", libc::LOG_USER),
        ("mail", libc::LOG_MAIL),
        ("daemon", libc::LOG_DAEMON),
        ("auth", libc::LOG_AUTH),
        ("syslog", libc::LOG_SYSLOG),
        ("lpr", libc::LOG_LPR),
        ("news", libc::LOG_NEWS),
        ("uucp", libc::LOG_UUCP),
        ("cron", libc::LOG_CRON),
        ("local0", libc::LOG_LOCAL0),
        ("local1", libc::LOG_LOCAL1),
        ("local2", libc::LOG_LOCAL2),
        ("local3", libc::LOG_LOCAL3),
        ("local4", libc::LOG_LOCAL4),
        ("local5", libc::LOG_LOCAL5),
        ("local6", libc::LOG_LOCAL6),
        ("local7", libc::LOG_LOCAL7),
    ];
    ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or(libc::LOG_USER, |(_, f)| *f)
}

fn priority(s: Severity) -> libc::c_int {
    match s {
        Severity::Fatal => libc::LOG_CRIT,
        Severity::Error => libc::LOG_ERR,
        Severity::Warn => libc::LOG_WARNING,
        Severity::Info | Severity::None => libc::LOG_INFO,
        Severity::Debug => libc::LOG_DEBUG,
    }
}

impl Sink {
    /// Opens a destination (creates a file output's file).
    pub fn open(d: &Destination, maxsize: u64, maxver: u32) -> io::Result<Sink> {
        Ok(match d {
            Destination::Stdout => Sink::Stdout,
            Destination::Stderr => Sink::Stderr,
            Destination::Syslog(f) => {
                static OPENED: std::sync::Once = std::sync::Once::new();
                // SAFETY: a null ident makes syslog use the program name.
                OPENED.call_once(|| unsafe { libc::openlog(std::ptr::null(), libc::LOG_PID, libc::LOG_USER) });
                Sink::Syslog(facility(f))
            }
            Destination::File(p) => Sink::File(RollingFile::open(p, maxsize, maxver)?),
        })
    }

    /// Writes one formatted line.
    pub fn write(&mut self, severity: Severity, line: &str, flush: bool) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(line.as_bytes())?;
                if flush { o.flush() } else { Ok(()) }
            }
            Sink::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Sink::Syslog(f) => {
                let text = CString::new(line.trim_end_matches('\n').replace('\0', " ")).unwrap_or_default();
                // SAFETY: constant "%s" format with one NUL-terminated string.
                unsafe { libc::syslog(priority(severity) | *f, c"%s".as_ptr(), text.as_ptr()) };
                Ok(())
            }
            Sink::File(f) => f.write_line(line.as_bytes(), flush),
        }
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => io::stdout().flush(),
            Sink::File(f) => f.flush(),
            Sink::Stderr | Sink::Syslog(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_like_log4cplus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kea.log");
        let mut f = RollingFile::open(&path, 1, 2).unwrap();
        assert_eq!(f.maxsize, MIN_ROLLING_SIZE);
        let line = vec![b'x'; 100 * 1024];
        for tag in [b'a', b'b', b'c', b'd'] {
            let mut l = line.clone();
            l[0] = tag;
            f.write_line(&l, true).unwrap();
        }
        // a+b fill the first file, c+d the second; one more rolls again.
        let mut l = line.clone();
        l[0] = b'e';
        f.write_line(&l, true).unwrap();
        let first = |p: PathBuf| std::fs::read(p).unwrap()[0];
        assert_eq!(first(path.clone()), b'e');
        assert_eq!(first(dir.path().join("kea.log.1")), b'c');
        assert_eq!(first(dir.path().join("kea.log.2")), b'a');
        assert!(!dir.path().join("kea.log.3").exists());
    }

    #[test]
    fn maxsize_zero_never_rolls_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut f = RollingFile::open(&path, 0, 1).unwrap();
        f.write_line(b"new\n", false).unwrap();
        f.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
        assert!(!dir.path().join("a.log.1").exists());
    }

    #[test]
    fn facilities() {
        assert_eq!(facility("LOCAL3"), libc::LOG_LOCAL3);
        assert_eq!(facility("kea"), libc::LOG_USER);
    }
}

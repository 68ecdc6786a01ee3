//! Lease file I/O: Kea's file names, replaying a memfile into memory, and the
//! append-only live file.
//!
//! A memfile is an append log. Replaying it row by row, a later row for an
//! address replaces the earlier one and a row with valid lifetime 0 deletes
//! it (Kea's `LeaseFileLoader::load`). Unreadable rows are skipped and
//! reported with file and line, as Kea does with `max-row-errors` 0.
//!
//! Crash safety rests on one rule: a line is only ever acknowledged after
//! its trailing newline was fsynced. So a final line without a newline is a
//! torn write that nobody was told about. It is reported and ignored, and
//! before appending again the live file is cut back to its last complete
//! line, so that the next row cannot glue onto the fragment. This is the only
//! time the store shortens a file; it never rewrites acknowledged bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::csv::{self, HEADER, RowError, Schema};
use super::error::{LeaseError, Result};
use super::model::Lease;

/// The set of files Kea's memfile and `kea-lfc` use for one lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFiles {
    current: PathBuf,
}

impl LeaseFiles {
    /// Names derived from the live lease file `NAME`.
    pub fn new(current: impl Into<PathBuf>) -> Self {
        LeaseFiles { current: current.into() }
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut name = self.current.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// `NAME`: the live file new rows are appended to.
    pub fn current(&self) -> &Path {
        &self.current
    }

    /// `NAME.2`: the result of the last completed cleanup.
    pub fn previous(&self) -> PathBuf {
        self.with_suffix(".2")
    }

    /// `NAME.1`: the live file as it was rotated away for cleanup.
    pub fn input(&self) -> PathBuf {
        self.with_suffix(".1")
    }

    /// `NAME.output`: cleanup output being written.
    pub fn output(&self) -> PathBuf {
        self.with_suffix(".output")
    }

    /// `NAME.completed`: finished cleanup output, not yet moved to `NAME.2`.
    pub fn finish(&self) -> PathBuf {
        self.with_suffix(".completed")
    }

    /// `NAME.pid`: pid of the process doing cleanup.
    pub fn pid(&self) -> PathBuf {
        self.with_suffix(".pid")
    }

    /// The directory holding all of them (fsynced after renames).
    pub fn dir(&self) -> PathBuf {
        match self.current.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The files to replay at startup, in order (Kea's
    /// `loadLeasesFromFiles`): `NAME.completed` if it exists (it already
    /// merges `.2` and `.1`), else `NAME.2` then `NAME.1`; then `NAME`.
    pub fn load_order(&self) -> Vec<PathBuf> {
        let mut order =
            if self.use_finish() { vec![self.finish()] } else { vec![self.previous(), self.input()] };
        order.push(self.current.clone());
        order
    }

    /// Whether `NAME.completed` stands for `.2` + `.1`. Kea does not fsync
    /// it before the rename, so after a power loss it can be empty or cut
    /// short; then, while `.2` or `.1` still exist, they are the truth.
    /// (Ours is fsynced first and always passes.)
    pub(crate) fn use_finish(&self) -> bool {
        let finish = self.finish();
        if !finish.exists() {
            return false;
        }
        if self.previous().exists() || self.input().exists() {
            let sound = is_complete_lease_file(&finish);
            if !sound {
                tracing::warn!("{}: incomplete cleanup output, using .2 and .1 instead", finish.display());
            }
            return sound;
        }
        true
    }
}

/// A header line and a newline at the end: nothing was cut off.
fn is_complete_lease_file(path: &Path) -> bool {
    let Ok(mut file) = File::open(path) else { return false };
    let mut first = String::new();
    let header_ok = BufReader::new(&file).read_line(&mut first).is_ok()
        && first.ends_with('\n')
        && Schema::parse_header(first.trim_end_matches(['\n', '\r'])).is_ok();
    let mut last = [0u8; 1];
    let ends_ok = file.seek(io::SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] == b'\n';
    header_ok && ends_ok
}

/// Why a row was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A last line without its newline: a write cut short by a crash.
    Torn,
    /// A complete line that does not parse.
    Invalid(RowError),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Torn => f.write_str("torn last line (no newline), ignored"),
            SkipReason::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// A skipped row and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// What loading lease files found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Files replayed, in order.
    pub files: Vec<PathBuf>,
    /// Rows that added a lease for a new address.
    pub loaded: u64,
    /// Rows that replaced an earlier row for the same address.
    pub replaced: u64,
    /// Deletion rows (valid lifetime 0) that removed a lease.
    pub deleted: u64,
    /// Deletion rows for an address that had no lease.
    pub deletions_ignored: u64,
    /// Every row not applied, with file, line and reason.
    pub skipped: Vec<Skipped>,
    /// Files whose header is an older or newer schema than ours.
    pub converted: Vec<PathBuf>,
    /// Leases in memory after loading.
    pub leases: usize,
}

impl LoadReport {
    /// Number of torn last lines ignored.
    pub fn torn(&self) -> usize {
        self.skipped.iter().filter(|s| s.reason == SkipReason::Torn).count()
    }

    /// Number of complete rows that did not parse.
    pub fn invalid(&self) -> usize {
        self.skipped.len() - self.torn()
    }
}

impl fmt::Display for LoadReport {
    /// One summary line for logs; the skipped rows are listed separately.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        write!(
            f,
            "{} leases from [{}]: {} loaded, {} replaced, {} deleted, {} skipped ({} torn, {} invalid)",
            self.leases,
            files.join(", "),
            self.loaded,
            self.replaced,
            self.deleted,
            self.skipped.len(),
            self.torn(),
            self.invalid()
        )
    }
}

/// Leases keyed by address, the replay target.
pub(crate) type LeaseMap = BTreeMap<Ipv4Addr, Lease>;

/// Applies one parsed row with memfile semantics, counting it in `report`.
pub(crate) fn apply_row(leases: &mut LeaseMap, lease: Lease, report: &mut LoadReport) {
    if csv::is_deletion(&lease) {
        if leases.remove(&lease.address).is_some() {
            report.deleted += 1;
        } else {
            report.deletions_ignored += 1;
        }
    } else if leases.insert(lease.address, lease).is_some() {
        report.replaced += 1;
    } else {
        report.loaded += 1;
    }
}

/// Shape of a file after reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Header schema, `None` when the file has no complete header line.
    pub schema: Option<Schema>,
    /// Byte length up to and including the last newline.
    pub complete_len: u64,
    /// Total byte length read.
    pub len: u64,
}

/// Replays `path` into `leases`. Returns `None` if the file does not exist.
pub(crate) fn load_file(path: &Path, leases: &mut LeaseMap, report: &mut LoadReport) -> Result<Option<Scan>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LeaseError::io(path, "open", e)),
    };
    report.files.push(path.to_path_buf());
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::with_capacity(256);
    let mut scan = Scan { schema: None, complete_len: 0, len: 0 };
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| LeaseError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        scan.len += n as u64;
        let Some(content) = buf.strip_suffix(b"\n") else {
            report.skipped.push(Skipped { file: path.to_path_buf(), line: line_no, reason: SkipReason::Torn });
            break;
        };
        scan.complete_len = scan.len;
        let text = String::from_utf8_lossy(content);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if text.is_empty() {
            continue;
        }
        // A header line again (files concatenated by hand): Kea would report
        // it as a bad row; we take it as the schema of the rows below.
        if scan.schema.is_some()
            && text.starts_with("address,")
            && let Ok(schema) = Schema::parse_header(text)
        {
            if !schema.is_current() {
                report.converted.push(path.to_path_buf());
            }
            scan.schema = Some(schema);
            continue;
        }
        let Some(schema) = scan.schema else {
            let schema = Schema::parse_header(text).map_err(|source| LeaseError::Header {
                file: path.to_path_buf(),
                line: line_no,
                source,
            })?;
            if !schema.is_current() {
                report.converted.push(path.to_path_buf());
            }
            scan.schema = Some(schema);
            continue;
        };
        match schema.parse_row(text) {
            Ok(lease) => apply_row(leases, lease, report),
            Err(e) => report.skipped.push(Skipped {
                file: path.to_path_buf(),
                line: line_no,
                reason: SkipReason::Invalid(e),
            }),
        }
    }
    Ok(Some(scan))
}

/// Fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LeaseError::io(dir, "fsync directory", e))
}

/// Writes a complete lease file (header plus `body`) at `path`, fsynced;
/// the caller renames it into place and syncs the directory.
pub(crate) fn write_new_file(path: &Path, body: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| LeaseError::io(path, "create", e))?;
    let mut data = Vec::with_capacity(HEADER.len() + 1 + body.len());
    data.extend_from_slice(HEADER.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(body);
    f.write_all(&data).map_err(|e| LeaseError::io(path, "write", e))?;
    f.sync_all().map_err(|e| LeaseError::io(path, "fsync", e))
}

/// The live file, open for appending, with the length known to be good.
#[derive(Debug)]
pub(crate) struct LiveFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl LiveFile {
    /// Opens `path` for appending after it was replayed as `scan`: creates it
    /// with a header when missing or headerless, and cuts a torn tail.
    pub fn open(path: &Path, scan: Option<Scan>) -> Result<LiveFile> {
        let Some(scan) = scan else {
            return LiveFile::create(path);
        };
        if scan.schema.is_none() {
            // Only blank lines or a torn header: nothing was ever acknowledged.
            return LiveFile::create(path);
        }
        let file = OpenOptions::new().append(true).open(path).map_err(|e| LeaseError::io(path, "open", e))?;
        if scan.len != scan.complete_len {
            file.set_len(scan.complete_len).map_err(|e| LeaseError::io(path, "truncate torn tail", e))?;
            file.sync_all().map_err(|e| LeaseError::io(path, "fsync", e))?;
        }
        Ok(LiveFile { file, path: path.to_path_buf(), len: scan.complete_len })
    }

    /// Creates (or empties) `path` with just the header, fsynced, and syncs
    /// the directory.
    pub fn create(path: &Path) -> Result<LiveFile> {
        write_new_file(path, b"")?;
        sync_dir(&LeaseFiles::new(path).dir())?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| LeaseError::io(path, "open", e))?;
        Ok(LiveFile { file, path: path.to_path_buf(), len: HEADER.len() as u64 + 1 })
    }

    /// Appends whole lines. On failure the file is cut back to its previous
    /// length so no partial line stays in front of later rows; if even that
    /// fails the error says so and the caller must stop using the file.
    pub fn append(&mut self, data: &[u8]) -> std::result::Result<(), (LeaseError, bool)> {
        match self.file.write_all(data) {
            Ok(()) => {
                self.len += data.len() as u64;
                Ok(())
            }
            Err(e) => {
                let err = LeaseError::io(&self.path, "append", e);
                let restored = self.file.set_len(self.len).is_ok();
                Err((err, restored))
            }
        }
    }

    /// Wraps any writable file, for fault-injection tests (`/dev/full`).
    #[cfg(test)]
    pub fn from_path_for_test(path: &Path) -> LiveFile {
        let file = OpenOptions::new().append(true).open(path).unwrap();
        LiveFile { file, path: path.to_path_buf(), len: 0 }
    }

    /// Opens an existing complete lease file at `path` for appending at its
    /// end (the repair path: the file was just written whole).
    pub fn append_to(path: &Path) -> Result<LiveFile> {
        let file = OpenOptions::new().append(true).open(path).map_err(|e| LeaseError::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| LeaseError::io(path, "stat", e))?.len();
        Ok(LiveFile { file, path: path.to_path_buf(), len })
    }

    /// Whether `path` still names the file rows are appended to: not
    /// removed, renamed away or replaced behind the server's back (rows
    /// written to an unlinked file are lost at the next start).
    pub fn still_named(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), fs::metadata(&self.path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }

    /// `fdatasync`: after this the appended rows survive a crash.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| LeaseError::io(&self.path, "fdatasync", e))
    }
}

/// Reads a pid file the way Kea's `PIDFile::check` does and returns the pid
/// if a lease file cleanup still runs under it.
///
/// Two deliberate differences from Kea: unreadable content counts as stale
/// (a crash while writing it would otherwise block startup forever), and a
/// live pid only counts if that process is `kea-lfc` or another instance of
/// this program. The pid file lives next to the leases and survives reboots,
/// so after one its pid often belongs to some unrelated daemon.
pub(crate) fn running_pid(pid_file: &Path) -> Option<i32> {
    let text = fs::read_to_string(pid_file).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    (alive && is_cleanup_process(pid)).then_some(pid)
}

fn is_cleanup_process(pid: i32) -> bool {
    let comm = |p: &str| fs::read_to_string(format!("/proc/{p}/comm")).ok().map(|s| s.trim_end().to_owned());
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == "kea-lfc" || theirs == ours,
        // Without /proc, trust the pid as Kea does.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kea_suffixes() {
        let f = LeaseFiles::new("/var/lib/kea/kea-leases4.csv");
        assert_eq!(f.previous(), Path::new("/var/lib/kea/kea-leases4.csv.2"));
        assert_eq!(f.input(), Path::new("/var/lib/kea/kea-leases4.csv.1"));
        assert_eq!(f.output(), Path::new("/var/lib/kea/kea-leases4.csv.output"));
        assert_eq!(f.finish(), Path::new("/var/lib/kea/kea-leases4.csv.completed"));
        assert_eq!(f.pid(), Path::new("/var/lib/kea/kea-leases4.csv.pid"));
        assert_eq!(f.dir(), Path::new("/var/lib/kea"));
        assert_eq!(LeaseFiles::new("x.csv").dir(), Path::new("."));
    }

    #[test]
    fn replay_semantics_and_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        let body = format!(
            "\n{HEADER}\n\
             192.0.2.1,aa:bb:cc:dd:ee:01,,60,1060,1,0,0,a,0,\n\
             192.0.2.2,aa:bb:cc:dd:ee:02,,60,1060,1,0,0,b,0,\n\
             \n\
             192.0.2.1,aa:bb:cc:dd:ee:01,,120,1120,1,0,0,a2,0,\r\n\
             192.0.2.2,aa:bb:cc:dd:ee:02,,0,1000,1,0,0,b,0,\n\
             192.0.2.3,aa:bb:cc:dd:ee:03,,0,1000,1,0,0,c,0,\n\
             garbage\n\
             address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n\
             192.0.2.5,aa:bb:cc:dd:ee:05,,60,1060,1,0,0,e\n\
             192.0.2.4,aa:bb:cc:dd:ee:04,,60,1060,1,0,0,d,0,"
        );
        fs::write(&path, body).unwrap();
        let (mut map, mut report) = (LeaseMap::new(), LoadReport::default());
        let scan = load_file(&path, &mut map, &mut report).unwrap().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[&Ipv4Addr::new(192, 0, 2, 1)].hostname, "a2");
        assert_eq!(map[&Ipv4Addr::new(192, 0, 2, 5)].hostname, "e", "read with the repeated (older) header");
        assert_eq!((report.loaded, report.replaced, report.deleted, report.deletions_ignored), (3, 1, 1, 1));
        assert_eq!(report.skipped.len(), 2);
        let shown: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
        assert!(shown[0].ends_with("l.csv:9: 1 columns, the header allows 11 to 11"), "{}", shown[0]);
        assert!(shown[1].ends_with("l.csv:12: torn last line (no newline), ignored"), "{}", shown[1]);
        assert!(scan.complete_len < scan.len);
        report.leases = map.len();
        assert!(
            report.to_string().ends_with("l.csv]: 3 loaded, 1 replaced, 1 deleted, 2 skipped (1 torn, 1 invalid)"),
            "{report}"
        );
        assert!(load_file(&dir.path().join("none"), &mut map, &mut report).unwrap().is_none());
    }

    #[test]
    fn bad_header_is_an_error_with_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        fs::write(&path, "address,duid\n").unwrap();
        let err = load_file(&path, &mut LeaseMap::new(), &mut LoadReport::default()).unwrap_err();
        assert!(err.to_string().ends_with("l.csv:1: not a Kea DHCPv4 lease file: column 1 is 'duid', expected 'hwaddr'"), "{err}");
    }

    #[test]
    fn live_file_cuts_torn_tail_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        fs::write(&path, format!("{HEADER}\n192.0.2.1,aa:bb:cc:dd:ee:01,,60,1060,1,0,0,a,0,\n192.0.2.9,aa:b")).unwrap();
        let scan = load_file(&path, &mut LeaseMap::new(), &mut LoadReport::default()).unwrap();
        let mut live = LiveFile::open(&path, scan).unwrap();
        live.append(b"192.0.2.2,aa:bb:cc:dd:ee:02,,60,1060,1,0,0,b,0,\n").unwrap();
        live.sync().unwrap();
        let (mut map, mut report) = (LeaseMap::new(), LoadReport::default());
        load_file(&path, &mut map, &mut report).unwrap();
        assert_eq!(map.len(), 2);
        assert!(report.skipped.is_empty());
        // A torn header means the file never held an acknowledged row.
        fs::write(&path, "address,hw").unwrap();
        let scan = load_file(&path, &mut LeaseMap::new(), &mut LoadReport::default()).unwrap();
        drop(LiveFile::open(&path, scan).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
    }
}

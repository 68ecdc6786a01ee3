//! A tiny tmpfs for a lease file, so a test can fill the disk under a
//! running server and give the space back — the only honest way to get
//! ENOSPC from `write(2)` without touching the machine's real disks.
//!
//! The mount is made in the test's own (root) mount namespace before the
//! server starts, so the server, started through `ip netns exec`, sees it.
//! It is lazily unmounted on drop, and lab teardown and the stale sweep
//! unmount whatever is left under a lab directory ([`unmount_under`]), so a
//! killed run does not leave a mount behind.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The mount's source name, so `/proc/mounts` shows whose it is.
const SOURCE: &str = "xdhcp-lab-tmpfs";

/// A mounted tmpfs of a fixed size.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` at `dir` (created if missing).
    pub fn mount(dir: &Path, bytes: u64) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0755"), SOURCE])
            .arg(dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!("mount tmpfs on {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(Tmpfs { dir: dir.to_path_buf() })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Fills every free byte with a file of zeros (the disk is full until
    /// the [`Filler`] is dropped or [`Filler::release`]d); returns how many
    /// bytes it took.
    pub fn fill(&self) -> anyhow::Result<Filler> {
        let path = self.dir.join(".filler");
        let mut f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let block = vec![0u8; 64 << 10];
        let mut bytes = 0u64;
        // Bounded by the mount's size: every write either grows the file or fails.
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => bytes += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e).with_context(|| format!("filling {}", path.display())),
            }
        }
        // A smaller write may still fit in the last partial page.
        for size in [4096usize, 512, 64, 1] {
            while let Ok(n) = f.write(&block[..size]) {
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
        }
        Ok(Filler { path, bytes })
    }

    /// Bytes still free on the mount.
    pub fn free(&self) -> anyhow::Result<u64> {
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes())?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a zeroed struct statvfs fills.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            bail!("statvfs {}: {}", self.dir.display(), std::io::Error::last_os_error());
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(&self.dir);
    }
}

/// The file that fills a [`Tmpfs`]; removing it gives the space back.
#[derive(Debug)]
pub struct Filler {
    path: PathBuf,
    /// Bytes it took.
    pub bytes: u64,
}

impl Filler {
    /// Gives the space back now.
    pub fn release(self) {}
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Lazily unmounts one of our tmpfs mounts (the server may still hold its
/// lease file open; `-l` detaches it anyway).
fn unmount(dir: &Path) {
    let _ = std::process::Command::new("umount").arg("-l").arg(dir).status();
}

/// Unmounts every lab tmpfs at or below `dir` (deepest first), so the
/// directory can be removed.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (source, point) = (f.next()?, f.next()?);
            (source == SOURCE).then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        unmount(&p);
    }
}

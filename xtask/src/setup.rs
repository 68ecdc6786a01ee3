//! `cargo xtask setup`: bring a fresh machine of our kind to a state where
//! the daemon builds and every test runs. Each step first checks whether it
//! is already done, so a second run changes nothing and says so.

use anyhow::{Context as _, bail};
use std::process::Command;

use crate::run_cmd;

/// Debian packages: network tooling for the lab, real DHCP peers and clients
/// for tests (Kea 2.2, dhclient, perfdhcp from kea-admin, a relay),
/// Chromium to render the status page headless in `lab_status_page`,
/// PostgreSQL 15 (server and psql) for the SQL lease backend's tests, each
/// of which runs its own cluster (`lab::postgres`); for `cargo xtask package`
/// and its tests: dpkg-dev (`dpkg-shlibdeps`) and prometheus (its `promtool`
/// checks the alert rules we ship).
pub const PACKAGES: &[&str] = &[
    "iproute2",
    "ethtool",
    "bpftool",
    "tcpdump",
    "isc-dhcp-client",
    "isc-dhcp-relay",
    "curl",
    "kea-dhcp4-server",
    "kea-ctrl-agent",
    "kea-admin",
    "chromium",
    "postgresql-15",
    "postgresql-client-15",
    "dpkg-dev",
    "prometheus",
];

/// What one step found or did.
enum Step {
    AlreadyDone,
    Done,
}

/// Runs every step; returns whether anything changed.
pub fn run() -> anyhow::Result<bool> {
    let steps: [(&str, fn() -> anyhow::Result<Step>); 5] = [
        ("Debian packages", packages),
        ("rust-src for the nightly toolchain", rust_src),
        ("bpf-linker built against the nightly's LLVM", bpf_linker),
        ("cargo-fuzz (cargo xtask fuzz)", cargo_fuzz),
        ("bpffs mounted at /sys/fs/bpf", bpffs),
    ];
    let mut changed = false;
    for (name, step) in steps {
        match step().with_context(|| format!("setup step: {name}"))? {
            Step::AlreadyDone => println!("setup: {name}: already in place"),
            Step::Done => {
                println!("setup: {name}: installed");
                changed = true;
            }
        }
    }
    if changed {
        println!("setup: done");
    } else {
        println!("setup: everything was already in place; nothing to do");
    }
    Ok(changed)
}

fn packages() -> anyhow::Result<Step> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() {
        return Ok(Step::AlreadyDone);
    }
    println!("setup: installing {}", missing.join(" "));
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )?;
    // Debian starts the Kea services on install; they would grab port 67 on
    // every interface of this machine and fight the lab's servers.
    // Debian's own PostgreSQL cluster is not needed either: each test runs its own.
    // Prometheus is there for promtool only.
    for unit in ["kea-dhcp4-server", "kea-ctrl-agent", "kea-dhcp6-server", "kea-dhcp-ddns-server", "postgresql",
                 "prometheus"] {
        let _ = Command::new("systemctl").args(["disable", "--now", unit]).output();
    }
    let still: Vec<&str> = missing.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if !still.is_empty() {
        bail!("apt-get did not install {}", still.join(" "));
    }
    Ok(Step::Done)
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn rust_src() -> anyhow::Result<Step> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("running rustup (is the nightly toolchain installed?)")?;
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")) {
        return Ok(Step::AlreadyDone);
    }
    run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    Ok(Step::Done)
}

/// The LLVM major version of the nightly, which bpf-linker must match.
fn nightly_llvm_major() -> anyhow::Result<u32> {
    let out = Command::new("rustc").args(["+nightly", "-vV"]).output().context("running rustc +nightly -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("rustc +nightly -vV printed no LLVM version")?;
    let major = version.split('.').next().unwrap_or_default();
    major.parse().with_context(|| format!("LLVM version {version:?}"))
}

fn cargo_bin(name: &str) -> std::path::PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    home.join("bin").join(name)
}

fn bpf_linker() -> anyhow::Result<Step> {
    let major = nightly_llvm_major()?;
    let linker = cargo_bin("bpf-linker");
    if let Ok(out) = Command::new(&linker).arg("--version").output()
        && out.status.success()
    {
        return Ok(Step::AlreadyDone);
    }
    // bpf-linker links against the nightly's own libLLVM: no system LLVM.
    let sysroot = String::from_utf8(
        Command::new("rustc").args(["+nightly", "--print", "sysroot"]).output()?.stdout,
    )?;
    let lib = std::path::Path::new(sysroot.trim()).join("lib");
    let so = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") && n.ends_with("-nightly"))
        .with_context(|| format!("no libLLVM.so.*-nightly in {}", lib.display()))?;
    let home = std::env::var("HOME").context("HOME not set")?;
    let prefix = std::path::Path::new(&home).join(".local/rustllvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)?;
    for link in ["libLLVM.so", so.as_str()] {
        let path = prefix_lib.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(lib.join(&so), &path)
            .with_context(|| format!("linking {}", path.display()))?;
    }
    run_cmd(
        Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .args(["install", "bpf-linker", "--locked", "--no-default-features", "--features"])
            .arg(format!("llvm-{major}")),
    )?;
    Ok(Step::Done)
}

/// libFuzzer's driver for the targets in `fuzz/`; the targets themselves
/// build with the nightly already installed.
fn cargo_fuzz() -> anyhow::Result<Step> {
    if Command::new(cargo_bin("cargo-fuzz")).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(Step::AlreadyDone);
    }
    run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    Ok(Step::Done)
}

fn bpffs() -> anyhow::Result<Step> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    if mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, fstype) = (f.next(), f.next(), f.next());
        dir == Some("/sys/fs/bpf") && fstype == Some("bpf")
    }) {
        return Ok(Step::AlreadyDone);
    }
    run_cmd(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))?;
    Ok(Step::Done)
}

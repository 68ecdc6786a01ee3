//! # Layout
//!
//! `cargo xtask <command>`: the project's own commands, one module each.
//!
//! - [`setup`]: idempotent install of everything a fresh machine lacks.
//! - [`build`]: the eBPF object and `xdhcpd` (one binary).
//! - `run`: build, then run `xdhcpd` on this server.
//! - [`test`]: the whole test suite (what CI runs).
//! - [`demo`]: the `venus` lab end to end, HA failover included.
//! - [`drill`]: the HA drills, repeated, into DRILLS.md.
//! - [`bench`]: measurements into BENCHMARKS.md.
//! - [`forge`]: ISC Forge against xdhcpd, test by test beside Kea 2.2, into CONFORMANCE.md.
//! - [`fuzz`]: the cargo-fuzz targets and the kernel program's differential fuzzer.
//! - [`package`]: the Debian package (`xdhcpd.service`, man pages, dashboards) from `packaging/`.
mod bench;
mod build;
mod demo;
mod drill;
mod forge;
mod fuzz;
mod package;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "xdhcp project commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what this project needs (Debian packages, nightly rust-src,
    /// bpf-linker, bpffs). A second run does nothing and says so.
    Setup,
    /// Build the eBPF program and `xdhcpd` (release).
    Build,
    /// Build, then run `xdhcpd` with the given arguments (as operators do on each server).
    Run {
        /// Arguments passed to xdhcpd, after `--`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then run every test (unit, integration and lab tests).
    Test {
        /// Extra arguments passed to the test runner.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build and run the venus demo in network namespaces: XDP
    /// renewals, then lobezno killed, tormenta taking over, lobezno back.
    Demo,
    /// Run the HA drills (dhcp-user/tests/lab_ha*.rs) N times each and
    /// write DRILLS.md.
    Drill(drill::Args),
    /// Benchmarks in the venus lab (`bench alloc`: DORA/s; `bench renew`:
    /// renewals/s, XDP vs --no-xdp vs Kea vs a bare XDP_TX echo; plain
    /// `bench`: every section).
    Bench(bench::Args),
    /// ISC Forge (Kea's conformance suite) against xdhcpd through the
    /// harness in ../shared/forge; writes CONFORMANCE.md and
    /// bench/forge.json, test by test beside Kea 2.2.
    Forge(forge::Args),
    /// Fuzz every untrusted input (packets, config, option data, lease
    /// file, control API, HA peer endpoint, dhcpd.conf importer) and the
    /// XDP program against the daemon's engine, N seconds each; fails on a
    /// crash, naming the reproducer.
    Fuzz(fuzz::Args),
    /// Build the release `xdhcpd` and the Debian package (unit, man pages,
    /// completions, Grafana dashboard, Prometheus alerts) into
    /// target/package/xdhcpd_<version>_<arch>.deb.
    Package,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run().map(|_| ()),
        Command::Build => build::release().map(|_| ()),
        Command::Run { args } => build::run(&args),
        Command::Test { args } => test::run(&args),
        Command::Demo => demo::run(),
        Command::Drill(args) => drill::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Forge(args) => forge::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Package => package::run().map(|_| ()),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The workspace root, so commands work from any directory.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` when set (worktrees that
/// share one build cache), else `<workspace>/target`.
pub fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = std::path::PathBuf::from(dir);
            if dir.is_absolute() { dir } else { workspace_root().join(dir) }
        }
        _ => workspace_root().join("target"),
    }
}

/// Runs a command, inheriting stdio, and fails with the command line on a
/// non-zero exit so the error says what broke.
pub fn run_cmd(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(())
}

//! `cargo xtask fuzz --seconds N [TARGET…]`: every cargo-fuzz target in
//! `fuzz/` (issue 20, "Fuzzing, as Kea runs it in OSS-Fuzz") for N seconds
//! each, then the kernel program's differential fuzzer (`kernel`: random
//! and mutated frames through the real XDP program, compared with the
//! daemon's engine; `dhcp-user/tests/xdp_differential.rs`).
//!
//! Targets are built once with `cargo +nightly fuzz build` (no sanitizer:
//! the fuzzed code is safe Rust; debug assertions on, so an integer
//! overflow is a finding), into `<target-dir>/fuzz`, with the eBPF build
//! skipped. Each runs from the committed seeds (`fuzz/seeds/<target>`,
//! read only) plus its working corpus (`<target-dir>/fuzz/corpus/<target>`,
//! kept between runs). A crash stops that target, is reported with the
//! reproducer's path and the command that replays it, and makes the whole
//! command fail after the other targets ran.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::{run_cmd, target_dir, workspace_root};

/// The libFuzzer targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: &[&str] = &["packet", "config", "option_data", "lease_csv", "control_api", "ha_peer", "dhcpd_conf"];

/// The kernel program's differential fuzzer (a test, not a libFuzzer target).
pub const KERNEL: &str = "kernel";

/// `cargo xtask fuzz` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Targets to run (default: all, `kernel` last). Names: packet, config,
    /// option_data, lease_csv, control_api, ha_peer, dhcpd_conf, kernel.
    pub targets: Vec<String>,
}

/// One target's run.
struct Run {
    target: String,
    seconds: f64,
    execs: u64,
    new_units: u64,
    corpus: usize,
    finding: Option<String>,
}

/// Builds, runs every chosen target, prints the table; fails on a finding.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let chosen: Vec<String> = if args.targets.is_empty() {
        TARGETS.iter().chain([&KERNEL]).map(|s| s.to_string()).collect()
    } else {
        args.targets.clone()
    };
    for t in &chosen {
        if t != KERNEL && !TARGETS.contains(&t.as_str()) {
            bail!("unknown fuzz target {t:?}; known: {}, {KERNEL}", TARGETS.join(", "));
        }
    }
    let libfuzzer: Vec<&String> = chosen.iter().filter(|t| *t != KERNEL).collect();
    let dir = target_dir().join("fuzz");
    if !libfuzzer.is_empty() {
        build(&dir)?;
    }
    let mut runs = Vec::new();
    for t in &chosen {
        let r = if t == KERNEL { kernel(args.seconds)? } else { libfuzzer_run(&dir, t, args.seconds)? };
        println!(
            "fuzz: {}: {} executions in {:.0} s, {} findings",
            r.target,
            r.execs,
            r.seconds,
            usize::from(r.finding.is_some())
        );
        runs.push(r);
    }
    println!("\n| target | seconds | executions | exec/s | corpus | new units | findings |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &runs {
        println!(
            "| {} | {:.0} | {} | {:.0} | {} | {} | {} |",
            r.target,
            r.seconds,
            r.execs,
            r.execs as f64 / r.seconds.max(1.0),
            r.corpus,
            r.new_units,
            r.finding.as_deref().unwrap_or("none")
        );
    }
    let failed: Vec<&Run> = runs.iter().filter(|r| r.finding.is_some()).collect();
    if !failed.is_empty() {
        for r in &failed {
            eprintln!("fuzz: {}: {}", r.target, r.finding.as_deref().unwrap_or_default());
        }
        bail!("{} fuzz target(s) found a crash", failed.len());
    }
    Ok(())
}

/// `cargo +nightly fuzz build` for every target.
fn build(dir: &Path) -> anyhow::Result<()> {
    run_cmd(
        Command::new("cargo")
            .current_dir(workspace_root())
            .env("AYA_BUILD_SKIP", "1")
            .env_remove("RUSTUP_TOOLCHAIN")
            .args(["+nightly", "fuzz", "build", "--sanitizer", "none", "--debug-assertions", "--fuzz-dir", "fuzz"])
            .arg("--target-dir")
            .arg(dir),
    )
    .context("building the fuzz targets (run `cargo xtask setup` for nightly and cargo-fuzz)")
}

/// The built binary of `target`.
fn binary(dir: &Path, target: &str) -> anyhow::Result<PathBuf> {
    let host = rustc_host()?;
    let bin = dir.join(host).join("release").join(target);
    anyhow::ensure!(bin.exists(), "{} was not built", bin.display());
    Ok(bin)
}

fn rustc_host() -> anyhow::Result<String> {
    let out = Command::new("rustc").args(["+nightly", "-vV"]).output().context("running rustc +nightly -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
}

/// One libFuzzer target for `seconds`.
fn libfuzzer_run(dir: &Path, target: &str, seconds: u64) -> anyhow::Result<Run> {
    let bin = binary(dir, target)?;
    let corpus = dir.join("corpus").join(target);
    let artifacts = dir.join("artifacts").join(target);
    let seeds = workspace_root().join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let before = files_in(&artifacts);
    let mut cmd = Command::new(&bin);
    cmd.arg(&corpus)
        .arg(&seeds)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=20", "-rss_limit_mb=2048", "-max_len=16384"]);
    let dict = workspace_root().join("fuzz/dicts").join(format!("{target}.dict"));
    if dict.exists() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    println!("fuzz: {target}: {seconds} s");
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {}", bin.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let log_path = dir.join(format!("{target}.log"));
    std::fs::write(&log_path, log.as_bytes())?;
    let stat = |name: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let new: Vec<PathBuf> = files_in(&artifacts).into_iter().filter(|p| !before.contains(p)).collect();
    let finding = if !out.status.success() || !new.is_empty() {
        let what = log
            .lines()
            .find(|l| l.contains("panicked at") || l.contains("==ERROR") || l.contains("ALARM") || l.contains("out-of-memory"))
            .unwrap_or("the target failed")
            .trim()
            .to_owned();
        let repro = new.first().map(|p| p.display().to_string()).unwrap_or_else(|| "no artifact written".into());
        Some(format!("{what}; reproducer {repro}; replay: {} {repro}; log {}", bin.display(), log_path.display()))
    } else {
        None
    };
    Ok(Run {
        target: target.into(),
        seconds: elapsed,
        execs: stat("number_of_executed_units"),
        new_units: stat("new_units_added"),
        corpus: files_in(&corpus).len(),
        finding,
    })
}

/// The differential kernel fuzzer for `seconds` (root, a built eBPF
/// object): a `dhcp-user` test whose budget comes from the environment.
fn kernel(seconds: u64) -> anyhow::Result<Run> {
    println!("fuzz: {KERNEL}: {seconds} s");
    let started = Instant::now();
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .env("XDHCP_XDP_FUZZ_SECONDS", seconds.to_string())
        .args(["test", "-p", "dhcp-user", "--test", "xdp_differential", "--", "--nocapture", "--test-threads=1"])
        .output()
        .context("running the xdp_differential test")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let log_path = target_dir().join("fuzz").join("kernel.log");
    std::fs::create_dir_all(log_path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(&log_path, text.as_bytes())?;
    // The test ends with `xdp-differential: N cases (seed S): …`.
    let summary = text.lines().filter(|l| l.starts_with("xdp-differential:")).last().unwrap_or_default().to_owned();
    let execs = summary
        .strip_prefix("xdp-differential: ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let finding = (!out.status.success()).then(|| {
        let why = text.lines().find(|l| l.contains("panicked at")).map(str::trim).unwrap_or("the test failed");
        format!("{why}; {summary}; log {}", log_path.display())
    });
    Ok(Run { target: KERNEL.into(), seconds: started.elapsed().as_secs_f64(), execs, new_units: 0, corpus: 0, finding })
}

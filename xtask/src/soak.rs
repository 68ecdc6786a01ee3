//! `cargo xtask soak [--minutes N] [--seed S] [--faults kill,stop,cut,disk]`:
//! an xdhcpd hot-standby pair under continuous mixed load with a fault
//! every 10–30 s, for N minutes (`dhcp-user/tests/lab_soak.rs`, which says
//! what it loads, breaks and checks). This builds and runs that test, then
//! prints its report as a table: faults and recovery, load, lost ACKed
//! leases, duplicates, conflicts between the stores, and the RSS / open-fd curve of
//! each server. The full report (every sample) goes to
//! `target/soak/soak.json`, and for runs of 10 minutes or more — the ones
//! published in RELIABILITY.md — to `bench/soak.json` too.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::Context as _;

use crate::{setup, target_dir, workspace_root};

/// Runs from this length on are the published ones (`bench/soak.json`).
const PUBLISH_MINUTES: u64 = 10;

/// `cargo xtask soak` options.
#[derive(clap::Args)]
pub struct Args {
    /// Length of the run, minutes.
    #[arg(long, default_value_t = 2)]
    pub minutes: u64,
    /// Seed of the fault sequence (to replay a run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these faults, comma-separated: kill, stop, cut, disk.
    #[arg(long)]
    pub faults: Option<String>,
}

/// Sets up, runs the soak test, prints and stores its report; fails when
/// the soak found a problem (after writing the report).
pub fn run(args: &Args) -> anyhow::Result<()> {
    setup::run()?;
    let root = workspace_root();
    let dir = target_dir().join("soak");
    std::fs::create_dir_all(&dir).context("creating target/soak")?;
    let report = dir.join("soak.json");
    let _ = std::fs::remove_file(&report);
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root)
        .args(["test", "-p", "dhcp-user", "--test", "lab_soak", "--", "--ignored", "--nocapture", "--exact"])
        .arg("soak_ha_pair_under_load_and_faults")
        .env("XDHCP_SOAK_SECONDS", (args.minutes.max(1) * 60).to_string())
        .env("XDHCP_SOAK_REPORT", &report);
    if let Some(seed) = args.seed {
        cmd.env("XDHCP_SOAK_SEED", seed.to_string());
    }
    if let Some(f) = &args.faults {
        cmd.env("XDHCP_SOAK_FAULTS", f);
    }
    println!("[soak] {} minutes", args.minutes.max(1));
    let status = cmd.status().context("starting cargo test")?;
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("the soak wrote no report ({status}); see its output above"))?;
    let json: serde_json::Value = serde_json::from_str(&text).context("reading the soak report")?;
    println!("{}", table(&json));
    if args.minutes >= PUBLISH_MINUTES {
        std::fs::create_dir_all(root.join("bench")).context("creating bench/")?;
        std::fs::write(root.join("bench/soak.json"), &text).context("writing bench/soak.json")?;
        println!("[soak] wrote bench/soak.json");
    }
    anyhow::ensure!(status.success(), "the soak failed ({status}); report in {}", report.display());
    Ok(())
}

/// The report as Markdown: totals, then the usage curve (one row a minute).
pub fn table(r: &serde_json::Value) -> String {
    let n = |p: &str| r.pointer(p).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let list = |p: &str| r.pointer(p).and_then(serde_json::Value::as_array).map_or(0, Vec::len);
    let faults = r["faults"].as_array().cloned().unwrap_or_default();
    let recovered: Vec<f64> = faults.iter().filter_map(|f| f["recovered_s"].as_f64()).collect();
    let worst = recovered.iter().copied().fold(0.0, f64::max);
    let mut out = String::new();
    let _ = writeln!(out, "| soak | |\n|---|---|");
    let _ = writeln!(out, "| length | {} min (seed {}) |", n("/seconds") / 60, n("/seed"));
    let _ = writeln!(
        out,
        "| faults | {} ({} SIGKILL + restart, {} SIGSTOP/SIGCONT, {} HA link cut, {} disk full) |",
        faults.len(),
        n("/fault_counts/kill_restart"),
        n("/fault_counts/stop_cont"),
        n("/fault_counts/ha_link_cut"),
        n("/fault_counts/disk_full"),
    );
    let _ = writeln!(
        out,
        "| back in hot-standby after a fault | {} of {}, slowest {worst:.1} s |",
        recovered.len(),
        faults.len()
    );
    let _ = writeln!(
        out,
        "| load | dhclient {} exchanges ({} answered), {} releases; perfdhcp {} DORA ACKed of {} DISCOVERs; {} declines |",
        n("/load/dhclient_obtains"),
        n("/load/dhclient_answered"),
        n("/load/dhclient_releases"),
        n("/load/perfdhcp_acks"),
        n("/load/perfdhcp_discovers"),
        n("/load/declines"),
    );
    let _ = writeln!(out, "| ACKs | {} by the kernel (XDP), {} by the daemon |", n("/load/xdp_acks"), n("/load/daemon_acks"));
    let _ = writeln!(out, "| replies withheld while the disk was full | {} |", n("/replies_withheld_disk_full"));
    let _ = writeln!(out, "| ACKed leases checked in both stores | {} |", n("/acked_leases_checked"));
    let _ = writeln!(out, "| lost ACKed leases | {} |", list("/lost"));
    let _ = writeln!(out, "| addresses held by two clients | {} |", list("/duplicates"));
    let _ = writeln!(out, "| live addresses held by different clients in the two stores | {} |", list("/store_conflicts"));
    let _ = writeln!(out, "| live leases in one store only (see RELIABILITY.md) | {} |", list("/one_sided_leases"));
    let _ = writeln!(out, "| both in hot-standby at the end | {} |", r["ha_normal_at_end"]);
    let _ = writeln!(out, "| usage flat after warm-up | {} |", if list("/flatness_problems") == 0 { "yes" } else { "no" });
    for key in ["problems", "lost", "duplicates", "store_conflicts", "flatness_problems"] {
        for p in r[key].as_array().into_iter().flatten() {
            let _ = writeln!(out, "\n{key}: {}", p.as_str().unwrap_or_default());
        }
    }
    // The curve: per minute, each server's RSS (MiB) and open fds, last sample.
    let samples = r["samples"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\n| minute | lobezno RSS MiB | lobezno fds | tormenta RSS MiB | tormenta fds |\n|---:|---:|---:|---:|---:|");
    let minutes = samples.iter().filter_map(|s| s["t"].as_f64()).fold(0.0, f64::max) as u64 / 60;
    for m in 0..=minutes {
        let last = |host: &str| {
            samples
                .iter()
                .filter(|s| s["host"] == host && s["t"].as_f64().is_some_and(|t| (t as u64) / 60 == m))
                .last()
                .map_or(("–".to_owned(), "–".to_owned()), |s| {
                    (format!("{:.1}", s["rss_kb"].as_f64().unwrap_or(0.0) / 1024.0), s["fds"].to_string())
                })
        };
        let (pr, pf) = last("lobezno");
        let (sr, sf) = last("tormenta");
        let _ = writeln!(out, "| {m} | {pr} | {pf} | {sr} | {sf} |");
    }
    out
}

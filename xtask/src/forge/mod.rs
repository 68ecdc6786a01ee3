//! `cargo xtask forge [SELECTION…]`: ISC's conformance suite Forge against
//! xdhcpd, compared test by test with Kea 2.2.
//!
//! Forge itself, its Python environment and the two network namespaces it
//! runs in come from a harness folder outside this repository
//! (`../shared/forge`: `setup.sh`, `run.sh`, `down.sh`, the pinned Forge
//! as a git bundle, and Kea 2.2.0's results in `baseline-kea22/`; its
//! README says what a server under test must provide). This command finds
//! the harness, brings it up (`setup.sh`, idempotent), builds the release
//! `xdhcpd`, runs the selection with xdhcpd in Kea's place
//! (`DUT_DHCP4_BIN`), takes the harness down again, and joins the run's
//! `outcomes.tsv` with the baseline's into CONFORMANCE.md and
//! `bench/forge.json` ([`report`]). Partial runs replace only the tests
//! they ran, so several build up one picture; `bench/forge-reasons.tsv`
//! (kept by hand) gives the reason for each test Kea passes and xdhcpd
//! does not, and never hides one.
//!
//! `--dut kea` runs Debian's Kea 2.2 instead, to prove the harness works
//! on this machine: it compares with the baseline and writes no report.
//! `--ci` runs [`CI_TESTS`] (a few fast protocol tests, bounded) and fails
//! when xdhcpd fails one that Kea passes; it writes no report either.

pub mod report;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};

use crate::{build, drill::Json, run_cmd, workspace_root};
use report::{Picture, Reasons, Report, Row, Run};

/// `cargo xtask forge` options.
#[derive(clap::Args)]
pub struct Args {
    /// Forge tests to run: paths or pytest node ids relative to Forge's
    /// root (`tests/dhcp/protocol`, `tests/…/test_x.py::test_y`); default:
    /// the harness's DHCPv4 selection (about 30 minutes).
    selection: Vec<String>,
    /// Clone Forge from here (URL, clone or bare git dir) instead of the
    /// harness's bundled snapshot; passed to setup.sh as FORGE_SRC.
    #[arg(long)]
    forge_src: Option<String>,
    /// The harness folder; default $XDHCP_FORGE_HARNESS, else
    /// <workspace>/../shared/forge, else /work/shared/forge.
    #[arg(long)]
    harness: Option<PathBuf>,
    /// The server under test: xdhcpd (built here, release), or Debian's
    /// Kea 2.2 to check the harness against its baseline.
    #[arg(long, value_enum, default_value_t = Dut::Xdhcpd)]
    dut: Dut,
    /// xdhcpd's arguments before `-c <config>` (diagnostics, e.g.
    /// "run --no-xdp"; recorded with the results).
    #[arg(long, default_value = "run")]
    xdhcpd_args: String,
    /// Keep Forge's per-test folders (generated configs, server logs,
    /// lease files), unpacked in the results folder under target/forge/.
    #[arg(long)]
    keep: bool,
    /// The CI slice: CI_TESTS only (fast protocol tests, under 3 minutes);
    /// fails if xdhcpd fails one Kea 2.2 passes. Writes no report.
    #[arg(long, conflicts_with_all = ["selection", "dut", "keep"])]
    ci: bool,
    /// Run nothing: rewrite CONFORMANCE.md and bench/forge.json from the
    /// last results (after editing bench/forge-reasons.tsv).
    #[arg(long, conflicts_with_all = ["selection", "dut", "keep", "ci", "forge_src", "xdhcpd_args"])]
    report: bool,
}

impl Args {
    /// The CI slice's options (`cargo xtask forge --ci`), for `cargo xtask test`.
    pub fn ci() -> Args {
        Args {
            selection: Vec::new(),
            forge_src: None,
            harness: None,
            dut: Dut::Xdhcpd,
            xdhcpd_args: "run".into(),
            keep: false,
            ci: true,
            report: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dut {
    Xdhcpd,
    Kea,
}

/// The CI slice: DORA, INIT-REBOOT, RENEWING and REBINDING (the kernel's
/// answers included), header fields and a NAK, relayed DORA and renewal,
/// RELEASE, a few options and INFORM — all passed by Kea 2.2, 5–10 s each
/// (Forge waits up to 4 s for the start-up line in the server's log).
pub const CI_TESTS: [&str; 15] = [
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_selecting_success_chaddr",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_selecting_success_client_id",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_selecting_success_second_request_fail",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_initreboot_success",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_initreboot_fail",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_renewing_success",
    "tests/dhcp/protocol/test_v4_request.py::test_v4_request_rebinding_success",
    "tests/dhcp/protocol/test_v4_fields.py::test_v4_message_fields_ciaddr_correct_offer",
    "tests/dhcp/protocol/test_v4_fields.py::test_v4_message_fields_ciaddr_correct_nak",
    "tests/dhcp/protocol/test_v4_relay.py::test_v4_request_relay_selecting_success_chaddr",
    "tests/dhcp/protocol/test_v4_relay.py::test_v4_request_relay_renewing_success",
    "tests/dhcp/protocol/test_v4_release.py::test_v4_release_success",
    "tests/dhcp/protocol/test_standard_options.py::test_v4_options_routers",
    "tests/dhcp/protocol/test_standard_options.py::test_v4_options_domain_name_servers",
    "tests/dhcp/protocol/test_v4_options_inform.py::test_v4_options_inform_subnet_mask",
];

/// The files this writes and reads, relative to the workspace root.
const CONFORMANCE: &str = "CONFORMANCE.md";
const JSON: &str = "bench/forge.json";
const REASONS: &str = "bench/forge-reasons.tsv";

pub fn run(args: &Args) -> anyhow::Result<()> {
    let harness = match find_harness(args.harness.as_deref()) {
        Ok(h) => h,
        Err(e) if args.ci => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 cargo xtask forge --ci: NO FORGE HARNESS, SO NO CONFORMANCE CHECK RAN.\n\
                 {e:#}\n\
                 The CI slice runs ISC Forge against xdhcpd through the harness in ../shared/forge\n\
                 (setup.sh, run.sh, down.sh, baseline-kea22/). Put it there, or point\n\
                 XDHCP_FORGE_HARNESS or --harness at it. This is a failure, not a skip.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let baseline_file = harness.join("baseline-kea22/outcomes.tsv");
    let baseline: BTreeMap<String, Row> =
        report::parse_outcomes(&read(&baseline_file)?)?.into_iter().map(|r| (r.id.clone(), r)).collect();
    let baseline_info = baseline_info(&harness);
    if args.report {
        let summary = write_report(&baseline, &baseline_info, &previous()?)?;
        println!("[forge] rewrote {CONFORMANCE} and {JSON} from the last results\n[forge] {summary}");
        return Ok(());
    }

    // The commit the server is built from, read now: commits made during a
    // long run must not be credited with its results.
    let built_from = crate::bench::commit();
    // The server, built before the harness comes up: a compile error
    // should not cost a setup.
    let (bin, server_args, server) = match args.dut {
        Dut::Xdhcpd => {
            let bin = build::release()?;
            (bin, args.xdhcpd_args.clone(), format!("xdhcpd {}", args.xdhcpd_args).trim().to_owned())
        }
        Dut::Kea => (PathBuf::from("/usr/sbin/kea-dhcp4"), String::new(), "kea-dhcp4 (Debian's Kea 2.2)".to_owned()),
    };
    let selection: Vec<String> =
        if args.ci { CI_TESTS.iter().map(|s| (*s).to_owned()).collect() } else { args.selection.clone() };

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let kind = match (args.ci, args.dut) {
        (true, _) => "ci",
        (false, Dut::Xdhcpd) => "xdhcpd",
        (false, Dut::Kea) => "kea",
    };
    let results = workspace_root().join("target/forge").join(format!("{kind}-{stamp}"));
    std::fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;

    let _lock = lock()?;
    let up = Up::new(&harness, args.forge_src.as_deref())?;
    let mut cmd = Command::new(harness.join("run.sh"));
    cmd.arg(&results).args(&selection).env("DUT_DHCP4_BIN", &bin).env("DUT_DHCP4_ARGS", &server_args);
    if args.keep {
        cmd.env("KEEP_FORGE_RESULTS", "1");
    }
    if args.ci {
        // bounded: a hung test or run fails CI instead of stalling it
        cmd.env("TEST_TIMEOUT", "60").env("RUN_TIMEOUT", "600");
    }
    let what =
        if args.ci { format!("the CI slice ({} tests)", selection.len()) } else { run_selection_text(&selection) };
    println!("[forge] {server}: {what} → {}", results.display());
    run_cmd(&mut cmd).context("running the Forge harness (run.sh)")?;
    drop(up);

    let outcomes = results.join("outcomes.tsv");
    anyhow::ensure!(
        outcomes.exists(),
        "the run produced no {} (see {})",
        outcomes.display(),
        results.join("pytest.log").display()
    );
    let rows = report::parse_outcomes(&read(&outcomes)?)?;
    let info = run_info(&read(&results.join("run-info.txt"))?);
    if args.keep {
        let tgz = results.join("forge-tests_results.tgz");
        if tgz.exists() {
            run_cmd(Command::new("tar").arg("-C").arg(&results).arg("-xzf").arg(&tgz))?;
            println!("[forge] Forge's per-test folders: {}/tests_results", results.display());
        }
    }

    if args.ci {
        let wanted: Vec<&str> = CI_TESTS.to_vec();
        let bad = report::compare(&baseline, &rows, &wanted);
        let passed = rows.iter().filter(|r| r.outcome.passed()).count();
        println!("[forge] CI slice: xdhcpd passed {passed} of {} ({} wall)", rows.len(), info_wall(&info));
        if !bad.is_empty() {
            bail!(
                "xdhcpd fails {} Forge tests Kea 2.2 passes (results in {}):\n  {}",
                bad.len(),
                results.display(),
                bad.join("\n  ")
            );
        }
        return Ok(());
    }

    if args.dut == Dut::Kea {
        let diff = report::differences(&baseline, &rows);
        let passed = rows.iter().filter(|r| r.outcome.passed()).count();
        println!(
            "[forge] Kea 2.2 on this machine: {passed} of {} passed; {} differ from the baseline{}",
            rows.len(),
            diff.len(),
            if diff.is_empty() { String::new() } else { format!(":\n  {}", diff.join("\n  ")) }
        );
        return Ok(());
    }

    let mut picture = previous()?;
    let run = Run {
        date: info.get("date").cloned().unwrap_or_default(),
        commit: built_from,
        server,
        selection,
        forge_commit: info.get("forge_commit").cloned().unwrap_or_default(),
        wall_time_s: info.get("wall_time_s").and_then(|w| w.parse().ok()).unwrap_or(0.0),
    };
    picture.merge(run, &rows);
    let summary = write_report(&baseline, &baseline_info, &picture)?;
    let passed = rows.iter().filter(|r| r.outcome.passed()).count();
    println!(
        "[forge] this run: xdhcpd passed {passed} of {} ({} wall); wrote {CONFORMANCE} and {JSON}\n[forge] {summary}",
        rows.len(),
        info_wall(&info),
    );
    Ok(())
}

/// What earlier runs left in `bench/forge.json` (nothing the first time).
fn previous() -> anyhow::Result<Picture> {
    match std::fs::read_to_string(workspace_root().join(JSON)) {
        Ok(text) => Picture::from_json(&Json::parse(&text)?).with_context(|| format!("reading {JSON}")),
        Err(_) => Ok(Picture::default()),
    }
}

/// Writes CONFORMANCE.md and `bench/forge.json` from `picture`, with the
/// reasons as they are now; returns the summary line.
fn write_report(baseline: &BTreeMap<String, Row>, baseline_info: &str, picture: &Picture) -> anyhow::Result<String> {
    let root = workspace_root();
    let reasons = match std::fs::read_to_string(root.join(REASONS)) {
        Ok(text) => Reasons::parse(&text)?,
        Err(_) => Reasons::default(),
    };
    let rep = Report { baseline, picture, reasons: &reasons, baseline_info };
    std::fs::create_dir_all(root.join("bench")).context("creating bench/")?;
    std::fs::write(root.join(CONFORMANCE), rep.markdown()).context("writing CONFORMANCE.md")?;
    std::fs::write(root.join(JSON), rep.json()).context("writing bench/forge.json")?;
    Ok(rep.summary().replace("**", ""))
}

fn run_selection_text(selection: &[String]) -> String {
    if selection.is_empty() { "default selection".to_owned() } else { selection.join(" ") }
}

fn info_wall(info: &BTreeMap<String, String>) -> String {
    info.get("wall_time_s").and_then(|w| w.parse::<f64>().ok()).map_or("?".into(), |w| format!("{:.1} min", w / 60.0))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `key: value` lines of `run-info.txt`.
fn run_info(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect()
}

/// The baseline's provenance, from its `run-info.txt`.
fn baseline_info(harness: &Path) -> String {
    let info = run_info(&std::fs::read_to_string(harness.join("baseline-kea22/run-info.txt")).unwrap_or_default());
    let get = |k: &str| info.get(k).map_or("?", String::as_str);
    format!(
        "Debian's Kea {} recorded {} with Forge `{}` (`baseline-kea22/` in the harness), default selection",
        get("dut_version"),
        get("date"),
        get("forge_commit").get(..7).unwrap_or("?")
    )
}

/// The harness folder: `explicit`, else `$XDHCP_FORGE_HARNESS`, else
/// `<workspace>/../shared/forge`, else `/work/shared/forge`. A folder named
/// explicitly (flag or variable) must be a harness; no silent fallback.
pub fn find_harness(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let is_harness =
        |d: &Path| ["setup.sh", "run.sh", "down.sh", "baseline-kea22/outcomes.tsv"].iter().all(|f| d.join(f).exists());
    let named = explicit
        .map(|p| (p.to_path_buf(), "--harness"))
        .or_else(|| std::env::var_os("XDHCP_FORGE_HARNESS").map(|p| (PathBuf::from(p), "XDHCP_FORGE_HARNESS")));
    if let Some((dir, from)) = named {
        anyhow::ensure!(
            is_harness(&dir),
            "{from} names {}, which is not a Forge harness (no setup.sh, run.sh, down.sh and baseline-kea22/outcomes.tsv)",
            dir.display()
        );
        return Ok(dir);
    }
    let candidates = [workspace_root().join("../shared/forge"), PathBuf::from("/work/shared/forge")];
    for c in &candidates {
        if is_harness(c) {
            return Ok(c.canonicalize().unwrap_or_else(|_| c.clone()));
        }
    }
    bail!(
        "no Forge harness found: looked in {} (each needs setup.sh, run.sh, down.sh and baseline-kea22/outcomes.tsv); \
         name one with --harness DIR or XDHCP_FORGE_HARNESS",
        candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(" and ")
    )
}

/// One Forge run at a time on this machine: runs share the namespaces,
/// the DUT and the Forge clone. The lock lives beside the harness's state.
fn lock() -> anyhow::Result<std::fs::File> {
    let state =
        std::env::var_os("FORGE_HARNESS_DIR").map_or_else(|| PathBuf::from("/var/tmp/forge-harness"), PathBuf::from);
    let path = state.with_extension("lock");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "another Forge run holds {} (one run at a time: they share the namespaces and the DUT)",
                path.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// The harness's topology, up for as long as this lives; `down.sh` when
/// dropped, so no namespace or process outlives the command.
struct Up<'a> {
    harness: &'a Path,
}

impl<'a> Up<'a> {
    fn new(harness: &'a Path, forge_src: Option<&str>) -> anyhow::Result<Up<'a>> {
        let mut cmd = Command::new(harness.join("setup.sh"));
        cmd.arg("up");
        if let Some(src) = forge_src {
            cmd.env("FORGE_SRC", src);
        }
        let up = Up { harness };
        run_cmd(&mut cmd).context("bringing the Forge harness up (setup.sh)")?;
        Ok(up)
    }
}

impl Drop for Up<'_> {
    fn drop(&mut self) {
        if let Err(e) = run_cmd(&mut Command::new(self.harness.join("down.sh"))) {
            eprintln!("[forge] taking the harness down failed: {e:#}; run {}/down.sh", self.harness.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_run_info() {
        let i = run_info("date: 2026-11-24T19:37:45Z\nforge_commit: 189a7a1\nselection: a b\nwall_time_s: 1817\n");
        assert_eq!(i["date"], "2026-11-24T19:37:45Z");
        assert_eq!(i["selection"], "a b");
        assert_eq!(info_wall(&i), "30.3 min");
    }

    #[test]
    fn named_harness_must_be_one() {
        let err = find_harness(Some(Path::new("/nonexistent/forge"))).unwrap_err();
        assert!(format!("{err:#}").contains("--harness names /nonexistent/forge"), "{err:#}");
    }

    #[test]
    fn ci_tests_are_distinct_protocol_tests() {
        let set: std::collections::BTreeSet<_> = CI_TESTS.iter().collect();
        assert_eq!(set.len(), CI_TESTS.len());
        assert!(CI_TESTS.iter().all(|t| t.starts_with("tests/dhcp/protocol/") && t.contains("::")));
    }
}

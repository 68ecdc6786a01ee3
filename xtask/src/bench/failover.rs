//! `cargo xtask bench failover`: how long clients go unserved when the
//! serving server of a hot-standby pair dies, for an xdhcpd pair and for a
//! Kea 2.2 pair with the same checked-in HA config (`lab/venus/*.json`:
//! heartbeat 1 s, max-response-delay 3 s, max-unacked-clients 0).
//!
//! The figures come from the HA drills themselves (`crate::drill`), which
//! run real dhclient probers in the venus lab while the failure happens:
//! - `lab_ha kill_primary_standby_takes_over_primary_rejoins`: SIGKILL of
//!   the xdhcpd primary;
//! - `lab_ha freeze_primary_longer_than_max_response_delay`: SIGSTOP of the
//!   xdhcpd primary (its process hangs; its kernel program still runs);
//! - `lab_ha_kea kea_pair_kill_primary_reference`: the same SIGKILL on a
//!   Kea pair, the reference.
//!
//! Per failure: time to serve (failure → first answer carrying the
//! survivor's server identifier) and outage (longest gap between answers
//! any client saw across the failure), min/median/max over runs. The
//! drills also count lost ACKed leases and duplicate addresses, shown
//! here so a fast but lossy failover cannot look good.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::{Machine, Section, command_line, commit, js, load_average, spread};
use crate::drill::{self, Json};

/// (label, test name as nextest matches it, is the Kea reference).
const SCENARIOS: [(&str, &str, bool); 3] = [
    ("xdhcpd pair, primary SIGKILL", "kill_primary_standby_takes_over_primary_rejoins", false),
    ("xdhcpd pair, primary frozen (SIGSTOP) past max-response-delay", "freeze_primary_longer_than_max_response_delay", false),
    ("Kea 2.2 pair, primary SIGKILL (reference)", "kea_pair_kill_primary_reference", true),
];

/// One scenario's runs.
pub struct Scenario {
    label: &'static str,
    test: &'static str,
    reference: bool,
    passed: usize,
    runs: usize,
    /// Per run: the first failure's time to serve and outage (seconds).
    serve: Vec<f64>,
    outage: Vec<f64>,
    lost: f64,
    duplicates: f64,
    lines: Vec<String>,
}

/// Every scenario of one measurement.
pub struct Failover {
    scenarios: Vec<Scenario>,
    runs: u32,
    machine: Machine,
    date: String,
    commit: String,
    load_after: String,
    minutes: f64,
}

/// Runs each scenario `runs` times and collects the drills' reports.
pub fn measure(runs: u32) -> anyhow::Result<Failover> {
    let started = std::time::Instant::now();
    let machine = Machine::probe();
    let filters: Vec<String> = SCENARIOS.iter().map(|(_, t, _)| (*t).to_owned()).collect();
    let collected = drill::collect(&filters, runs).context("running the failover drills")?;
    let mut scenarios = Vec::new();
    for (label, test, reference) in SCENARIOS {
        let verdicts: Vec<bool> = collected
            .verdicts
            .iter()
            .filter(|(k, _)| k.ends_with(&format!(" {test}")))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let mine: Vec<(&Json, &String)> =
            collected.reports.iter().zip(&collected.lines).filter(|(r, _)| r.str("test") == test).collect();
        let first_fault = |r: &Json, key: &str| {
            r.get("faults").and_then(Json::array).and_then(|f| f.first()).and_then(|f| f.num(key))
        };
        scenarios.push(Scenario {
            label,
            test,
            reference,
            passed: verdicts.iter().filter(|p| **p).count(),
            runs: verdicts.len(),
            serve: mine.iter().filter_map(|(r, _)| first_fault(r, "time_to_serve_s")).collect(),
            outage: mine.iter().filter_map(|(r, _)| first_fault(r, "outage_s")).collect(),
            lost: mine.iter().filter_map(|(r, _)| r.num("lost")).sum(),
            duplicates: mine.iter().filter_map(|(r, _)| r.num("duplicates")).sum(),
            lines: mine.iter().map(|(_, l)| (*l).clone()).collect(),
        });
    }
    let failover = Failover {
        scenarios,
        runs,
        machine,
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        commit: commit(),
        load_after: load_average(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let failed: Vec<&str> = failover.scenarios.iter().filter(|s| s.passed < s.runs || s.runs == 0).map(|s| s.test).collect();
    anyhow::ensure!(failed.is_empty(), "failover drills failed or did not run: {failed:?} (see target/drill/)");
    Ok(failover)
}

impl Failover {
    /// The BENCHMARKS.md section and its JSON.
    pub fn section(&self) -> Section {
        let reference = self.scenarios.iter().find(|s| s.reference);
        let med = |v: &[f64]| spread(v).1;
        let cell = |v: &[f64]| {
            if v.is_empty() {
                return "–".to_owned();
            }
            let (lo, m, hi) = spread(v);
            format!("{lo:.2} / **{m:.2}** / {hi:.2}")
        };
        let mut md = format!(
            "### Failover: client-visible outage when the serving server fails, {}\n\n\
             | failure | runs passed | time to serve, s (min / median / max) | outage, s (min / median / max) | outage ÷ Kea pair (medians) | lost ACKed leases | duplicates |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
            self.date
        );
        for s in &self.scenarios {
            let ratio = match reference {
                Some(r) if !s.reference && !r.outage.is_empty() && !s.outage.is_empty() => {
                    format!("{:.2}×", med(&s.outage) / med(&r.outage))
                }
                Some(_) if s.reference => "1.00×".into(),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {}/{} | {} | {} | {ratio} | {} | {} |",
                s.label,
                s.passed,
                s.runs,
                cell(&s.serve),
                cell(&s.outage),
                s.lost,
                s.duplicates
            );
        }
        let _ = write!(
            md,
            "\nThe HA drills themselves (`cargo xtask drill`, see DRILLS.md), {} runs each, one at a time: real \
             dhclient probers re-obtain their leases (INIT-REBOOT, at most every 300 ms, 1 s to answer) while the \
             primary fails. Time to serve: failure → first answer from the survivor; outage: the longest gap between \
             answers any client saw across it. Both pairs run the checked-in venus HA config (heartbeat 1 s, \
             max-response-delay 3 s, max-unacked-clients 0). Lower is better; below 1.00× xdhcpd fails over faster \
             than Kea. A frozen xdhcpd's kernel program keeps answering renewals of leases it knows, which the \
             outage counts as answers (clients saw them).\n\n\
             - Machine: {} cores ({}), kernel {}; load average after: {}\n\
             - xdhcpd: the drills' own (test profile) build of {}\n\
             - Whole section: {:.1} min; every drill report in `bench/failover.json`\n",
            self.runs,
            self.machine.cores,
            self.machine.cpu,
            self.machine.kernel,
            self.load_after,
            self.commit,
            self.minutes
        );
        let mut json = format!(
            "{{\n  \"commit\": {},\n  \"runs\": {},\n  \"scenarios\": [\n",
            js(&self.commit),
            self.runs
        );
        let items: Vec<String> = self
            .scenarios
            .iter()
            .map(|s| {
                format!(
                    "    {{\"label\": {}, \"test\": {}, \"reference\": {}, \"passed\": {}, \"runs\": {}, \"reports\": [\n      {}\n    ]}}",
                    js(s.label),
                    js(s.test),
                    s.reference,
                    s.passed,
                    s.runs,
                    s.lines.join(",\n      ")
                )
            })
            .collect();
        json.push_str(&items.join(",\n"));
        json.push_str("\n  ]\n}\n");
        Section { key: "failover", markdown: md, json }
    }
}

//! xdhcpd's side: the runs and the last result of every test, folded
//! together from partial runs and read back from `bench/forge.json`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;

use super::{Outcome, Row, covers};
use crate::drill::Json;

/// One run of xdhcpd through the harness.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// UTC start, `2026-11-25T10:00:00Z`; also the run's key.
    pub date: String,
    /// The xdhcp commit the server was built from.
    pub commit: String,
    /// The server command line as the harness ran it (before `-c <config>`).
    pub server: String,
    /// The pytest selection; empty for the harness's default.
    pub selection: Vec<String>,
    pub forge_commit: String,
    pub wall_time_s: f64,
}

impl Run {
    pub fn selection_text(&self) -> String {
        if self.selection.is_empty() {
            "default (harness lib/selection-v4.txt)".into()
        } else {
            self.selection.join(" ")
        }
    }
}

/// xdhcpd's last result for one test.
#[derive(Clone, Debug, PartialEq)]
pub struct Result {
    pub outcome: Outcome,
    pub seconds: f64,
    pub message: String,
    /// [`Run::date`] of the run it came from.
    pub run: String,
}

/// Everything known about xdhcpd: per test, the last run that ran it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    /// Runs that some test's result still comes from, oldest first.
    pub runs: Vec<Run>,
    pub tests: BTreeMap<String, Result>,
}

impl Picture {
    /// Folds a new run in: its tests replace earlier results; earlier
    /// results for tests the selection covers but the run did not produce
    /// (renamed or removed tests) are dropped; every other test keeps its
    /// last result and the run it came from.
    pub fn merge(&mut self, run: Run, rows: &[Row]) {
        let everything = run.selection.is_empty();
        self.tests.retain(|id, _| !(everything || run.selection.iter().any(|s| covers(s, id))));
        for r in rows {
            let result =
                Result { outcome: r.outcome, seconds: r.seconds, message: r.message.clone(), run: run.date.clone() };
            self.tests.insert(r.id.clone(), result);
        }
        self.runs.retain(|r| r.date != run.date);
        self.runs.push(run);
        let used: BTreeSet<&str> = self.tests.values().map(|t| t.run.as_str()).collect();
        self.runs.retain(|r| used.contains(r.date.as_str()));
        self.runs.sort_by(|a, b| a.date.cmp(&b.date));
    }

    /// A short label per run (A, B, …, oldest first) for the tables.
    pub(super) fn labels(&self) -> BTreeMap<&str, String> {
        self.runs.iter().enumerate().map(|(i, r)| (r.date.as_str(), label(i))).collect()
    }

    /// Reads back what [`Report::json`](super::Report::json) wrote.
    pub fn from_json(j: &Json) -> anyhow::Result<Picture> {
        let mut p = Picture::default();
        for r in j.get("runs").and_then(Json::array).context("bench/forge.json: no \"runs\" list")? {
            let selection = match r.get("selection") {
                Some(Json::Arr(a)) => {
                    a.iter().filter_map(|s| if let Json::Str(s) = s { Some(s.clone()) } else { None }).collect()
                }
                _ => Vec::new(),
            };
            p.runs.push(Run {
                date: r.str("date").to_owned(),
                commit: r.str("commit").to_owned(),
                server: r.str("server").to_owned(),
                selection,
                forge_commit: r.str("forge_commit").to_owned(),
                wall_time_s: r.num("wall_time_s").unwrap_or(0.0),
            });
        }
        for t in j.get("tests").and_then(Json::array).context("bench/forge.json: no \"tests\" list")? {
            let Some(outcome) = Outcome::parse(t.str("xdhcpd")) else { continue };
            let run = t.str("run").to_owned();
            anyhow::ensure!(
                p.runs.iter().any(|r| r.date == run),
                "bench/forge.json: test {} names run {run:?}, which is not in \"runs\"",
                t.str("id")
            );
            p.tests.insert(
                t.str("id").to_owned(),
                Result { outcome, seconds: t.num("seconds").unwrap_or(0.0), message: t.str("message").to_owned(), run },
            );
        }
        Ok(p)
    }
}

fn label(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if i < letters.len() { (letters[i] as char).to_string() } else { format!("R{}", i + 1) }
}

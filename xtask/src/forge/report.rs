//! The pure half of `cargo xtask forge`: the harness's `outcomes.tsv`, the
//! picture built up from several (possibly partial) runs of xdhcpd, the
//! join with Kea 2.2's baseline, and CONFORMANCE.md / `bench/forge.json`.
//! No I/O here, so all of it is unit-tested.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use anyhow::{Context as _, bail};

use crate::bench::js;
use crate::drill::Json;

/// What pytest made of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "passed" => Outcome::Passed,
            "failed" => Outcome::Failed,
            "error" => Outcome::Error,
            "skipped" => Outcome::Skipped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    pub fn passed(self) -> bool {
        self == Outcome::Passed
    }
}

/// One line of `outcomes.tsv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub outcome: Outcome,
    pub seconds: f64,
    /// pytest node id, `tests/…/test_x.py::test_name[params]`.
    pub id: String,
    /// The first 200 characters of the failure, whitespace already folded
    /// to single spaces by the harness; empty when passed.
    pub message: String,
}

/// `outcomes.tsv`: a header, then `outcome \t seconds \t test \t message`.
pub fn parse_outcomes(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || (n == 0 && line.starts_with("outcome\t")) {
            continue;
        }
        let mut f = line.splitn(4, '\t');
        let (Some(o), Some(s), Some(id)) = (f.next(), f.next(), f.next()) else {
            bail!("outcomes.tsv line {}: fewer than 3 tab-separated fields: {line:?}", n + 1);
        };
        let outcome = Outcome::parse(o).with_context(|| format!("outcomes.tsv line {}: outcome {o:?}", n + 1))?;
        let seconds = s.parse().with_context(|| format!("outcomes.tsv line {}: seconds {s:?}", n + 1))?;
        rows.push(Row { outcome, seconds, id: id.to_owned(), message: f.next().unwrap_or("").trim().to_owned() });
    }
    Ok(rows)
}

/// The Forge file a test id belongs to.
pub fn file_of(id: &str) -> &str {
    id.split_once("::").map_or(id, |(f, _)| f)
}

/// Whether a pytest selection item covers a test id: a path covers every
/// test below it, a node id itself and its parameter variants. Options
/// (`-k …`) cover nothing for sure, so they never drop old results.
fn covers(item: &str, id: &str) -> bool {
    if item.starts_with('-') {
        return false;
    }
    let item = item.trim_end_matches('/');
    match id.strip_prefix(item) {
        Some("") => true,
        Some(rest) => rest.starts_with('/') || rest.starts_with("::") || rest.starts_with('['),
        None => false,
    }
}

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
    fn labels(&self) -> BTreeMap<&str, String> {
        self.runs.iter().enumerate().map(|(i, r)| (r.date.as_str(), label(i))).collect()
    }

    /// Reads back what [`Report::json`] wrote.
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

/// The lead's hand-kept reasons (`bench/forge-reasons.tsv`): a test id, or
/// any leading part of ids (a folder, a file, `file::test_v4_decline_fail`
/// for every test whose name starts so), a tab, the reason. `#` starts a
/// comment line. The longest matching key wins.
/// A reason only fills the column: the test is still listed and counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reasons(pub BTreeMap<String, String>);

impl Reasons {
    pub fn parse(text: &str) -> anyhow::Result<Reasons> {
        let mut m = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('\t')
                .with_context(|| format!("bench/forge-reasons.tsv line {}: no tab between test and reason", n + 1))?;
            anyhow::ensure!(!v.trim().is_empty(), "bench/forge-reasons.tsv line {}: empty reason for {k}", n + 1);
            m.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(Reasons(m))
    }

    /// The reason for `id` and the key it came from.
    pub fn find(&self, id: &str) -> Option<(&str, &str)> {
        self.0
            .iter()
            .filter(|(k, _)| id.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The Kea baseline joined with xdhcpd's picture.
pub struct Report<'a> {
    pub baseline: &'a BTreeMap<String, Row>,
    pub picture: &'a Picture,
    pub reasons: &'a Reasons,
    /// Where the baseline came from (date, Kea version), for the header.
    pub baseline_info: &'a str,
}

/// Counts for one Forge file, or for everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Tests in the baseline or run on xdhcpd.
    pub total: usize,
    pub kea_passed: usize,
    /// Tests xdhcpd ran.
    pub run: usize,
    pub xdhcpd_passed: usize,
    /// Kea passes, xdhcpd ran it and did not pass.
    pub regressions: usize,
    /// Of those, how many have a reason.
    pub explained: usize,
    /// Kea did not pass, xdhcpd passed.
    pub gains: usize,
    /// Kea passes and xdhcpd passes.
    pub both: usize,
}

impl Report<'_> {
    fn ids(&self) -> BTreeSet<&str> {
        self.baseline.keys().chain(self.picture.tests.keys()).map(String::as_str).collect()
    }

    fn kea_passed(&self, id: &str) -> bool {
        self.baseline.get(id).is_some_and(|r| r.outcome.passed())
    }

    /// Per Forge file, and the grand total.
    pub fn counts(&self) -> (BTreeMap<&str, Counts>, Counts) {
        let mut files: BTreeMap<&str, Counts> = BTreeMap::new();
        let mut all = Counts::default();
        for id in self.ids() {
            let kea = self.kea_passed(id);
            let x = self.picture.tests.get(id);
            for c in [files.entry(file_of(id)).or_default(), &mut all] {
                c.total += 1;
                c.kea_passed += usize::from(kea);
                if let Some(x) = x {
                    c.run += 1;
                    c.xdhcpd_passed += usize::from(x.outcome.passed());
                    c.both += usize::from(kea && x.outcome.passed());
                    c.gains += usize::from(!kea && x.outcome.passed());
                    if kea && !x.outcome.passed() {
                        c.regressions += 1;
                        c.explained += usize::from(self.reasons.find(id).is_some());
                    }
                }
            }
        }
        (files, all)
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let (_, c) = self.counts();
        let kea_run =
            self.ids().into_iter().filter(|id| self.kea_passed(id) && self.picture.tests.contains_key(*id)).count();
        let mut s = format!(
            "Of the {kea_run} tests Kea 2.2 passes that xdhcpd ran, xdhcpd passes **{}** and fails **{}** ({} with a \
             reason, {} not yet analysed); xdhcpd ran {} of the {} tests (Kea 2.2 passes {} of them all)",
            c.both,
            c.regressions,
            c.explained,
            c.regressions - c.explained,
            c.run,
            c.total,
            c.kea_passed,
        );
        if c.gains > 0 {
            let _ = write!(s, "; {} pass on xdhcpd and not on Kea", c.gains);
        }
        if c.run < c.total {
            let _ = write!(s, "; {} not run on xdhcpd yet", c.total - c.run);
        }
        s.push('.');
        s
    }

    pub fn markdown(&self) -> String {
        let labels = self.picture.labels();
        let (files, all) = self.counts();
        let mut m = String::from(
            "# Conformance: ISC Forge, xdhcpd against Kea 2.2\n\n\
             Written by `cargo xtask forge` (see `xtask/src/forge/`) from `bench/forge.json`; do not edit by \
             hand. The reasons column comes from `bench/forge-reasons.tsv`, which the lead keeps. Each Forge \
             test runs through the harness in `../shared/forge` (two network namespaces, the server under test \
             started as Kea would be, a fresh Kea `Dhcp4` config per test) and is compared with the result of \
             Debian's Kea 2.2.0 on the same harness. A run that covers only a selection replaces only those \
             tests; every other test keeps its last result, and the tables say which run each came from.\n\n",
        );
        let _ = writeln!(m, "**Summary:** {}\n", self.summary());
        let _ = writeln!(m, "Kea 2.2 baseline: {}\n", self.baseline_info);

        m.push_str(
            "## Runs\n\n| run | date (UTC) | xdhcp commit | server command | selection | tests | passed | wall |\n",
        );
        m.push_str("|---|---|---|---|---|---:|---:|---:|\n");
        for r in &self.picture.runs {
            let (n, p) = self
                .picture
                .tests
                .values()
                .filter(|t| t.run == r.date)
                .fold((0, 0), |(n, p), t| (n + 1, p + usize::from(t.outcome.passed())));
            let _ = writeln!(
                m,
                "| {} | {} | `{}` | `{} -c <config>` | `{}` | {n} | {p} | {:.0} min |",
                labels[r.date.as_str()],
                r.date,
                r.commit,
                r.server,
                r.selection_text(),
                r.wall_time_s / 60.0
            );
        }
        if self.picture.runs.is_empty() {
            m.push_str("| – | no run of xdhcpd yet | | | | | | |\n");
        }
        let forge: BTreeSet<&str> = self.picture.runs.iter().map(|r| r.forge_commit.as_str()).collect();
        let _ = writeln!(
            m,
            "\n(tests: those whose current result comes from that run.) Forge commit: {}.\n",
            forge.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        );

        m.push_str("## Per Forge file\n\n| Forge file | passed by Kea 2.2 | passed by xdhcpd | total | xdhcpd run |\n");
        m.push_str("|---|---:|---:|---:|---|\n");
        for (file, c) in &files {
            let runs: BTreeSet<&str> = self
                .picture
                .tests
                .iter()
                .filter(|(id, _)| file_of(id) == *file)
                .map(|(_, t)| labels[t.run.as_str()].as_str())
                .collect();
            let x = match c.run {
                0 => "not run".to_owned(),
                n if n < c.total => format!("{} (of {n} run)", c.xdhcpd_passed),
                _ => c.xdhcpd_passed.to_string(),
            };
            let runs = if runs.is_empty() { "–".to_owned() } else { runs.into_iter().collect::<Vec<_>>().join(", ") };
            let _ = writeln!(m, "| `{file}` | {} | {x} | {} | {runs} |", c.kea_passed, c.total);
        }
        let _ = writeln!(
            m,
            "| **all** | **{}** | **{}** (of {} run) | **{}** | |\n",
            all.kea_passed, all.xdhcpd_passed, all.run, all.total
        );

        let _ = writeln!(
            m,
            "## Known differences: Kea 2.2 passes, xdhcpd fails ({}; {} with a reason)\n\n\
             Every test Kea 2.2 passes and xdhcpd's last run of it did not, with the first line of its failure \
             (as the harness recorded it, at most 200 characters) and the reason: a bug or a missing feature \
             until proven otherwise.\n",
            all.regressions, all.explained
        );
        let mut used_reasons = BTreeSet::new();
        for (file, c) in &files {
            if c.regressions == 0 {
                continue;
            }
            let _ = writeln!(m, "### `{file}` ({} of {} Kea passes)\n", c.regressions, c.kea_passed);
            m.push_str("| test | run | xdhcpd's failure | reason |\n|---|---|---|---|\n");
            for (id, x) in self.picture.tests.iter().filter(|(id, _)| file_of(id) == *file) {
                if !self.kea_passed(id) || x.outcome.passed() {
                    continue;
                }
                let reason = match self.reasons.find(id) {
                    Some((k, r)) => {
                        used_reasons.insert(k);
                        cell(r)
                    }
                    None => "not yet analysed".to_owned(),
                };
                let _ = writeln!(
                    m,
                    "| `{}` | {} | {} | {reason} |",
                    test_name(id),
                    labels[x.run.as_str()],
                    failure(x.outcome, &x.message)
                );
            }
            m.push('\n');
        }

        let gains: Vec<(&String, &Result)> =
            self.picture.tests.iter().filter(|(id, x)| x.outcome.passed() && !self.kea_passed(id)).collect();
        if !gains.is_empty() {
            let _ = writeln!(m, "## xdhcpd passes, Kea 2.2 does not ({})\n", gains.len());
            m.push_str("| test | run | Kea 2.2's result |\n|---|---|---|\n");
            for (id, x) in gains {
                let kea = match self.baseline.get(id) {
                    Some(k) => failure(k.outcome, &k.message),
                    None => "not in the baseline".to_owned(),
                };
                let _ = writeln!(m, "| `{id}` | {} | {kea} |", labels[x.run.as_str()]);
            }
            m.push('\n');
        }

        let stale: Vec<&String> = self.reasons.0.keys().filter(|k| !used_reasons.contains(k.as_str())).collect();
        if !stale.is_empty() {
            m.push_str(
                "## Reasons that match no current difference\n\nIn `bench/forge-reasons.tsv`, matching no test \
                 that Kea passes and xdhcpd fails now (fixed, or the key is mistyped):\n\n",
            );
            for k in stale {
                let _ = writeln!(m, "- `{k}`");
            }
            m.push('\n');
        }
        m
    }

    /// `bench/forge.json`: the runs, the summary counts and every test.
    pub fn json(&self) -> String {
        let (files, all) = self.counts();
        let mut j = String::from("{\n  \"baseline\": ");
        j.push_str(&js(self.baseline_info));
        j.push_str(",\n  \"summary\": ");
        j.push_str(&js(&self.summary().replace("**", "")));
        let _ = write!(
            j,
            ",\n  \"counts\": {{\"total\": {}, \"kea_passed\": {}, \"run\": {}, \"xdhcpd_passed\": {}, \
             \"kea_passed_xdhcpd_failed\": {}, \"with_reason\": {}}}",
            all.total, all.kea_passed, all.run, all.xdhcpd_passed, all.regressions, all.explained
        );
        j.push_str(",\n  \"runs\": [\n");
        let runs: Vec<String> = self
            .picture
            .runs
            .iter()
            .map(|r| {
                format!(
                    "    {{\"date\": {}, \"commit\": {}, \"server\": {}, \"selection\": [{}], \"forge_commit\": {}, \
                     \"wall_time_s\": {:.0}}}",
                    js(&r.date),
                    js(&r.commit),
                    js(&r.server),
                    r.selection.iter().map(|s| js(s)).collect::<Vec<_>>().join(", "),
                    js(&r.forge_commit),
                    r.wall_time_s
                )
            })
            .collect();
        j.push_str(&runs.join(",\n"));
        j.push_str("\n  ],\n  \"files\": [\n");
        let fl: Vec<String> = files
            .iter()
            .map(|(f, c)| {
                format!(
                    "    {{\"file\": {}, \"total\": {}, \"kea_passed\": {}, \"run\": {}, \"xdhcpd_passed\": {}}}",
                    js(f),
                    c.total,
                    c.kea_passed,
                    c.run,
                    c.xdhcpd_passed
                )
            })
            .collect();
        j.push_str(&fl.join(",\n"));
        j.push_str("\n  ],\n  \"tests\": [\n");
        let tests: Vec<String> = self
            .ids()
            .into_iter()
            .map(|id| {
                let kea = self.baseline.get(id).map_or("not in baseline", |r| r.outcome.as_str());
                let mut t = format!("    {{\"id\": {}, \"kea\": {}", js(id), js(kea));
                match self.picture.tests.get(id) {
                    Some(x) => {
                        let _ = write!(
                            t,
                            ", \"xdhcpd\": {}, \"seconds\": {:.1}, \"run\": {}, \"message\": {}",
                            js(x.outcome.as_str()),
                            x.seconds,
                            js(&x.run),
                            js(&x.message)
                        );
                        if self.kea_passed(id) && !x.outcome.passed() {
                            let reason = self.reasons.find(id).map_or("not yet analysed", |(_, r)| r);
                            let _ = write!(t, ", \"reason\": {}", js(reason));
                        }
                    }
                    None => t.push_str(", \"xdhcpd\": \"not run\""),
                }
                t.push('}');
                t
            })
            .collect();
        j.push_str(&tests.join(",\n"));
        j.push_str("\n  ]\n}\n");
        j
    }
}

/// The test part of an id (`test_x[params]`).
fn test_name(id: &str) -> &str {
    id.split_once("::").map_or(id, |(_, t)| t)
}

/// A markdown table cell: no pipes, no backticks, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'").replace(['\n', '\r'], " ")
}

/// A failure's first line as a table cell.
fn failure(outcome: Outcome, message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    match (outcome, first.is_empty()) {
        (_, true) => format!("({} without a message)", outcome.as_str()),
        (Outcome::Failed, false) => format!("`{}`", cell(first)),
        (o, false) => format!("{}: `{}`", o.as_str(), cell(first)),
    }
}

/// Which tests to hold xdhcpd to in a comparison with Kea: those Kea
/// passes that xdhcpd ran and did not pass, and those Kea passes that
/// the run lacks.
pub fn compare(baseline: &BTreeMap<String, Row>, rows: &[Row], wanted: &[&str]) -> Vec<String> {
    let got: BTreeMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut bad = Vec::new();
    for w in wanted {
        if !baseline.iter().any(|(id, k)| k.outcome.passed() && covers(w, id)) {
            bad.push(format!("{w}: Kea 2.2 passes no test of that name in the baseline"));
        }
    }
    for (id, k) in baseline {
        if !k.outcome.passed() || !(wanted.is_empty() || wanted.iter().any(|w| covers(w, id))) {
            continue;
        }
        match got.get(id.as_str()) {
            Some(r) if r.outcome.passed() => {}
            Some(r) => bad.push(format!("{id}: {} {}", r.outcome.as_str(), r.message)),
            None => bad.push(format!("{id}: not run (Kea passes it)")),
        }
    }
    bad
}

/// Tests a run (of Kea, say) ends differently from the baseline, with
/// both outcomes and the run's message.
pub fn differences(baseline: &BTreeMap<String, Row>, rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match baseline.get(&r.id) {
            Some(k) if k.outcome == r.outcome => None,
            Some(k) => {
                Some(format!("{}: baseline {}, now {} {}", r.id, k.outcome.as_str(), r.outcome.as_str(), r.message))
            }
            None => Some(format!("{}: not in the baseline, now {} {}", r.id, r.outcome.as_str(), r.message)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "outcome\tseconds\ttest\tmessage\n\
        passed\t3.7\ttests/a/test_x.py::test_one\t\n\
        passed\t1.0\ttests/a/test_x.py::test_two[memfile]\t\n\
        failed\t0.8\ttests/a/test_x.py::test_three\tAssertionError: Server operation: start failed!\n\
        passed\t2.0\ttests/b/test_y.py::test_four\t\n";

    fn base() -> BTreeMap<String, Row> {
        parse_outcomes(BASE).unwrap().into_iter().map(|r| (r.id.clone(), r)).collect()
    }

    fn run(date: &str, sel: &[&str]) -> Run {
        Run {
            date: date.into(),
            commit: "abc1234".into(),
            server: "xdhcpd run".into(),
            selection: sel.iter().map(|s| (*s).to_owned()).collect(),
            forge_commit: "189a7a1".into(),
            wall_time_s: 120.0,
        }
    }

    fn row(o: Outcome, id: &str, msg: &str) -> Row {
        Row { outcome: o, seconds: 1.0, id: id.into(), message: msg.into() }
    }

    #[test]
    fn parses_outcomes() {
        let rows = parse_outcomes(BASE).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1].id, "tests/a/test_x.py::test_two[memfile]");
        assert_eq!(rows[2].outcome, Outcome::Failed);
        assert_eq!(rows[2].message, "AssertionError: Server operation: start failed!");
        assert_eq!(rows[0].message, "");
        assert!(parse_outcomes("outcome\tseconds\ttest\tmessage\nweird\t1\tx\t\n").is_err());
        assert!(parse_outcomes("passed\t1.0\n").is_err());
        assert_eq!(file_of("tests/a/test_x.py::test_one"), "tests/a/test_x.py");
    }

    #[test]
    fn selection_items_cover_their_tests() {
        assert!(covers("tests/a", "tests/a/test_x.py::test_one"));
        assert!(covers("tests/a/", "tests/a/test_x.py::test_one"));
        assert!(!covers("tests/a", "tests/ab/test_x.py::test_one"));
        assert!(covers("tests/a/test_x.py", "tests/a/test_x.py::test_two[memfile]"));
        assert!(covers("tests/a/test_x.py::test_two", "tests/a/test_x.py::test_two[memfile]"));
        assert!(!covers("tests/a/test_x.py::test_t", "tests/a/test_x.py::test_two"));
        assert!(!covers("-k", "tests/a/test_x.py::test_two"));
    }

    #[test]
    fn partial_runs_build_up_one_picture() {
        let mut p = Picture::default();
        p.merge(
            run("2026-11-25T10:00:00Z", &[]),
            &[
                row(Outcome::Failed, "tests/a/test_x.py::test_one", "no reply"),
                row(Outcome::Failed, "tests/a/test_x.py::test_gone", "x"),
                row(Outcome::Passed, "tests/b/test_y.py::test_four", ""),
            ],
        );
        // a later run of tests/a only: test_gone vanished, tests/b keeps run A
        p.merge(
            run("2026-11-26T10:00:00Z", &["tests/a"]),
            &[
                row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
                row(Outcome::Failed, "tests/a/test_x.py::test_two[memfile]", "AssertionError: x | y\nmore"),
            ],
        );
        assert_eq!(p.runs.len(), 2);
        assert!(!p.tests.contains_key("tests/a/test_x.py::test_gone"));
        assert_eq!(p.tests["tests/b/test_y.py::test_four"].run, "2026-11-25T10:00:00Z");
        assert_eq!(p.tests["tests/a/test_x.py::test_one"].run, "2026-11-26T10:00:00Z");
        // a full run replaces everything, and the old runs go
        let mut full = p.clone();
        full.merge(run("2026-11-27T10:00:00Z", &[]), &[row(Outcome::Passed, "tests/b/test_y.py::test_four", "")]);
        assert_eq!(full.runs.len(), 1);
        assert_eq!(full.tests.len(), 1);

        // JSON round trip
        let b = base();
        let reasons = Reasons::default();
        let rep = Report { baseline: &b, picture: &p, reasons: &reasons, baseline_info: "Kea 2.2.0" };
        let back = Picture::from_json(&Json::parse(&rep.json()).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn report_counts_lists_and_reasons() {
        let b = base();
        let mut p = Picture::default();
        p.merge(
            run("2026-11-25T10:00:00Z", &["tests/a"]),
            &[
                row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
                row(Outcome::Failed, "tests/a/test_x.py::test_two[memfile]", "AssertionError: x | y"),
                row(Outcome::Passed, "tests/a/test_x.py::test_three", ""),
            ],
        );
        let reasons =
            Reasons::parse("# comment\ntests/a/test_x.py::test_two\tneeds `option-def` (#16)\nstale\tgone\n").unwrap();
        let rep = Report { baseline: &b, picture: &p, reasons: &reasons, baseline_info: "Kea 2.2.0" };
        let (files, all) = rep.counts();
        let a = &files["tests/a/test_x.py"];
        assert_eq!(
            (a.total, a.kea_passed, a.run, a.xdhcpd_passed, a.regressions, a.explained, a.gains),
            (3, 2, 3, 2, 1, 1, 1)
        );
        assert_eq!((all.total, all.run), (4, 3));
        let md = rep.markdown();
        assert!(md.contains("| `tests/a/test_x.py` | 2 | 2 | 3 | A |"), "{md}");
        assert!(md.contains("| `tests/b/test_y.py` | 1 | not run | 1 | – |"), "{md}");
        assert!(
            md.contains("| `test_two[memfile]` | A | `AssertionError: x \\| y` | needs 'option-def' (#16) |"),
            "{md}"
        );
        assert!(
            md.contains("| `tests/a/test_x.py::test_three` | A | `AssertionError: Server operation: start failed!` |"),
            "{md}"
        );
        assert!(md.contains("- `stale`"), "{md}");
        assert!(
            rep.summary().contains("xdhcpd passes **1** and fails **1** (1 with a reason, 0 not yet analysed)"),
            "{}",
            rep.summary()
        );
        assert!(rep.summary().contains("1 not run on xdhcpd yet"));

        // without a reason the failure is still listed, as not yet analysed
        let none = Reasons::default();
        let rep = Report { baseline: &b, picture: &p, reasons: &none, baseline_info: "Kea 2.2.0" };
        assert!(rep.markdown().contains("| `test_two[memfile]` | A | `AssertionError: x \\| y` | not yet analysed |"));
        assert!(rep.json().contains("\"reason\": \"not yet analysed\""));
    }

    #[test]
    fn reasons_most_specific_wins_and_are_checked() {
        let r = Reasons::parse("tests/a\tarea\ntests/a/test_x.py::test_two\tspecific\n").unwrap();
        assert_eq!(r.find("tests/a/test_x.py::test_two[memfile]"), Some(("tests/a/test_x.py::test_two", "specific")));
        assert_eq!(r.find("tests/a/test_x.py::test_one"), Some(("tests/a", "area")));
        assert_eq!(r.find("tests/b/test_y.py::test_four"), None);
        // a leading part of test names covers every test named so
        let r = Reasons::parse("tests/a/test_x.py::test_t\tthe t tests\n").unwrap();
        assert_eq!(r.find("tests/a/test_x.py::test_two[memfile]").map(|f| f.1), Some("the t tests"));
        assert_eq!(r.find("tests/a/test_x.py::test_one"), None);
        assert!(Reasons::parse("no tab here\n").is_err());
        assert!(Reasons::parse("tests/a\t \n").is_err());
    }

    #[test]
    fn compare_holds_xdhcpd_to_kea_passes() {
        let b = base();
        let rows = vec![
            row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
            row(Outcome::Failed, "tests/a/test_x.py::test_three", "x"),
        ];
        let bad = compare(&b, &rows, &["tests/a/test_x.py"]);
        assert_eq!(bad, vec!["tests/a/test_x.py::test_two[memfile]: not run (Kea passes it)".to_owned()]);
        assert_eq!(compare(&b, &rows, &["tests/a/test_x.py::test_one"]), Vec::<String>::new());
        assert_eq!(compare(&b, &rows, &["tests/a/test_x.py::test_three"]).len(), 1, "Kea fails it: a bad CI pick");
        assert!(differences(&b, &rows).is_empty(), "same outcomes as the baseline");
        let r = vec![row(Outcome::Failed, "tests/a/test_x.py::test_one", "no reply")];
        assert_eq!(
            differences(&b, &r),
            vec!["tests/a/test_x.py::test_one: baseline passed, now failed no reply".to_owned()]
        );
    }
}

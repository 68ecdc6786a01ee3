//! The report written from the baseline and the picture: the counts,
//! CONFORMANCE.md and `bench/forge.json`, apart from the data they render.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use super::{Outcome, Picture, Reasons, Result, Row, file_of};
use crate::bench::js;

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

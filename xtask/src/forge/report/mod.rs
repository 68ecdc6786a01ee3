//! The pure half of `cargo xtask forge`: the harness's `outcomes.tsv`, the
//! picture built up from several (possibly partial) runs of xdhcpd, the
//! join with Kea 2.2's baseline, and CONFORMANCE.md / `bench/forge.json`.
//! No I/O here, so all of it is unit-tested.

mod picture;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};

pub use picture::{Picture, Result, Run};
pub use render::Report;

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

//! The `goals` section of BENCHMARKS.md: every target the issues set,
//! next to the ratio the last run of its section measured, read back from
//! `bench/<section>.json` so the table always matches the files beside it
//! (rewritten after every `cargo xtask bench …`).

use std::fmt::Write as _;

use super::Section;
use crate::drill::Json;
use crate::workspace_root;

/// A target: at least (`Min`) or at most (`Max`) this ratio.
#[derive(Clone, Copy)]
enum Bound {
    Min(f64),
    Max(f64),
}

/// One row: the goal, where it comes from and how it is read.
struct Goal {
    what: &'static str,
    issue: &'static str,
    section: &'static str,
    bound: Bound,
    /// The ratio and what it compares, from the section's JSON.
    read: fn(&Json) -> Option<(f64, String)>,
}

const GOALS: [Goal; 6] = [
    Goal {
        what: "XDP renewals/s ≥ 50× Kea 2.2's",
        issue: "#4, #8",
        section: "renew",
        bound: Bound::Min(50.0),
        read: |j| ratio_of(j, "xdp_over_kea"),
    },
    Goal {
        what: "XDP renewals/s ≥ 70 % of the bare XDP_TX echo",
        issue: "#4, #8",
        section: "renew",
        bound: Bound::Min(0.70),
        read: |j| ratio_of(j, "xdp_over_echo"),
    },
    Goal {
        what: "allocations/s ≥ 2× Kea 2.2's (xdhcpd with XDP attached)",
        issue: "#3",
        section: "alloc",
        bound: Bound::Min(2.0),
        read: |j| keyed(j, "servers", "xdhcpd-xdp", "median"),
    },
    Goal {
        what: "allocations/s ≥ 2× Kea 2.2's (xdhcpd --no-xdp)",
        issue: "#3",
        section: "alloc",
        bound: Bound::Min(2.0),
        read: |j| keyed(j, "servers", "xdhcpd-no-xdp", "median"),
    },
    Goal {
        what: "HA allocations/s ≥ 2× a Kea 2.2 pair's (hot-standby pairs)",
        issue: "#8",
        section: "ha",
        bound: Bound::Min(2.0),
        read: |j| keyed(j, "pairs", "xdhcpd-xdp", "median"),
    },
    Goal {
        what: "start-up with 1,000,000 leases no slower than Kea 2.2 (XDP attached, map synced)",
        issue: "#8",
        section: "startup",
        bound: Bound::Max(1.0),
        read: startup_ratio,
    },
];

/// `ratios_of_medians.<key>` of `bench/renew.json`.
fn ratio_of(j: &Json, key: &str) -> Option<(f64, String)> {
    let r = j.get("ratios_of_medians")?.num(key)?;
    Some((r, format!("`ratios_of_medians.{key}`")))
}

/// The entry `key` of list `list`: its `ratio_to_kea_median`, and its
/// `field` beside Kea's.
fn keyed(j: &Json, list: &str, key: &str, field: &str) -> Option<(f64, String)> {
    let items = j.get(list)?.array()?;
    let mine = items.iter().find(|s| s.str("key") == key)?;
    let kea = items.iter().find(|s| s.str("key") == "kea").and_then(|k| k.num(field));
    let ratio = mine.num("ratio_to_kea_median")?;
    let detail = match (mine.num(field), kea) {
        (Some(m), Some(k)) => format!("{m:.0}/s vs Kea {k:.0}/s"),
        _ => String::new(),
    };
    Some((ratio, detail))
}

/// xdhcpd (XDP) ready time ÷ Kea's, medians.
fn startup_ratio(j: &Json) -> Option<(f64, String)> {
    let items = j.get("servers")?.array()?;
    let ready = |key: &str| items.iter().find(|s| s.str("key") == key)?.get("ready_s")?.num("median");
    let (x, k) = (ready("xdhcpd-xdp")?, ready("kea")?);
    Some((x / k, format!("{x:.2} s vs Kea {k:.2} s")))
}

/// The section, from whatever `bench/*.json` exist now.
pub fn section() -> Section {
    let dir = workspace_root().join("bench");
    let mut md = String::from(
        "### Goals and where the last runs stand\n\n\
         Each row reads the last run of its section (`bench/<section>.json`, date in the last column); \
         ratios are of medians over that run's repeats. Rewritten after every `cargo xtask bench …`.\n\n\
         | goal | issue | ratio | met | measured | section, run |\n|---|---|---:|---|---|---|\n",
    );
    let mut json = Vec::new();
    for g in &GOALS {
        let file = dir.join(format!("{}.json", g.section));
        let parsed = std::fs::read_to_string(&file).ok().and_then(|t| Json::parse(&t).ok());
        let Some(j) = parsed else {
            let _ = writeln!(md, "| {} | {} | – | not measured | – | `{}`: no results yet |", g.what, g.issue, g.section);
            continue;
        };
        let date = j.str("date").to_owned();
        match (g.read)(&j) {
            Some((ratio, detail)) => {
                let met = match g.bound {
                    Bound::Min(b) => ratio >= b,
                    Bound::Max(b) => ratio <= b,
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {ratio:.2}× | {} | {detail} | `{}`, {date} |",
                    g.what,
                    g.issue,
                    if met { "**yes**" } else { "**no**" },
                    g.section
                );
                json.push(format!(
                    "  {{\"goal\": {}, \"section\": {}, \"ratio\": {ratio:.4}, \"met\": {met}, \"date\": {}}}",
                    super::js(g.what),
                    super::js(g.section),
                    super::js(&date)
                ));
            }
            None => {
                let _ = writeln!(md, "| {} | {} | – | unreadable | – | `{}`, {date} |", g.what, g.issue, g.section);
            }
        }
    }
    Section { key: "goals", markdown: md, json: format!("[\n{}\n]\n", json.join(",\n")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ratios_from_section_json() {
        let renew = Json::parse(r#"{"ratios_of_medians": {"xdp_over_kea": 8.28, "xdp_over_echo": 0.84}}"#).unwrap();
        assert_eq!((GOALS[0].read)(&renew).map(|r| r.0), Some(8.28));
        assert_eq!((GOALS[1].read)(&renew).map(|r| r.0), Some(0.84));
        let alloc = Json::parse(
            r#"{"servers": [{"key": "xdhcpd-xdp", "median": 9591.6, "ratio_to_kea_median": 1.265},
                            {"key": "kea", "median": 7582.4, "ratio_to_kea_median": 1.0}]}"#,
        )
        .unwrap();
        let (r, detail) = (GOALS[2].read)(&alloc).unwrap();
        assert_eq!((r, detail.as_str()), (1.265, "9592/s vs Kea 7582/s"));
        assert!((GOALS[3].read)(&alloc).is_none(), "a missing row is not a result");
        let startup = Json::parse(
            r#"{"servers": [{"key": "xdhcpd-xdp", "ready_s": {"median": 7.0}}, {"key": "kea", "ready_s": {"median": 10.0}}]}"#,
        )
        .unwrap();
        assert_eq!(startup_ratio(&startup).map(|r| r.0), Some(0.7));
    }
}

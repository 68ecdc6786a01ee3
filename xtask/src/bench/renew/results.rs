//! What `bench renew` measured and how it is written out: the table, the
//! BENCHMARKS.md section and `bench/renew.json`.

use std::fmt::Write as _;

use super::{FIRST, LIFETIME, Opts, POOL, Run, SUBNET, TARGET_VS_ECHO, TARGET_VS_KEA, Target};
use crate::bench::{Machine, Section, js, spread};

/// Everything measured.
pub struct Results {
    pub(super) date: String,
    pub(super) machine: Machine,
    pub(super) load_after: String,
    pub(super) kea_version: String,
    pub(super) commit: String,
    pub(super) attach_modes: Vec<String>,
    pub(super) opts: Opts,
    pub(super) minutes: f64,
    pub(super) runs: Vec<(Target, Vec<Run>)>,
}

/// A target's per-run rates as (min, median, max).
pub(super) fn rates(target: Target, runs: &[Run]) -> (f64, f64, f64) {
    spread(&runs.iter().map(|r| target.rate(&r.stats)).collect::<Vec<_>>())
}

pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Results {
    /// The BENCHMARKS.md section and bench/renew.json.
    pub fn section(&self) -> Section {
        Section { key: "renew", markdown: self.markdown(), json: self.json() }
    }

    fn median(&self, target: Target) -> f64 {
        self.runs.iter().find(|(t, _)| *t == target).map_or(0.0, |(t, r)| rates(*t, r).1)
    }

    /// Median over runs of `f(run)`, skipping runs where it is undefined.
    fn median_of(&self, target: Target, f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> =
            self.runs.iter().filter(|(t, _)| *t == target).flat_map(|(_, r)| r.iter().filter_map(&f)).collect();
        (!v.is_empty()).then(|| spread(&v).1)
    }

    pub(super) fn table(&self) -> String {
        let mut t = String::from(
            "| target | min /s | median /s | max /s | ÷ XDP (medians) | sent/s (median) | unanswered (median) | server CPU per answer (median) | load generator CPU per answer (median) | machine busy (median) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let xdp = self.median(Target::Xdp);
        for (target, runs) in &self.runs {
            let (min, median, max) = rates(*target, runs);
            let per_answer = |cpu: Option<f64>, r: &Run| {
                let n = target.answers(&r.stats);
                cpu.filter(|_| n > 0).map(|c| c / n as f64 * 1e6)
            };
            let server = self.median_of(*target, |r| per_answer(r.server_cpu_s, r));
            let loadgen = self.median_of(*target, |r| per_answer(Some(r.loadgen_cpu_s), r));
            let sent = self.median_of(*target, |r| Some(r.stats.sent_per_s())).unwrap_or(0.0);
            let lost = self
                .median_of(*target, |r| Some(100.0 * r.stats.unanswered() as f64 / r.stats.sent.max(1) as f64))
                .unwrap_or(0.0);
            let busy = self.median_of(*target, |r| Some(100.0 * r.machine_busy)).unwrap_or(0.0);
            let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1} µs"));
            let _ = writeln!(
                t,
                "| {} | {min:.0} | **{median:.0}** | {max:.0} | {:.2} | {sent:.0} | {lost:.2} % | {} | {} | {busy:.0} % |",
                target.label(),
                ratio(median, xdp),
                us(server),
                us(loadgen)
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let (xdp, kea, no_xdp, echo) =
            (self.median(Target::Xdp), self.median(Target::Kea), self.median(Target::NoXdp), self.median(Target::Echo));
        let mut m = String::new();
        let _ = writeln!(m, "### Renewals per second answered, {}\n", self.date);
        m.push_str(&self.table());
        let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
        let _ = writeln!(
            m,
            "\nRatios of medians: **XDP / Kea = {:.1}×** (target ≥ {TARGET_VS_KEA:.0}×: {}), XDP / --no-xdp = {:.1}×, \
             **XDP / bare echo = {:.0} %** (target ≥ {:.0} %: {}).\n",
            ratio(xdp, kea),
            verdict(ratio(xdp, kea) >= TARGET_VS_KEA),
            ratio(xdp, no_xdp),
            100.0 * ratio(xdp, echo),
            TARGET_VS_ECHO * 100.0,
            verdict(ratio(xdp, echo) >= TARGET_VS_ECHO),
        );
        let o = &self.opts;
        let _ = writeln!(
            m,
            "One value per run: valid DHCPACKs (the echo: echoed requests) per second of sending, counted by \
             `lab::loadgen` in mutante1 — {} clients renewing leases from one Kea CSV, closed loop with {} requests \
             outstanding, {} s per run after a warm-up pass, {} runs per target, targets interleaved, every server \
             started fresh on a fresh copy of the CSV. Server CPU: user + system time of the server process; \
             load generator CPU: this process's (its `sendmmsg` calls carry the veth/bridge forwarding in \
             softirq, so much of the path's kernel work is billed here); machine busy: all cores, from /proc/stat.\n",
            o.clients, o.window, o.seconds, o.repeats
        );
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(m, "- Kea {} as configured in `lab/venus/lobezno.json` (HA hook removed)", self.kea_version);
        let kernel: Vec<String> = self
            .runs
            .iter()
            .filter(|(t, _)| *t == Target::Xdp)
            .flat_map(|(_, r)| r.iter())
            .filter_map(|r| r.kernel_acks.map(|k| format!("{k} / {}", r.stats.acked)))
            .collect();
        if !kernel.is_empty() {
            let _ = writeln!(
                m,
                "- XDP runs, ACKs the kernel counted (`AnsweredAck`, its warm-up pass of {} included) / valid ACKs the load generator counted in the measured run: {}",
                self.opts.clients,
                kernel.join("; ")
            );
        }
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every run in `bench/renew.json`", self.minutes);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"benchmark\": \"renew\",");
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(
            j,
            "  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"load_before\": {}, \"load_after\": {}}},",
            self.machine.cores,
            js(&self.machine.cpu),
            js(&self.machine.kernel),
            js(&self.machine.load),
            js(&self.load_after)
        );
        let _ =
            writeln!(j, "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}}},", js(&self.commit), js(&self.kea_version));
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"attach_modes\": [{}],", modes.join(", "));
        let o = &self.opts;
        let _ = writeln!(
            j,
            "  \"method\": {{\"clients\": {}, \"repeats\": {}, \"seconds\": {}, \"window\": {}, \"max_packets\": {}, \"subnet\": {}, \"pool\": {}, \"first_address\": {}, \"valid_lifetime\": {LIFETIME}}},",
            o.clients,
            o.repeats,
            o.seconds,
            o.window,
            o.max_packets,
            js(&SUBNET.to_string()),
            js(POOL),
            js(&FIRST.to_string())
        );
        let (xdp, kea, no_xdp, echo) =
            (self.median(Target::Xdp), self.median(Target::Kea), self.median(Target::NoXdp), self.median(Target::Echo));
        let _ = writeln!(
            j,
            "  \"ratios_of_medians\": {{\"xdp_over_kea\": {:.3}, \"xdp_over_no_xdp\": {:.3}, \"xdp_over_echo\": {:.4}}},",
            ratio(xdp, kea),
            ratio(xdp, no_xdp),
            ratio(xdp, echo)
        );
        j.push_str("  \"targets\": [\n");
        for (i, (target, runs)) in self.runs.iter().enumerate() {
            let (min, median, max) = rates(*target, runs);
            let _ = writeln!(
                j,
                "    {{\"key\": {}, \"label\": {}, \"min_per_s\": {min:.1}, \"median_per_s\": {median:.1}, \"max_per_s\": {max:.1}, \"runs\": [",
                js(target.key()),
                js(target.label())
            );
            let rows: Vec<String> = runs.iter().map(|r| run_json(*target, r)).collect();
            let _ = writeln!(j, "      {}", rows.join(",\n      "));
            j.push_str(if i + 1 < self.runs.len() { "    ]},\n" } else { "    ]}\n" });
        }
        j.push_str("  ]\n}\n");
        j
    }
}

fn run_json(target: Target, r: &Run) -> String {
    let s = &r.stats;
    let opt = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.3}"));
    format!(
        "{{\"rep\": {}, \"per_s\": {:.1}, \"sent\": {}, \"acked\": {}, \"naks\": {}, \"echoed\": {}, \"invalid\": {}, \"duplicates\": {}, \"unanswered\": {}, \"send_errors\": {}, \"rx_dropped\": {}, \"stalls\": {}, \"sending_s\": {:.3}, \"server_cpu_s\": {}, \"loadgen_cpu_s\": {:.3}, \"machine_busy\": {:.3}, \"kernel_answered_acks\": {}, \"load_before\": {}}}",
        r.rep,
        target.rate(s),
        s.sent,
        s.acked,
        s.naks,
        s.echoed,
        s.invalid,
        s.duplicates,
        s.unanswered(),
        s.send_errors,
        s.rx_dropped,
        s.stalls,
        s.sending.as_secs_f64(),
        opt(r.server_cpu_s),
        r.loadgen_cpu_s,
        r.machine_busy,
        r.kernel_acks.map_or("null".to_owned(), |k| k.to_string()),
        js(&r.load_before)
    )
}

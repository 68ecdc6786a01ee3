//! `bench alloc`'s own results: its table, BENCHMARKS.md section and
//! `bench/alloc.json`, apart from running the benchmark.

use std::fmt::Write as _;

use super::{
    Cores, FIRST_RATE, KEA, PATIENCE, POOL, RATE_STEP, REFERENCE_RATE, SATURATED, SUBNET, Server, Setup, Sweep, at_best,
    cpu_per_ack_us, drop_pct, own_cores, point_json, sweeps_json,
};
use crate::bench::{Section, js, spread};

/// Everything measured, ready to write out.
pub struct Results {
    pub(super) setup: Setup,
    pub(super) kea_mt: String,
    pub(super) reps: u32,
    pub(super) seconds: u32,
    pub(super) sweeps: Vec<(Server, Vec<Sweep>)>,
}

impl Results {
    /// The BENCHMARKS.md section and bench/alloc.json.
    pub fn section(&self) -> Section {
        Section { key: "alloc", markdown: self.markdown(), json: self.json() }
    }

    /// Every run of `server`.
    fn runs(&self, server: Server) -> impl Iterator<Item = &Sweep> {
        self.sweeps.iter().filter(move |(s, _)| *s == server).flat_map(|(_, runs)| runs)
    }

    fn bests(&self, server: Server) -> Vec<f64> {
        self.runs(server).map(|r| r.best.report.rate).collect()
    }

    fn median(&self, server: Server) -> f64 {
        spread(&self.bests(server)).1
    }

    /// Median over runs of the server's CPU time per ACK at the reference
    /// rate, in microseconds.
    fn cpu_per_ack_us(&self, server: Server) -> Option<f64> {
        cpu_per_ack_us(self.runs(server), REFERENCE_RATE, |p| p.server_cpu_s)
    }

    fn kea(&self) -> f64 {
        self.median(KEA)
    }

    /// This row's median ÷ Kea's (as configured, same cores).
    fn ratio(&self, server: Server) -> f64 {
        self.ratio_to(server, server.reference())
    }

    /// `server`'s median ÷ `reference`'s (0 without a reference).
    fn ratio_to(&self, server: Server, reference: Server) -> f64 {
        let r = self.median(reference);
        if r > 0.0 { self.median(server) / r } else { 0.0 }
    }

    /// Server CPU seconds per second of load at the best point (median
    /// over runs): near the CPUs it was given, the server was the limit;
    /// well below, perfdhcp was.
    fn cpu_use_at_best(&self, server: Server) -> f64 {
        let uses: Vec<f64> = self.runs(server).map(|r| r.best.server_cpu_s / f64::from(self.seconds)).collect();
        spread(&uses).1
    }

    pub(super) fn table(&self) -> String {
        let mut t = String::new();
        t.push_str("| server | min | median | max | ÷ Kea, same cores (medians) | best at `-r` (median) | REQUEST-ACK drops at best (median) | ACK delay avg / max at best (median) | server CPU per ACK at ");
        let _ = writeln!(t, "{REFERENCE_RATE}/s (median) | server CPU use at best (median) |");
        t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (server, runs) in &self.sweeps {
            let (min, median, max) = spread(&self.bests(*server));
            let ratio = self.ratio(*server);
            let cpu = match self.cpu_per_ack_us(*server) {
                Some(us) => format!("{us:.0} µs"),
                None => "–".into(),
            };
            let name = if server.diagnostic() {
                format!("*{}* (diagnostic)", server.label())
            } else {
                server.label().to_owned()
            };
            let _ = writeln!(
                t,
                "| {name} | {min:.0} | **{median:.0}** | {max:.0} | {ratio:.2}× | {:.0} | {:.1} % | {:.1} / {:.0} ms | {cpu} | {:.2} CPU |",
                at_best(runs, |p| f64::from(p.offered)),
                at_best(runs, |p| drop_pct(&p.report.request_ack)),
                at_best(runs, |p| p.report.request_ack.avg_ms),
                at_best(runs, |p| p.report.request_ack.max_ms),
                self.cpu_use_at_best(*server)
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "### Allocations per second (completed DORA/s), {}\n", self.setup.date);
        m.push_str(&self.table());
        let _ = writeln!(
            m,
            "\nOne value per run: the best REQUEST-ACK rate perfdhcp measured in that run's sweep of offered \
             rates (`-r` {FIRST_RATE}, +{RATE_STEP}, … until {PATIENCE} points in a row fall below {:.0} % of the \
             offered rate); {} runs per server, {} s of load per point, servers interleaved, fresh server and \
             lease file for every point. Server CPU per ACK: user + system time of the server process (all \
             threads, kernel work on its behalf included) during the {REFERENCE_RATE}/s point, divided by the \
             ACKs perfdhcp received. Server CPU use at best: that CPU time at the best point divided by its \
             seconds of load (the server had {} CPU(s) to itself; perfdhcp, pinned to the other, was the limit \
             when this stays well below). Compared rows: perfdhcp `-g single` on CPU 0, the server and every \
             thread of it on the other CPUs; ratios divide by Kea as configured on the same cores. Diagnostic \
             rows change one thing each and are not part of the comparison.\n",
            SATURATED * 100.0,
            self.reps,
            self.seconds,
            own_cores().map_or(0, |(_, server)| server.len())
        );
        let st = Server::Kea { mt: false, cores: Cores::Own };
        let vs_st = |server: Server| self.ratio_to(server, st);
        let _ = writeln!(
            m,
            "Against Kea single-threaded on the same core (its faster setting there): {:.2}× `--no-xdp`, {:.2}× \
             with XDP attached.\n",
            vs_st(Server::Xdhcpd { xdp: false, cores: Cores::Own }),
            vs_st(Server::Xdhcpd { xdp: true, cores: Cores::Own })
        );
        let kea = format!(
            "- Kea {} with `\"multi-threading\": {}` from `lab/venus/lobezno.json`",
            self.setup.kea_version, self.kea_mt
        );
        self.setup.markdown(&mut m, "", &kea);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        self.setup.json(&mut j);
        let _ =
            writeln!(j, "  \"kea_multi_threading\": {},", if self.kea_mt.is_empty() { "null" } else { &self.kea_mt });
        let _ = writeln!(
            j,
            "  \"method\": {{\"reps\": {}, \"seconds_per_point\": {}, \"first_rate\": {FIRST_RATE}, \"rate_step\": {RATE_STEP}, \"reference_rate\": {REFERENCE_RATE}, \"saturated_below\": {SATURATED}, \"patience\": {PATIENCE}, \"subnet\": {}, \"pool\": {}, \"valid_lifetime\": 3600, \"perfdhcp\": {}}},",
            self.reps,
            self.seconds,
            js(SUBNET),
            js(POOL),
            js("perfdhcp -4 -l eth0 -r RATE -n RATE*SECONDS -R RATE*SECONDS -p SECONDS*3 -d 2 -d 2 [-g single] 192.168.50.2")
        );
        let _ = writeln!(j, "  \"kea_median_acks_per_s\": {:.1},", self.kea());
        let head = |server: Server| {
            let (min, median, max) = spread(&self.bests(server));
            format!(
                "\"key\": {}, \"label\": {}, \"diagnostic\": {}, \"min\": {min:.1}, \"median\": {median:.1}, \"max\": {max:.1}, \"ratio_to_kea_median\": {:.3}, \"cpu_us_per_ack_at_reference_rate\": {}, \"server_cpu_use_at_best\": {:.3}, \"cores\": {}",
                js(server.key()),
                js(server.label()),
                server.diagnostic(),
                self.ratio(server),
                self.cpu_per_ack_us(server).map_or("null".into(), |us| format!("{us:.1}")),
                self.cpu_use_at_best(server),
                js(match server.cores() {
                    Cores::Own => "perfdhcp -g single on CPU 0, the server on the others",
                    Cores::Shared => "shared, nothing pinned",
                })
            )
        };
        sweeps_json(&mut j, "servers", &self.sweeps, head, point_json);
        j.push_str("}\n");
        j
    }
}

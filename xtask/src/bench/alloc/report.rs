//! Report pieces the perfdhcp benchmarks share: the setup list, medians
//! at the best point, and sweeps and points as JSON.

use std::{fmt::Write as _, time::Instant};

use lab::perfdhcp::Exchange;

use super::{Point, Sweep};
use crate::bench::{Machine, command_line, commit, js, load_average, spread};

/// Where and with what a perfdhcp benchmark ran: the head of its report
/// (`bench alloc`'s and `bench ha`'s).
pub(in crate::bench) struct Setup {
    /// The section: `bench/<key>.json`.
    pub(in crate::bench) key: &'static str,
    pub(in crate::bench) date: String,
    pub(in crate::bench) machine: Machine,
    pub(in crate::bench) load_after: String,
    pub(in crate::bench) lease_fs: String,
    pub(in crate::bench) kea_version: String,
    pub(in crate::bench) perfdhcp_version: String,
    pub(in crate::bench) commit: String,
    pub(in crate::bench) attach_modes: Vec<String>,
    /// Minutes the whole run took.
    pub(in crate::bench) minutes: f64,
}

impl Setup {
    /// Completes what run `key` noted (`machine` probed before it) at its end.
    pub(in crate::bench) fn now(
        key: &'static str,
        started: Instant,
        machine: Machine,
        lease_fs: String,
        attach_modes: Vec<String>,
    ) -> Setup {
        Setup {
            key,
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine,
            load_after: load_average(),
            lease_fs,
            kea_version: command_line("kea-dhcp4", &["-v"]),
            perfdhcp_version: command_line("perfdhcp", &["-v"]).trim_start_matches("VERSION: ").to_owned(),
            commit: commit(),
            attach_modes,
            minutes: started.elapsed().as_secs_f64() / 60.0,
        }
    }

    /// The report's list: machine, load, lease files (`lease_note` after
    /// them), xdhcpd, `kea_line`, perfdhcp, the run's duration.
    pub(in crate::bench) fn markdown(&self, m: &mut String, lease_note: &str, kea_line: &str) {
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- Lease files: {} (lab dir){lease_note}", self.lease_fs);
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(m, "{kea_line}");
        let _ = writeln!(m, "- perfdhcp {}, in mutante1, relaying (giaddr 192.168.50.250)", self.perfdhcp_version);
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every point in `bench/{}.json`", self.minutes, self.key);
    }

    /// The JSON members `benchmark`, `date`, `machine`, `versions` and
    /// `xdhcpd_attach_modes`, each on a line ending in a comma.
    pub(in crate::bench) fn json(&self, j: &mut String) {
        let _ = writeln!(j, "  \"benchmark\": {},", js(self.key));
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(
            j,
            "  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"load_before\": {}, \"load_after\": {}, \"lease_fs\": {}}},",
            self.machine.cores,
            js(&self.machine.cpu),
            js(&self.machine.kernel),
            js(&self.machine.load),
            js(&self.load_after),
            js(&self.lease_fs)
        );
        let _ = writeln!(
            j,
            "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}, \"perfdhcp\": {}}},",
            js(&self.commit),
            js(&self.kea_version),
            js(&self.perfdhcp_version)
        );
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"xdhcpd_attach_modes\": [{}],", modes.join(", "));
    }
}

/// Median over `runs` of `f` of their best point.
pub(in crate::bench) fn at_best<P: AsRef<Point>>(runs: &[Sweep<P>], f: impl Fn(&Point) -> f64) -> f64 {
    spread(&runs.iter().map(|r| f(r.best.as_ref())).collect::<Vec<_>>()).1
}

/// Median over `runs` of CPU time (`cpu_s` of a point, seconds) per ACK
/// at offered rate `rate`, in microseconds.
pub(in crate::bench) fn cpu_per_ack_us<'a, P: AsRef<Point> + 'a>(
    runs: impl IntoIterator<Item = &'a Sweep<P>>,
    rate: u32,
    cpu_s: impl Fn(&P) -> f64,
) -> Option<f64> {
    let per_run: Vec<f64> = runs
        .into_iter()
        .filter_map(|run| run.points.iter().find(|p| p.as_ref().offered == rate))
        .filter(|p| p.as_ref().report.request_ack.received > 0)
        .map(|p| cpu_s(p) / p.as_ref().report.request_ack.received as f64 * 1e6)
        .collect();
    (!per_run.is_empty()).then(|| spread(&per_run).1)
}

/// The JSON member `"<name>": [...]`, an object per server: `head`'s
/// members (key, label, statistics), then its `runs`, each with its points
/// (`point`).
pub(in crate::bench) fn sweeps_json<S: Copy, P: AsRef<Point>>(
    j: &mut String,
    name: &str,
    sweeps: &[(S, Vec<Sweep<P>>)],
    head: impl Fn(S) -> String,
    point: impl Fn(&P) -> String,
) {
    let _ = writeln!(j, "  \"{name}\": [");
    for (i, (server, runs)) in sweeps.iter().enumerate() {
        let _ = writeln!(j, "    {{{}, \"runs\": [", head(*server));
        runs_json(j, runs, &point);
        j.push_str(if i + 1 < sweeps.len() { "    ]},\n" } else { "    ]}\n" });
    }
    j.push_str("  ]\n");
}

/// `runs` as the items of a JSON array, each with its points (`point`).
fn runs_json<P: AsRef<Point>>(j: &mut String, runs: &[Sweep<P>], point: impl Fn(&P) -> String) {
    for (k, run) in runs.iter().enumerate() {
        let points: Vec<String> = run.points.iter().map(&point).collect();
        let best = run.best.as_ref();
        let _ = write!(
            j,
            "      {{\"rep\": {}, \"load_before\": {}, \"best_acks_per_s\": {:.1}, \"best_offered\": {}, \"points\": [\n        {}\n      ]}}",
            run.rep,
            js(&run.load_before),
            best.report.rate,
            best.offered,
            points.join(",\n        ")
        );
        j.push_str(if k + 1 < runs.len() { ",\n" } else { "\n" });
    }
}

pub(in crate::bench) fn drop_pct(x: &Exchange) -> f64 {
    if x.sent == 0 { 0.0 } else { 100.0 * x.drops as f64 / x.sent as f64 }
}

pub(in crate::bench) fn point_json(p: &Point) -> String {
    let x = |e: &Exchange| {
        format!(
            "{{\"sent\": {}, \"received\": {}, \"drops\": {}, \"orphans\": {}, \"avg_ms\": {:.3}, \"max_ms\": {:.3}}}",
            e.sent, e.received, e.drops, e.orphans, e.avg_ms, e.max_ms
        )
    };
    format!(
        "{{\"offered\": {}, \"acks_per_s\": {:.1}, \"discover_offer\": {}, \"request_ack\": {}, \"server_rcvbuf_errors\": {}, \"perfdhcp_rcvbuf_errors\": {}, \"server_cpu_s\": {:.2}}}",
        p.offered,
        p.report.rate,
        x(&p.report.discover_offer),
        x(&p.report.request_ack),
        p.server_rcvbuf_errors,
        p.client_rcvbuf_errors,
        p.server_cpu_s
    )
}

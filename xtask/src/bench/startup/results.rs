//! What `bench startup` measured and how it is written out: the tables,
//! the BENCHMARKS.md section and `bench/startup.json`.

use std::fmt::Write as _;

use super::{LIFETIME, POOL, Rep, SUBNET, Server, Start, TARGET_VS_KEA};
use crate::bench::{Machine, Section, js, spread};

/// Everything measured, ready to write out.
pub struct Results {
    pub(super) date: String,
    pub(super) machine: Machine,
    pub(super) load_after: String,
    pub(super) lease_fs: String,
    pub(super) kea_version: String,
    pub(super) commit: String,
    pub(super) attach_modes: Vec<String>,
    pub(super) leases: usize,
    pub(super) file_mb: f64,
    pub(super) minutes: f64,
    pub(super) reps: Vec<(Server, Vec<Rep>)>,
}

impl Results {
    /// The BENCHMARKS.md section and bench/startup.json.
    pub fn section(&self) -> Section {
        Section { key: "startup", markdown: self.markdown(), json: self.json() }
    }

    fn runs(&self, server: Server) -> &[Rep] {
        self.reps.iter().find(|(s, _)| *s == server).map_or(&[], |(_, r)| r)
    }

    fn ready(&self, server: Server) -> Vec<f64> {
        self.runs(server).iter().map(|r| r.full.ready_s()).collect()
    }

    /// Per repeat: (full − empty) Pss per lease, in bytes.
    fn bytes_per_lease(&self, server: Server) -> Vec<f64> {
        self.runs(server)
            .iter()
            .map(|r| (r.full.pss_kib as f64 - r.empty.pss_kib as f64) * 1024.0 / self.leases as f64)
            .collect()
    }

    fn map_bytes_per_lease(&self, server: Server) -> Vec<f64> {
        let n = self.leases as f64;
        self.runs(server)
            .iter()
            .filter_map(|r| Some((r.full.map_memlock? as f64 - r.empty.map_memlock? as f64) / n))
            .collect()
    }

    pub(super) fn tables(&self) -> String {
        let kea = spread(&self.ready(Server::Kea)).1;
        let kea_mem = spread(&self.bytes_per_lease(Server::Kea)).1;
        let ratio = |x: f64, of: f64| if of > 0.0 { format!("{:.2}×", x / of) } else { "–".into() };
        let mut t = String::new();
        t.push_str("| server | min | median | max | ÷ Kea (medians) | phases (median s after spawn) |\n");
        t.push_str("|---|---:|---:|---:|---:|---|\n");
        for (server, runs) in &self.reps {
            let (min, median, max) = spread(&self.ready(*server));
            let phases: Vec<String> = server
                .phases()
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let at: Vec<f64> = runs.iter().filter_map(|r| r.full.phases.get(i).copied()).collect();
                    format!("`{name}` {:.2}", spread(&at).1)
                })
                .collect();
            let _ = writeln!(
                t,
                "| {} | {min:.2} s | **{median:.2} s** | {max:.2} s | {} | {} |",
                server.label(),
                ratio(median, kea),
                phases.join(", ")
            );
        }
        t.push_str("\n| memory per lease | min | median | max | ÷ Kea (medians) | Pss empty → full (median) |\n");
        t.push_str("|---|---:|---:|---:|---:|---:|\n");
        for (server, runs) in &self.reps {
            let (min, median, max) = spread(&self.bytes_per_lease(*server));
            let empty: Vec<f64> = runs.iter().map(|r| r.empty.pss_kib as f64 / 1024.0).collect();
            let full: Vec<f64> = runs.iter().map(|r| r.full.pss_kib as f64 / 1024.0).collect();
            let _ = writeln!(
                t,
                "| {}, process (Pss) | {min:.0} B | **{median:.0} B** | {max:.0} B | {} | {:.0} → {:.0} MiB |",
                server.label(),
                ratio(median, kea_mem),
                spread(&empty).1,
                spread(&full).1
            );
            let map = self.map_bytes_per_lease(*server);
            if !map.is_empty() {
                let (min, median, max) = spread(&map);
                let total: Vec<f64> = runs.iter().filter_map(|r| r.full.map_memlock).map(|m| m as f64 / 1048576.0).collect();
                let _ = writeln!(
                    t,
                    "| {}, kernel lease map (memlock) | {min:.0} B | **{median:.0} B** | {max:.0} B | – | {:.0} MiB full |",
                    server.label(),
                    spread(&total).1
                );
            }
        }
        t
    }

    fn markdown(&self) -> String {
        let xdp = spread(&self.ready(Server::Xdp)).1;
        let kea = spread(&self.ready(Server::Kea)).1;
        let mut m = String::new();
        let _ = writeln!(m, "### Start-up with {} leases, and memory per lease, {}\n", self.leases, self.date);
        m.push_str(&self.tables());
        let verdict = if kea > 0.0 && xdp / kea <= TARGET_VS_KEA { "met" } else { "**not met**" };
        let _ = writeln!(
            m,
            "\nGoal (issue #8): start-up no slower than Kea — xdhcpd with XDP {:.2}× Kea's time: {verdict}.\n",
            if kea > 0.0 { xdp / kea } else { 0.0 }
        );
        let _ = writeln!(
            m,
            "Start-up: spawn (`ip netns exec` in lobezno) to the line each server logs once it serves — xdhcpd \
             `serving` (store loaded, kernel map synced, sockets handed to the serving tasks), Kea \
             `DHCP4_STARTED` (configuration with the lease file committed, sockets open) — both found by \
             reading the log every 2 ms. Every start checked complete: xdhcpd's logged store size and kernel \
             map entries, Kea's `subnet[1].assigned-addresses` over its control socket, all {}. Memory per \
             lease: `Pss` of the server process 1 s after it is ready, with the {0}-lease file minus with a \
             header-only file, ÷ {0}; the kernel lease map's `memlock` (fdinfo; the map is not preallocated) \
             apart. {} repeats, each server started with the empty then the full file, servers interleaved; \
             the same Kea config and a fresh copy of the same {:.0} MB Kea 2.2 lease file for every start \
             (page-cached). No DHCP traffic.\n",
            self.leases,
            self.runs(Server::Kea).len(),
            self.file_mb
        );
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- Lease files: {} (lab dir)", self.lease_fs);
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(
            m,
            "- Kea {}, `lab/venus/lobezno.json` without HA, subnet {SUBNET}, pool {POOL}",
            self.kea_version
        );
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every start in `bench/startup.json`", self.minutes);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"benchmark\": \"startup\",");
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(j, "  \"machine\": {},", self.machine.json(&self.load_after, &self.lease_fs));
        let _ = writeln!(j, "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}}},", js(&self.commit), js(&self.kea_version));
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"xdhcpd_attach_modes\": [{}],", modes.join(", "));
        let _ = writeln!(
            j,
            "  \"method\": {{\"leases\": {}, \"lease_file_mb\": {:.1}, \"subnet\": {}, \"pool\": {}, \"valid_lifetime\": {LIFETIME}, \"ready\": {}, \"memory\": {}}},",
            self.leases,
            self.file_mb,
            js(SUBNET),
            js(POOL),
            js("spawn to xdhcpd `serving` / Kea `DHCP4_STARTED` in the log, polled every 2 ms"),
            js("(Pss with the full file - Pss with a header-only file) / leases, 1 s after ready")
        );
        j.push_str("  \"servers\": [\n");
        for (i, (server, runs)) in self.reps.iter().enumerate() {
            let (min, median, max) = spread(&self.ready(*server));
            let (bmin, bmed, bmax) = spread(&self.bytes_per_lease(*server));
            let map = self.map_bytes_per_lease(*server);
            let map = if map.is_empty() {
                "null".to_owned()
            } else {
                let (a, b, c) = spread(&map);
                format!("{{\"min\": {a:.1}, \"median\": {b:.1}, \"max\": {c:.1}}}")
            };
            let phases: Vec<String> = server.phases().iter().map(|p| js(p)).collect();
            let _ = writeln!(
                j,
                "    {{\"key\": {}, \"label\": {}, \"phases\": [{}], \"ready_s\": {{\"min\": {min:.3}, \"median\": {median:.3}, \"max\": {max:.3}}}, \"bytes_per_lease\": {{\"min\": {bmin:.1}, \"median\": {bmed:.1}, \"max\": {bmax:.1}}}, \"kernel_map_bytes_per_lease\": {map}, \"reps\": [",
                js(server.key()),
                js(server.label()),
                phases.join(", ")
            );
            for (k, rep) in runs.iter().enumerate() {
                let _ = write!(
                    j,
                    "      {{\"empty\": {}, \"full\": {}}}",
                    start_json(&rep.empty),
                    start_json(&rep.full)
                );
                j.push_str(if k + 1 < runs.len() { ",\n" } else { "\n" });
            }
            j.push_str(if i + 1 < self.reps.len() { "    ]},\n" } else { "    ]}\n" });
        }
        j.push_str("  ]\n}\n");
        j
    }
}

fn start_json(s: &Start) -> String {
    let phases: Vec<String> = s.phases.iter().map(|p| format!("{p:.3}")).collect();
    let opt = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
    format!(
        "{{\"phases_s\": [{}], \"loaded\": {}, \"kernel_entries\": {}, \"pss_kib\": {}, \"rss_kib\": {}, \"map_memlock\": {}, \"load_before\": {}}}",
        phases.join(", "),
        s.loaded,
        opt(s.kernel_entries),
        s.pss_kib,
        s.rss_kib,
        opt(s.map_memlock),
        js(&s.load_before)
    )
}

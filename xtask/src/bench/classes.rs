//! `cargo xtask bench classes`: what client classification costs an
//! allocation. The same sweep as [`super::alloc`] (perfdhcp on CPU 0, the
//! server on the others, fresh lease file per point), xdhcpd `--no-xdp`
//! with the venus config as it is and with ten client classes of the kinds
//! production configs carry (vendor class, PXE architecture, iPXE user
//! class, option 82 circuit and remote ids, MAC prefix, host name,
//! `KNOWN`, a negation, a class with options) that every packet is
//! evaluated against, runs interleaved. The classes restrict no pool, so
//! both rows allocate the same addresses; the difference is the
//! evaluation. Goal (issue #17): with classes within 10 % of without.

use std::{fmt::Write as _, path::PathBuf, time::Instant};

use anyhow::Context as _;
use lab::{KeaConfig, Lab, venus};
use serde_json::json;

use super::alloc::{
    FIRST_RATE, RATE_STEP, REFERENCE_RATE, RELAY_HOST, Setup, Sweep, at_best, clock_ticks, config, cpu_per_ack_us,
    drive, interleaved, note_attach_mode, own_cores, point_json, prepare, start_xdhcpd, sweep, sweeps_json,
};
use super::{Section, findmnt, js, spread};

/// The goal: allocations/s with the classes at least this share of without.
const GOAL: f64 = 0.90;

/// The two configurations compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Plain,
    TenClasses,
}

impl Variant {
    fn key(self) -> &'static str {
        match self {
            Variant::Plain => "xdhcpd-no-classes",
            Variant::TenClasses => "xdhcpd-ten-classes",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "xdhcpd --no-xdp, no classes",
            Variant::TenClasses => "xdhcpd --no-xdp, 10 client classes",
        }
    }
}

/// Ten classes with the tests real configs use; each one is evaluated on
/// every packet, none matches perfdhcp's clients except the negation
/// (which adds an option), and none restricts a pool.
pub fn ten_classes() -> serde_json::Value {
    json!([
        { "name": "pxe", "test": "substring(option[60].hex,0,9) == 'PXEClient'", "boot-file-name": "pxelinux.0" },
        { "name": "uefi-x64", "test": "option[93].hex == 0x0007", "boot-file-name": "bootx64.efi" },
        { "name": "ipxe", "test": "option[77].text == 'iPXE'", "boot-file-name": "http://boot.example/menu.ipxe" },
        { "name": "phones", "test": "substring(option[60].hex,0,6) == 'Avaya-'",
          "option-data": [ { "name": "tftp-server-name", "data": "phones.example" } ] },
        { "name": "circuit-a", "test": "relay4[1].hex == 'rack-a-port-1'" },
        { "name": "remote-b", "test": "relay4[2].exists and relay4[2].hex == 0x001122334455" },
        { "name": "mac-prefix", "test": "substring(pkt4.mac,0,3) == 0x00163e" },
        { "name": "printers", "test": "substring(option[host-name].text,0,3) == 'prn'" },
        { "name": "known-gold", "test": "member('KNOWN') and pkt4.giaddr == 192.168.50.250" },
        { "name": "not-pxe", "test": "not member('pxe')",
          "option-data": [ { "name": "ntp-servers", "data": "192.168.50.2" } ] }
    ])
}

struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    plain: KeaConfig,
    classes: KeaConfig,
    seconds: u32,
    attach_modes: Vec<String>,
    clock_ticks: f64,
}

impl Bench {
    fn point(&mut self, v: Variant, offered: u32) -> anyhow::Result<super::alloc::Point> {
        let (client, server) = own_cores()?;
        self.lab.pin(&venus::client(RELAY_HOST), Some(&client))?;
        self.lab.pin(venus::PRIMARY, Some(&server))?;
        let dir = self.lab.host_dir(venus::PRIMARY)?;
        let cfg = if v == Variant::Plain { &self.plain } else { &self.classes };
        let p = start_xdhcpd(&self.lab, &self.xdhcpd, venus::PRIMARY, cfg, &dir, false)?;
        note_attach_mode(&p, v.label(), &mut self.attach_modes);
        let mut running = super::Running::Xdhcpd(p);
        let point = drive(&self.lab, offered, self.seconds, &[running.pid()], self.clock_ticks, true);
        running.stop()?;
        point
    }
}

/// Everything measured.
pub struct Results {
    setup: Setup,
    reps: u32,
    seconds: u32,
    sweeps: Vec<(Variant, Vec<Sweep>)>,
}

/// `reps` sweeps of each variant, interleaved, `seconds` of load per point.
pub fn measure(reps: u32, seconds: u32) -> anyhow::Result<Results> {
    let started = Instant::now();
    let (xdhcpd, machine, lab) = prepare()?;
    let mut plain = config(venus::PRIMARY)?;
    plain.without_ha()?;
    let mut classes = plain.clone();
    classes.set("/Dhcp4/client-classes", ten_classes()).context("adding the classes")?;
    let lease_fs = findmnt(&lab.host_dir(venus::PRIMARY)?);
    let mut bench = Bench { lab, xdhcpd, plain, classes, seconds, attach_modes: Vec::new(), clock_ticks: clock_ticks() };
    let variants = [Variant::Plain, Variant::TenClasses];
    let sweeps = interleaved(reps, &variants, Variant::label, |v, rep| {
        sweep(rep, FIRST_RATE, RATE_STEP, |offered| bench.point(v, offered).with_context(|| format!("{} at {offered}/s", v.label())))
    })?;
    let setup = Setup::now("classes", started, machine, lease_fs, bench.attach_modes.clone());
    drop(bench);
    let r = Results { setup, reps, seconds, sweeps };
    println!("\nclasses/plain allocations: {:.3} (goal ≥ {GOAL})", r.ratio());
    Ok(r)
}

impl Results {
    fn runs(&self, v: Variant) -> &[Sweep] {
        self.sweeps.iter().find(|(x, _)| *x == v).map_or(&[], |(_, r)| r)
    }

    fn median(&self, v: Variant) -> f64 {
        at_best(self.runs(v), |p| p.report.rate)
    }

    /// Median allocations/s with the classes over without.
    pub fn ratio(&self) -> f64 {
        let plain = self.median(Variant::Plain);
        if plain > 0.0 { self.median(Variant::TenClasses) / plain } else { 0.0 }
    }

    fn cpu_us(&self, v: Variant) -> Option<f64> {
        cpu_per_ack_us(self.runs(v), REFERENCE_RATE, |p| p.server_cpu_s)
    }

    /// The BENCHMARKS.md section and bench/classes.json.
    pub fn section(&self) -> Section {
        Section { key: "classes", markdown: self.markdown(), json: self.json() }
    }

    fn markdown(&self) -> String {
        let mut m = String::from("## Allocations with client classes (`cargo xtask bench classes`)\n\n");
        let _ = writeln!(
            m,
            "{} runs per variant, interleaved, {} s of load per point, the sweep of `bench alloc` (perfdhcp `-g single` \
             on CPU 0, xdhcpd `--no-xdp` on the others, a fresh lease file per point). The ten classes \
             (`xtask/src/bench/classes.rs`) are evaluated on every packet and restrict no pool. The machine is shared \
             with other work: compare the two rows of this run, not other runs.\n",
            self.reps, self.seconds
        );
        m.push_str("| server | ACK/s at best, median (min–max) | server CPU µs per ACK at 6,000/s | ratio to no classes |\n|---|---|---|---|\n");
        for (v, _) in &self.sweeps {
            let bests: Vec<f64> = self.runs(*v).iter().map(|r| r.best.report.rate).collect();
            let (min, median, max) = spread(&bests);
            let plain = self.median(Variant::Plain);
            let _ = writeln!(
                m,
                "| {} | {median:.0} ({min:.0}–{max:.0}) | {} | {:.2} |",
                v.label(),
                self.cpu_us(*v).map_or("–".into(), |us| format!("{us:.1}")),
                if plain > 0.0 { median / plain } else { 0.0 }
            );
        }
        if let (Some(with), Some(without)) = (self.cpu_us(Variant::TenClasses), self.cpu_us(Variant::Plain)) {
            let _ = writeln!(
                m,
                "\nServer CPU per ACK at {REFERENCE_RATE}/s, with the classes over without: **{:.2}** (the steadier \
                 figure on a loaded machine: it does not depend on what else gets the CPU).",
                with / without
            );
        }
        let met = if self.ratio() >= GOAL { "met" } else { "not met" };
        let _ = writeln!(m, "\nGoal (issue #17): with ten classes ≥ {:.0} % of without: **{:.1} %, {met}**.\n", GOAL * 100.0, self.ratio() * 100.0);
        self.setup.markdown(&mut m, "", "- Kea: not part of this section");
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        self.setup.json(&mut j);
        let _ = writeln!(j, "  \"method\": {{\"reps\": {}, \"seconds_per_point\": {}, \"classes\": {}}},", self.reps, self.seconds, ten_classes());
        let _ = writeln!(j, "  \"ratio_classes_to_plain\": {:.3},", self.ratio());
        let head = |v: Variant| {
            let (min, median, max) = spread(&self.runs(v).iter().map(|r| r.best.report.rate).collect::<Vec<_>>());
            format!(
                "\"key\": {}, \"label\": {}, \"min\": {min:.1}, \"median\": {median:.1}, \"max\": {max:.1}, \"cpu_us_per_ack_at_reference_rate\": {}",
                js(v.key()),
                js(v.label()),
                self.cpu_us(v).map_or("null".into(), |us| format!("{us:.1}"))
            )
        };
        sweeps_json(&mut j, "servers", &self.sweeps, head, point_json);
        j.push_str("}\n");
        j
    }
}

#[cfg(test)]
mod tests {
    /// The benchmark's classes are a config xdhcpd accepts (checked by the
    /// daemon's own parser when the bench starts; here their shape).
    #[test]
    fn ten_distinct_classes() {
        let c = super::ten_classes();
        let names: std::collections::BTreeSet<&str> = c.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 10);
    }
}

//! The kernel program loaded for `BPF_PROG_TEST_RUN`, shared by the
//! `xdp_*` tests: load and attach nothing, fill the maps with `MapSync`
//! like the daemon does, run frames, read the per-CPU outcome counters.
//!
//! Each test binary uses a different subset, hence the `dead_code` allow.
#![allow(dead_code)]

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{TestRun, TestRunOptions, Xdp},
};
use dhcp_common::counters::{Counters, MAP_NAME, Outcome};
use dhcp_user::{
    config,
    dhcp::policy::{OptionValue, Policy},
    fastpath::MapSync,
    glue,
    net::Interface,
    xdp::EBPF_OBJECT,
};

/// `XDP_PASS`: handed to the daemon.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`: answered in the kernel.
pub const XDP_TX: u32 = 3;

/// The loaded program and the daemon-side view of its maps.
pub struct Rig {
    /// The program and its maps.
    pub ebpf: Ebpf,
    /// The maps as the daemon fills them.
    pub sync: MapSync,
    /// The renewal ring buffer.
    pub events: RingBuf<MapData>,
    /// The policy the maps were filled from.
    pub policy: Policy,
    /// The test run's ingress device: lo (index 1) with the server's
    /// addresses.
    pub lo: Interface,
}

impl Rig {
    /// Loads the program and installs every subnet of `policy` as served
    /// on `lo`; asserts none was left to the daemon.
    pub fn new(policy: Policy, lo: Interface) -> Rig {
        let mut rig = Rig::bare(policy, lo);
        let left = rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&rig.lo), |_| true).unwrap();
        assert!(left.is_empty(), "{left:?}");
        rig
    }

    /// Loads the program with empty maps (the caller installs subnets).
    pub fn bare(policy: Policy, lo: Interface) -> Rig {
        let mut ebpf = Ebpf::load(EBPF_OBJECT).expect("load (needs root and a built eBPF object)");
        let prog: &mut Xdp = ebpf.program_mut("xdhcp").unwrap().try_into().unwrap();
        prog.load().unwrap();
        let (mut sync, events) = MapSync::take(&mut ebpf).unwrap();
        sync.set_clock().unwrap();
        Rig { ebpf, sync, events, policy, lo }
    }

    /// Runs the program on `frame` arriving on lo: (action, frame out).
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog: &mut Xdp = self.ebpf.program_mut("xdhcp").unwrap().try_into().unwrap();
        let mut out = vec![0u8; 4096];
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
        let mut md = [0u8; 24];
        md[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        md[12..16].copy_from_slice(&self.lo.index.to_ne_bytes());
        let r = prog
            .test_run(TestRunOptions { data_in: Some(frame), data_out: Some(&mut out), ctx_in: Some(&md), ..TestRunOptions::new() })
            .unwrap();
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    /// The outcome counters summed over CPUs.
    pub fn counters(&self) -> Counters {
        let a = PerCpuArray::<_, Counters>::try_from(self.ebpf.map(MAP_NAME).unwrap()).unwrap();
        a.get(&0, 0).unwrap().iter().fold(Counters::default(), |acc, c| acc.add(c))
    }

    /// How much outcome `o` grew since `before`.
    pub fn delta(&self, before: &Counters, o: Outcome) -> u64 {
        self.counters().get(o) - before.get(o)
    }
}

/// Venus's primary (`lab/venus/lobezno.json`) with two more options on its
/// LAN subnet: 42 sent only when asked for, 119 always sent (above 61, so
/// the template's option order is exercised).
pub fn venus_policy() -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let mut p = glue::compile(&config::parse(&text, "lobezno.json").unwrap());
    let s = &mut p.subnets[0];
    for (code, v) in [
        (42, OptionValue { data: vec![192, 168, 50, 9], always_send: false }),
        (119, OptionValue { data: b"\x05venus\x04test\x00".to_vec(), always_send: true }),
    ] {
        s.options.insert(code, v.clone());
        // Pools carry effective options: a subnet-level change shows there too.
        for pool in &mut s.pools {
            pool.options.insert(code, v.clone());
        }
    }
    p
}

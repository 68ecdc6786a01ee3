//! Loading and attaching the embedded XDP program, and reading its maps.
//!
//! Attach policy: native (driver) mode first, then generic (skb) mode, and
//! userspace-only when `--no-xdp` is given or BPF is unavailable — with one
//! log line saying which. Attachments are BPF links owned by this process:
//! when `xdhcpd` exits or crashes the kernel drops them, so no program keeps
//! answering from stale maps. Nothing is pinned.

use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{Xdp, XdpMode},
};
use dhcp_common::counters::{self, Counters, Outcome};
use thiserror::Error;

/// The eBPF object built by `build.rs`, embedded so `xdhcpd` is one binary.
/// Empty when the build ran with `AYA_BUILD_SKIP=1`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dhcp-ebpf"));

/// Name of the XDP entry function in `dhcp-ebpf`.
const PROGRAM: &str = "xdhcp";

/// How DHCP traffic reaches us, as shown on the status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native XDP in the driver: the fast path proper.
    Native,
    /// Generic XDP in the network stack: correct but slower.
    Generic,
    /// No XDP: every packet is handled in userspace; says why.
    UserspaceOnly(String),
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachMode::Native => f.write_str("native XDP"),
            AttachMode::Generic => f.write_str("generic (skb) XDP"),
            AttachMode::UserspaceOnly(why) => write!(f, "userspace-only ({why})"),
        }
    }
}

/// Errors loading or attaching; all of them lead to userspace-only mode at
/// start-up, so they are reported, not fatal.
#[derive(Debug, Error)]
pub enum XdpError {
    /// This binary was built without the eBPF object.
    #[error("this xdhcpd was built with AYA_BUILD_SKIP=1 and carries no XDP program")]
    NotBuiltIn,
    /// The kernel refused the object (no BPF, no privileges, verifier).
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    /// The program or an attach step failed.
    #[error("{what}: {source}")]
    Program {
        /// Which step.
        what: String,
        /// The underlying error.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map the daemon needs is missing or has the wrong type.
    #[error("map {name}: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// The underlying error.
        #[source]
        source: aya::maps::MapError,
    },
}

/// The loaded program and its attachments. Dropping it detaches.
pub struct Fastpath {
    ebpf: Ebpf,
    mode: AttachMode,
}

impl Fastpath {
    /// Loads the embedded object and attaches it to every interface, native
    /// mode first, generic as fallback. All interfaces end up in the same
    /// mode (the weakest that worked) so the status page has one answer.
    pub fn attach(interfaces: &[String]) -> Result<Self, XdpError> {
        if EBPF_OBJECT.is_empty() {
            return Err(XdpError::NotBuiltIn);
        }
        let mut ebpf = Ebpf::load(EBPF_OBJECT)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| XdpError::Program {
                what: format!("program {PROGRAM} not in object"),
                source: aya::programs::ProgramError::NotLoaded,
            })?
            .try_into()
            .map_err(|source| XdpError::Program { what: "program type".into(), source })?;
        program.load().map_err(|source| XdpError::Program { what: "verifier".into(), source })?;
        let mut mode = AttachMode::Native;
        for iface in interfaces {
            match program.attach(iface, XdpMode::Driver) {
                Ok(_) => {}
                Err(native) => {
                    tracing::debug!(interface = %iface, error = %native, "native XDP refused; trying generic");
                    program
                        .attach(iface, XdpMode::Skb)
                        .map_err(|source| XdpError::Program { what: format!("attaching to {iface}"), source })?;
                    mode = AttachMode::Generic;
                }
            }
        }
        Ok(Self { ebpf, mode })
    }

    /// The loaded object, to take the fast-path maps out of it.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Which mode the program runs in.
    pub fn mode(&self) -> &AttachMode {
        &self.mode
    }

    /// Per-outcome totals summed over CPUs.
    pub fn counters(&self) -> Result<Vec<(Outcome, u64)>, XdpError> {
        let map = self.ebpf.map(counters::MAP_NAME).ok_or(XdpError::Map {
            name: counters::MAP_NAME,
            source: aya::maps::MapError::InvalidName { name: counters::MAP_NAME.into() },
        })?;
        let array = PerCpuArray::<_, Counters>::try_from(map)
            .map_err(|source| XdpError::Map { name: counters::MAP_NAME, source })?;
        let per_cpu = array.get(&0, 0).map_err(|source| XdpError::Map { name: counters::MAP_NAME, source })?;
        let total = per_cpu.iter().fold(Counters::default(), |acc, c| acc.add(c));
        Ok(Outcome::ALL.iter().map(|&o| (o, total.get(o))).collect())
    }
}

//! Loading and attaching the embedded XDP program, and reading its maps.
//!
//! Attach policy, per interface: native (driver) mode only where its
//! `XDP_TX` replies are known to leave the interface ([`delivery`] decides
//! from what [`probe`] reads: the driver's `xdp_features`, a veth peer's
//! XDP program), generic (skb) mode otherwise or when the kernel refuses
//! native, and userspace-only when even that fails, when `--no-xdp` is
//! given or BPF is unavailable. Every interface not in native mode gets
//! one warning saying why. While running, [`watch`] re-checks the native
//! interfaces and moves one to generic mode at the first sign its replies
//! are lost. Attachments are BPF links owned by this process: when
//! `xdhcpd` exits or crashes the kernel drops them, so no program keeps
//! answering from stale maps. Nothing is pinned.

pub mod delivery;
pub mod probe;
pub mod watch;

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use dhcp_common::counters::{self, Counters, Outcome};
use thiserror::Error;

use delivery::{Verdict, Why};

/// The eBPF object built by `build.rs`, embedded so `xdhcpd` is one binary.
/// Empty when the build ran with `AYA_BUILD_SKIP=1`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dhcp-ebpf"));

/// Name of the XDP entry function in `dhcp-ebpf`.
const PROGRAM: &str = "xdhcp";

/// How DHCP traffic reaches us on an interface, as shown on the status
/// page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native XDP in the driver: the fast path proper.
    Native,
    /// Generic XDP in the network stack: correct but slower.
    Generic,
    /// No XDP: every packet is handled in userspace; says why.
    UserspaceOnly(String),
}

impl AttachMode {
    /// The short label of the `mode` metric label: `native`, `generic`,
    /// `userspace-only`.
    pub fn label(&self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
            AttachMode::UserspaceOnly(_) => "userspace-only",
        }
    }
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
    /// No interface took the program, not even in generic mode.
    #[error("attached to no interface: {0}")]
    NothingAttached(String),
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

/// One interface's mode, for the log, the status page and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceMode {
    /// Interface name.
    pub interface: String,
    /// How the program runs there.
    pub mode: AttachMode,
    /// Why it is not native, if it is not.
    pub why: Option<Why>,
    /// How often the run-time watch moved it out of native mode (0 or 1).
    pub fallbacks: u64,
}

/// The live state of one interface's attachment.
struct Attachment {
    interface: String,
    mode: AttachMode,
    why: Option<Why>,
    /// The BPF link, `None` when userspace-only.
    link: Option<XdpLinkId>,
    /// The driver's `XDP_TX` error counters when last sampled (native).
    tx_errors: BTreeMap<String, u64>,
    fallbacks: u64,
}

/// The loaded program and its attachments. Dropping it detaches.
pub struct Fastpath {
    /// Locked for map reads and for moving an interface between modes.
    ebpf: Mutex<Ebpf>,
    attachments: Mutex<Vec<Attachment>>,
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM)
        .ok_or_else(|| XdpError::Program {
            what: format!("program {PROGRAM} not in object"),
            source: aya::programs::ProgramError::NotLoaded,
        })?
        .try_into()
        .map_err(|source| XdpError::Program { what: "program type".into(), source })
}

/// Attaches `program` to `iface` in generic mode (at start-up, or
/// `at_run_time` from native), or records why not; warns once either way.
fn attach_generic(program: &mut Xdp, iface: &str, why: Why, at_run_time: bool) -> Attachment {
    let (now, was) =
        if at_run_time { ("now runs in", "native replies are not being delivered: ") } else { ("runs in", "") };
    let (mode, link) = match program.attach(iface, XdpMode::Skb) {
        Ok(link) => {
            tracing::warn!(
                interface = %iface,
                reason = why.code(),
                "{iface}: {was}{why}; the XDP program {now} generic (skb) mode there, whose replies take the normal transmit path"
            );
            (AttachMode::Generic, Some(link))
        }
        Err(e) => {
            tracing::warn!(
                interface = %iface,
                reason = why.code(),
                "{iface}: {was}{why}; generic (skb) XDP refused too ({e}): every request there goes to the daemon"
            );
            (AttachMode::UserspaceOnly(format!("generic XDP refused: {e}")), None)
        }
    };
    Attachment { interface: iface.to_owned(), mode, why: Some(why), link, tx_errors: BTreeMap::new(), fallbacks: 0 }
}

/// The `XDP_TX` error counters of `iface` now (empty if unreadable).
fn sample_tx_errors(iface: &str) -> BTreeMap<String, u64> {
    probe::stats(iface).map(|s| watch::tx_errors(&s)).unwrap_or_default()
}

impl Fastpath {
    /// Loads the embedded object and attaches it to every interface in the
    /// mode whose replies are delivered there (see the module doc). Fails
    /// only if the program cannot be loaded or no interface took it.
    pub fn attach(interfaces: &[String]) -> Result<Self, XdpError> {
        if EBPF_OBJECT.is_empty() {
            return Err(XdpError::NotBuiltIn);
        }
        let mut ebpf = Ebpf::load(EBPF_OBJECT)?;
        let program = program(&mut ebpf)?;
        program.load().map_err(|source| XdpError::Program { what: "verifier".into(), source })?;
        let mut attachments = Vec::new();
        let mut last_error = None;
        for iface in interfaces {
            let facts = probe::facts(iface);
            tracing::debug!(interface = %iface, ?facts, "XDP delivery facts");
            let a = match delivery::decide(&facts) {
                Verdict::Native => match program.attach(iface, XdpMode::Driver) {
                    Ok(link) => Attachment {
                        interface: iface.clone(),
                        mode: AttachMode::Native,
                        why: None,
                        link: Some(link),
                        tx_errors: sample_tx_errors(iface),
                        fallbacks: 0,
                    },
                    Err(e) => attach_generic(program, iface, Why::NativeRefused(e.to_string()), false),
                },
                Verdict::Generic(why) => attach_generic(program, iface, why, false),
            };
            if let AttachMode::UserspaceOnly(e) = &a.mode {
                last_error = Some(e.clone());
            }
            attachments.push(a);
        }
        if attachments.iter().all(|a| a.link.is_none()) {
            return Err(XdpError::NothingAttached(last_error.unwrap_or_else(|| "no interface".into())));
        }
        Ok(Self { ebpf: Mutex::new(ebpf), attachments: Mutex::new(attachments) })
    }

    /// The loaded object, to take the fast-path maps out of it.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        self.ebpf.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each interface's mode and why.
    pub fn interfaces(&self) -> Vec<InterfaceMode> {
        self.attachments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|a| InterfaceMode {
                interface: a.interface.clone(),
                mode: a.mode.clone(),
                why: a.why.clone(),
                fallbacks: a.fallbacks,
            })
            .collect()
    }

    /// One line for the log and the status page: the modes with their
    /// interfaces, e.g. `native XDP on eth0, eth1` or `native XDP on eth0;
    /// generic (skb) XDP on eth1`.
    pub fn summary(&self) -> String {
        summary(&self.interfaces())
    }

    /// Re-checks every native interface (delivery facts, `XDP_TX` error
    /// counters) and moves those whose replies are not delivered to
    /// generic mode, warning once each. [`watch::run`] calls it.
    pub fn check_delivery(&self) {
        let mut attachments = self.attachments.lock().unwrap_or_else(PoisonError::into_inner);
        for a in attachments.iter_mut().filter(|a| a.mode == AttachMode::Native) {
            let why = match delivery::decide(&probe::facts(&a.interface)) {
                Verdict::Generic(why) => Some(why),
                Verdict::Native => {
                    let now = sample_tx_errors(&a.interface);
                    let grew = watch::grown(&a.tx_errors, &now);
                    a.tx_errors = now;
                    grew.map(|counters| Why::TxErrors { counters })
                }
            };
            if let Some(why) = why {
                self.fall_back(a, why);
            }
        }
    }

    /// Moves `a` from native to generic mode (detach, attach generic).
    fn fall_back(&self, a: &mut Attachment, why: Why) {
        let mut ebpf = self.ebpf.lock().unwrap_or_else(PoisonError::into_inner);
        let program = match program(&mut ebpf) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(interface = %a.interface, error = %e, "cannot move to generic XDP");
                return;
            }
        };
        if let Some(link) = a.link.take()
            && let Err(e) = program.detach(link)
        {
            tracing::error!(interface = %a.interface, error = %e, "detaching native XDP");
        }
        let fallbacks = a.fallbacks + 1;
        *a = attach_generic(program, &a.interface.clone(), why, true);
        a.fallbacks = fallbacks;
    }

    /// Per-outcome totals summed over CPUs.
    pub fn counters(&self) -> Result<Vec<(Outcome, u64)>, XdpError> {
        let ebpf = self.ebpf.lock().unwrap_or_else(PoisonError::into_inner);
        let map = ebpf.map(counters::MAP_NAME).ok_or(XdpError::Map {
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

/// [`Fastpath::summary`] of `modes`: interfaces grouped by mode, in order
/// of first appearance.
pub fn summary(modes: &[InterfaceMode]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for m in modes {
        let mode = m.mode.to_string();
        match groups.iter_mut().find(|(g, _)| *g == mode) {
            Some((_, names)) => names.push(&m.interface),
            None => groups.push((mode, vec![&m.interface])),
        }
    }
    groups.iter().map(|(mode, names)| format!("{mode} on {}", names.join(", "))).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(interface: &str, mode: AttachMode) -> InterfaceMode {
        InterfaceMode { interface: interface.into(), mode, why: None, fallbacks: 0 }
    }

    #[test]
    fn summary_groups_interfaces_by_mode() {
        // The start-up line the lab tests and benchmarks read.
        assert_eq!(summary(&[m("eth0", AttachMode::Native)]), "native XDP on eth0");
        assert_eq!(
            summary(&[m("eth0", AttachMode::Native), m("eth1", AttachMode::Generic), m("eth2", AttachMode::Native),]),
            "native XDP on eth0, eth2; generic (skb) XDP on eth1"
        );
        assert_eq!(
            summary(&[m("eth0", AttachMode::UserspaceOnly("generic XDP refused: EPERM".into()))]),
            "userspace-only (generic XDP refused: EPERM) on eth0"
        );
    }

    #[test]
    fn mode_labels() {
        assert_eq!(AttachMode::Native.label(), "native");
        assert_eq!(AttachMode::Generic.label(), "generic");
        assert_eq!(AttachMode::UserspaceOnly(String::new()).label(), "userspace-only");
    }
}

//! Whether a frame the program returns with `XDP_TX` in native (driver)
//! mode really leaves the interface — decided from facts about the link,
//! without I/O, so every rule is unit-tested. [`super::probe`] gathers the
//! facts; [`super::Fastpath::attach`] and [`super::watch`] act on the
//! answer.
//!
//! What the kernel does (Linux 6.3 to 6.18, `drivers/net/veth.c`):
//! - Every driver reports `xdp_features` through the `netdev` generic
//!   netlink family (`NETDEV_A_DEV_XDP_FEATURES`, Linux 6.3+).
//!   `NETDEV_XDP_ACT_BASIC` means the driver runs native programs and
//!   implements `XDP_PASS`/`XDP_DROP`/`XDP_TX`; without it native `XDP_TX`
//!   is not supported, and without the attribute at all (older kernels)
//!   nothing can be checked.
//! - veth sends an `XDP_TX` frame into its *peer's* receive ring:
//!   `veth_xdp_flush_bq` → `veth_xdp_xmit`, which drops the frame (and
//!   counts `rx_queue_N_xdp_tx_errors` on our side) unless the peer's
//!   queue has NAPI (`rq->napi`). NAPI exists when the peer has a native
//!   XDP program or GRO requested, and `veth_set_xdp_features` sets
//!   `NETDEV_XDP_ACT_NDO_XMIT` on our device in exactly those cases.
//! - But GRO is not enough for `XDP_TX`: after queueing, `veth_xdp_flush`
//!   schedules the peer's NAPI only `if (rcu_access_pointer(rcv_rq->xdp_prog))`.
//!   With GRO alone the frames sit in the peer's ring, counted as sent
//!   (`xdp_tx`), until some other traffic happens to run that NAPI —
//!   measured on 6.18: five echoes queued, none delivered. So for veth the
//!   peer must run a *native* XDP program (even one returning `XDP_PASS`).
//!
//! Generic (skb) mode has none of these conditions: its `XDP_TX` goes
//! through `generic_xdp_tx` → `netdev_start_xmit`, the normal transmit path.

use std::fmt;

/// `enum netdev_xdp_act` (include/uapi/linux/netdev.h): the bits of
/// `xdp_features`.
pub mod act {
    /// Native XDP with `XDP_PASS`, `XDP_DROP`, `XDP_ABORTED` and `XDP_TX`.
    pub const BASIC: u64 = 1 << 0;
    /// `XDP_REDIRECT` out of this device.
    pub const REDIRECT: u64 = 1 << 1;
    /// This device accepts frames redirected into it (`ndo_xdp_xmit`); on
    /// veth, set when the peer has NAPI.
    pub const NDO_XMIT: u64 = 1 << 2;
    /// AF_XDP zero copy.
    pub const XSK_ZEROCOPY: u64 = 1 << 3;
    /// Offloaded programs.
    pub const HW_OFFLOAD: u64 = 1 << 4;
    /// Multi-buffer frames on receive.
    pub const RX_SG: u64 = 1 << 5;
    /// Multi-buffer frames through `ndo_xdp_xmit`.
    pub const NDO_XMIT_SG: u64 = 1 << 6;

    /// The names the kernel's YAML spec gives these bits, for log lines.
    pub fn names(bits: u64) -> String {
        const ALL: [(u64, &str); 7] = [
            (BASIC, "basic"),
            (REDIRECT, "redirect"),
            (NDO_XMIT, "ndo-xmit"),
            (XSK_ZEROCOPY, "xsk-zerocopy"),
            (HW_OFFLOAD, "hw-offload"),
            (RX_SG, "rx-sg"),
            (NDO_XMIT_SG, "ndo-xmit-sg"),
        ];
        let v: Vec<&str> = ALL.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect();
        if v.is_empty() { "none".into() } else { v.join(",") }
    }
}

/// How the other end of a veth runs XDP, read over rtnetlink
/// (`IFLA_XDP_ATTACHED` / `IFLA_XDP_DRV_PROG_ID` of the peer, even in
/// another network namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerXdp {
    /// A native (driver) program is attached: the peer has NAPI and
    /// `veth_xdp_flush` kicks it.
    Native,
    /// No program, or only a generic one (which gives the peer no NAPI).
    NotNative,
    /// Could not be read; says why (no permission in the peer's namespace,
    /// peer gone, …).
    Unknown(String),
}

/// The veth's other end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its name, for messages (`None` if it could not be read).
    pub name: Option<String>,
    /// Its XDP attachment.
    pub xdp: PeerXdp,
}

/// What is known about one interface before attaching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// The driver name ethtool reports (`ETHTOOL_GDRVINFO`), e.g. `veth`;
    /// `None` when the interface has no ethtool driver info.
    pub driver: Option<String>,
    /// `NETDEV_A_DEV_XDP_FEATURES`, or why it is not known (kernel before
    /// 6.3: no `netdev` family).
    pub xdp_features: Result<u64, String>,
    /// For a veth: its peer.
    pub peer: Option<Peer>,
}

/// Why native `XDP_TX` is not trusted on an interface (or why a native
/// attachment was given up later). `Display` is the sentence for logs and
/// the status page; [`Why::code`] the short label for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The kernel does not report `xdp_features`.
    FeaturesUnknown(String),
    /// The driver does not do native `XDP_TX`.
    NoBasic {
        /// Driver name.
        driver: String,
        /// The features it does report.
        features: u64,
    },
    /// A veth whose peer has neither an XDP program nor GRO: `XDP_TX`
    /// frames are dropped (`veth_xdp_xmit` finds no NAPI).
    VethPeerWithoutNapi {
        /// The peer's name, if known.
        peer: Option<String>,
    },
    /// A veth whose peer has GRO but no native program: frames are queued
    /// and never delivered (`veth_xdp_flush` does not schedule the peer).
    VethPeerGroOnly {
        /// The peer's name, if known.
        peer: Option<String>,
    },
    /// The peer could not be inspected.
    VethPeerUnknown(String),
    /// The kernel refused the native attachment.
    NativeRefused(String),
    /// At run time the driver counted `XDP_TX` transmit errors.
    TxErrors {
        /// The counters that grew and by how much, e.g.
        /// `rx_queue_0_xdp_tx_errors +3`.
        counters: String,
    },
}

impl Why {
    /// A short stable label for the `reason` of metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Why::FeaturesUnknown(_) => "xdp-features-unknown",
            Why::NoBasic { .. } => "driver-without-xdp-tx",
            Why::VethPeerWithoutNapi { .. } => "veth-peer-without-xdp",
            Why::VethPeerGroOnly { .. } => "veth-peer-gro-only",
            Why::VethPeerUnknown(_) => "veth-peer-unknown",
            Why::NativeRefused(_) => "native-refused",
            Why::TxErrors { .. } => "xdp-tx-errors",
        }
    }
}

fn peer_name(peer: &Option<String>) -> String {
    peer.as_deref().map_or_else(|| "the veth peer".to_owned(), |p| format!("veth peer {p}"))
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::FeaturesUnknown(e) => write!(
                f,
                "the kernel does not report the driver's xdp_features ({e}; Linux 6.3 or later has them), so native XDP_TX delivery cannot be checked"
            ),
            Why::NoBasic { driver, features } => {
                write!(f, "driver {driver} does not support native XDP_TX (xdp_features: {})", act::names(*features))
            }
            Why::VethPeerWithoutNapi { peer } => write!(
                f,
                "{} has no XDP program (and no GRO), so the kernel would drop every native XDP_TX reply",
                peer_name(peer)
            ),
            Why::VethPeerGroOnly { peer } => write!(
                f,
                "{} has GRO but no native XDP program, so native XDP_TX replies would wait in its queue undelivered",
                peer_name(peer)
            ),
            Why::VethPeerUnknown(e) => {
                write!(f, "the veth peer's XDP state could not be read ({e}), so native XDP_TX delivery is not assured")
            }
            Why::NativeRefused(e) => write!(f, "the kernel refused native XDP ({e})"),
            Why::TxErrors { counters } => {
                write!(f, "the driver counted XDP_TX transmit errors ({counters}): native replies were not delivered")
            }
        }
    }
}

/// What [`decide`] concludes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Native `XDP_TX` replies are delivered.
    Native,
    /// They are not assured: use generic mode, for this reason.
    Generic(Why),
}

/// The driver name of veth devices.
pub const VETH: &str = "veth";

/// Decides from `facts` whether native mode's `XDP_TX` is delivered.
pub fn decide(facts: &LinkFacts) -> Verdict {
    let features = match &facts.xdp_features {
        Ok(f) => *f,
        Err(e) => return Verdict::Generic(Why::FeaturesUnknown(e.clone())),
    };
    let driver = facts.driver.as_deref().unwrap_or("?");
    if features & act::BASIC == 0 {
        return Verdict::Generic(Why::NoBasic { driver: driver.to_owned(), features });
    }
    if driver != VETH {
        return Verdict::Native;
    }
    let Some(peer) = &facts.peer else {
        return Verdict::Generic(Why::VethPeerUnknown("no peer found".into()));
    };
    match (&peer.xdp, features & act::NDO_XMIT != 0) {
        (PeerXdp::Native, true) => Verdict::Native,
        (PeerXdp::Unknown(e), _) => Verdict::Generic(Why::VethPeerUnknown(e.clone())),
        // The kernel clears NDO_XMIT while the peer's program is being
        // replaced; trust the absence.
        (_, false) => Verdict::Generic(Why::VethPeerWithoutNapi { peer: peer.name.clone() }),
        (PeerXdp::NotNative, true) => Verdict::Generic(Why::VethPeerGroOnly { peer: peer.name.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What veth reports on 6.18 with a program attached: basic, redirect,
    /// rx-sg, and ndo-xmit(-sg) only when the peer has NAPI (measured).
    const VETH_ALONE: u64 = act::BASIC | act::REDIRECT | act::RX_SG;
    const VETH_PEER_NAPI: u64 = VETH_ALONE | act::NDO_XMIT | act::NDO_XMIT_SG;

    fn veth(features: u64, xdp: PeerXdp) -> LinkFacts {
        LinkFacts {
            driver: Some(VETH.into()),
            xdp_features: Ok(features),
            peer: Some(Peer { name: Some("xp-lobezno".into()), xdp }),
        }
    }

    #[test]
    fn veth_with_a_native_program_on_the_peer_is_native() {
        assert_eq!(decide(&veth(VETH_PEER_NAPI, PeerXdp::Native)), Verdict::Native);
    }

    #[test]
    fn veth_with_nothing_on_the_peer_is_generic() {
        let v = decide(&veth(VETH_ALONE, PeerXdp::NotNative));
        let Verdict::Generic(why) = v else { panic!("{v:?}") };
        assert_eq!(why.code(), "veth-peer-without-xdp");
        assert!(why.to_string().contains("veth peer xp-lobezno has no XDP program"), "{why}");
    }

    #[test]
    fn veth_with_gro_only_on_the_peer_is_generic() {
        // NDO_XMIT says the peer has NAPI, yet veth_xdp_flush never
        // schedules it without a program: frames would wait forever.
        let v = decide(&veth(VETH_PEER_NAPI, PeerXdp::NotNative));
        assert_eq!(v, Verdict::Generic(Why::VethPeerGroOnly { peer: Some("xp-lobezno".into()) }));
    }

    #[test]
    fn veth_peer_program_without_ndo_xmit_is_not_trusted() {
        let v = decide(&veth(VETH_ALONE, PeerXdp::Native));
        assert!(matches!(v, Verdict::Generic(Why::VethPeerWithoutNapi { .. })), "{v:?}");
    }

    #[test]
    fn unreadable_peer_is_generic() {
        let v = decide(&veth(VETH_PEER_NAPI, PeerXdp::Unknown("EPERM".into())));
        let Verdict::Generic(why) = v else { panic!("{v:?}") };
        assert_eq!(why.code(), "veth-peer-unknown");
        assert!(why.to_string().contains("EPERM"));
        let mut f = veth(VETH_PEER_NAPI, PeerXdp::Native);
        f.peer = None;
        assert!(matches!(decide(&f), Verdict::Generic(Why::VethPeerUnknown(_))));
    }

    #[test]
    fn kernels_without_xdp_features_are_generic() {
        let f = LinkFacts {
            driver: Some("ixgbe".into()),
            xdp_features: Err("no generic netlink family netdev".into()),
            peer: None,
        };
        let Verdict::Generic(why) = decide(&f) else { panic!() };
        assert_eq!(why.code(), "xdp-features-unknown");
        assert!(why.to_string().contains("Linux 6.3"), "{why}");
    }

    #[test]
    fn drivers_without_basic_are_generic() {
        // virtio_net without enough queues, or a driver with redirect-target
        // support only: no native XDP_TX.
        for (driver, features) in [("tun", 0), ("bond", act::NDO_XMIT)] {
            let f = LinkFacts { driver: Some(driver.into()), xdp_features: Ok(features), peer: None };
            let Verdict::Generic(why) = decide(&f) else { panic!("{driver}") };
            assert_eq!(why.code(), "driver-without-xdp-tx");
            assert!(why.to_string().contains(driver), "{why}");
        }
    }

    #[test]
    fn other_drivers_with_basic_are_native() {
        let f = LinkFacts {
            driver: Some("mlx5_core".into()),
            xdp_features: Ok(act::BASIC | act::REDIRECT | act::NDO_XMIT),
            peer: None,
        };
        assert_eq!(decide(&f), Verdict::Native);
        // A driver without ethtool info but with basic features.
        let f = LinkFacts { driver: None, ..f };
        assert_eq!(decide(&f), Verdict::Native);
    }

    #[test]
    fn feature_names_follow_the_kernel_spec() {
        assert_eq!(act::names(VETH_PEER_NAPI), "basic,redirect,ndo-xmit,rx-sg,ndo-xmit-sg");
        assert_eq!(act::names(0), "none");
    }

    #[test]
    fn every_reason_has_a_distinct_code() {
        let all = [
            Why::FeaturesUnknown(String::new()),
            Why::NoBasic { driver: String::new(), features: 0 },
            Why::VethPeerWithoutNapi { peer: None },
            Why::VethPeerGroOnly { peer: None },
            Why::VethPeerUnknown(String::new()),
            Why::NativeRefused(String::new()),
            Why::TxErrors { counters: String::new() },
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(Why::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(Why::VethPeerGroOnly { peer: None }.to_string().starts_with("the veth peer"));
    }
}

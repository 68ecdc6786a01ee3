//! Loading and attaching the embedded XDP program.

/// The eBPF object built by `build.rs`, embedded so `xdhcpd` is one binary.
/// Empty when the build ran with `AYA_BUILD_SKIP=1`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dhcp-ebpf"));

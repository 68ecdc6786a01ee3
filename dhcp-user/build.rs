//! Builds `dhcp-ebpf` for bpfel-unknown-none with the nightly toolchain and
//! leaves the object in OUT_DIR, where `xdp.rs` embeds it, so `xdhcpd` is one
//! self-contained binary.
//!
//! `AYA_BUILD_SKIP=1` skips the nightly build (fast `cargo check`/clippy);
//! the binary then carries an empty object and runs userspace-only, saying so.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let out_dir = std::env::var("OUT_DIR").context("OUT_DIR not set")?;
    let object = std::path::Path::new(&out_dir).join("dhcp-ebpf");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let ebpf_dir = std::path::Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow!("dhcp-user has no parent directory"))?
        .join("dhcp-ebpf");
    let root_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    let skip = matches!(std::env::var("AYA_BUILD_SKIP").as_deref(), Ok("1") | Ok("true"));
    if skip {
        // aya-build prints its own warning; an empty object means "no XDP".
        std::fs::write(&object, []).with_context(|| format!("writing {}", object.display()))?;
    }
    aya_build::build_ebpf(
        [aya_build::Package { name: "dhcp-ebpf", root_dir, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF program (run `cargo xtask setup` for nightly, rust-src and bpf-linker)")
}

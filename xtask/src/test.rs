//! `cargo xtask test`: the one command that runs the whole suite — unit
//! tests, integration tests and the namespace lab tests with real Kea,
//! dhclient and XDP. It runs `setup` first so a fresh machine needs nothing
//! else, then a bounded ISC Forge slice (`forge --ci`) when the harness is
//! present, and every fuzz target for a short bounded time (`fuzz`, 20 s
//! each; the kernel's differential fuzzer already ran as a test). It builds the Debian package first
//! (`cargo xtask package`), so CI builds it and the package tests find it built. The eBPF crate is excluded from the host build: it only builds
//! for bpfel, and is tested through `xdhcpd`, which embeds and attaches it.

use std::process::Command;

use crate::{run_cmd, setup, workspace_root};

/// Sets up, builds, then runs every test of the workspace.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    setup::run()?;
    crate::package::run()?;
    let root = workspace_root();
    let nextest = Command::new(env!("CARGO")).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success());
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root);
    if nextest {
        // nextest prints one summary line for the whole run.
        cmd.args(["nextest", "run", "--workspace", "--exclude", "dhcp-ebpf", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--workspace", "--exclude", "dhcp-ebpf", "--no-fail-fast"]);
    }
    cmd.args(extra);
    run_cmd(&mut cmd)?;
    // Each cargo-fuzz target briefly, from its committed seeds: a crash
    // fails the suite and names its reproducer (`cargo xtask fuzz` runs longer).
    let targets = crate::fuzz::TARGETS.iter().map(|t| t.to_string()).collect();
    crate::fuzz::run(&crate::fuzz::Args { seconds: 20, targets })?;
    // A bounded slice of ISC Forge (the full runs are `cargo xtask forge`,
    // committed in CONFORMANCE.md). Without the harness it cannot run: say
    // so loudly rather than pretend.
    match crate::forge::find_harness(None) {
        Ok(_) => crate::forge::run(&crate::forge::Args::ci()),
        Err(e) => {
            eprintln!("\n!!! cargo xtask test: the Forge CI slice did not run: {e:#}\n");
            Ok(())
        }
    }
}

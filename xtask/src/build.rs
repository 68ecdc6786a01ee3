//! `cargo xtask build` / `run`: `dhcp-user`'s build script compiles the
//! eBPF crate with the nightly and embeds it, so building the daemon is one
//! cargo command.

use anyhow::Context as _;
use std::{path::PathBuf, process::Command};

use crate::{run_cmd, target_dir, workspace_root};

/// Builds the release `xdhcpd` and returns its path.
pub fn release() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    run_cmd(Command::new(env!("CARGO")).current_dir(&root).args(["build", "--release", "-p", "dhcp-user"]))
        .context("building xdhcpd (with its embedded eBPF program)")?;
    let bin = target_dir().join("release/xdhcpd");
    println!("built {}", bin.display());
    Ok(bin)
}

/// Builds, then runs xdhcpd in the foreground with `args`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let bin = release()?;
    run_cmd(Command::new(bin).args(args))
}

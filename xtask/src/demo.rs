//! `cargo xtask demo`: the first thing a newcomer runs.
use crate::{build, setup};

/// Sets up, builds and runs the demo.
pub fn run() -> anyhow::Result<()> {
    setup::run()?;
    build::release()?;
    Ok(())
}

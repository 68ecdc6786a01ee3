//! `lab-hold`: brings the venus lab up and holds it until a signal or a
//! time limit, printing what it made. For poking at a lab by hand
//! (`ip netns exec <ns> …`), and for the teardown tests, which kill this
//! process in various ways and check what is left.
//!
//! Usage: `lab-hold [--clients N] [--seconds S]` (defaults 3 and 600).
//! Prints, one per line: `ns <name>`, `link <name>`, `pid <sleeper pid>`,
//! then `ready <lab id>`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use lab::{Lab, venus};

fn main() -> anyhow::Result<()> {
    let mut clients = venus::MIN_CLIENTS;
    let mut seconds = 600u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--clients" => clients = value()?.parse().context("--clients")?,
            "--seconds" => seconds = value()?.parse().context("--seconds")?,
            other => bail!("unknown argument {other:?}; usage: lab-hold [--clients N] [--seconds S]"),
        }
    }
    let lab = Lab::up(venus::topology(clients)?)?;
    // A process inside the lab, so a test can check it dies with the lab.
    let sleeper = lab.spawn(venus::PRIMARY, "sleeper", &["sleep", &seconds.to_string()])?;
    let mut out = std::io::stdout().lock();
    for ns in lab.namespaces() {
        writeln!(out, "ns {ns}")?;
    }
    for link in lab.switch_links() {
        writeln!(out, "link {link}")?;
    }
    writeln!(out, "pid {}", sleeper.pid())?;
    writeln!(out, "ready {}", lab.id())?;
    out.flush()?;
    drop(out);
    std::thread::sleep(Duration::from_secs(seconds));
    Ok(())
}

//! Checks shared by the lab's own tests: what a lab may leave behind.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// Everything lab `id` left on the machine, as a person would look:
/// namespaces in `ip netns list`, bridges and switch ports (`xbr-*`,
/// `xp-*`, or any of `links`) in the root namespace, its temp dir.
pub fn leftovers(id: &str, links: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let ns = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let prefix = format!("{id}-");
    for line in String::from_utf8_lossy(&ns.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(&prefix) {
            left.push(format!("netns {name}"));
        }
    }
    left.extend(root_links(links).into_iter().map(|l| format!("root link {l}")));
    let dir = std::env::temp_dir().join(id);
    if dir.exists() {
        left.push(format!("dir {}", dir.display()));
    }
    left
}

/// Lab-made interface names that show up in the root namespace (there
/// must never be any: the lab builds everything inside its namespaces).
pub fn root_links(links: &[String]) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_owned())
        .filter(|n| n.starts_with("xbr-") || n.starts_with("xp-") || links.contains(n))
        .collect()
}

/// State letter of a process (`R`, `S`, `T`, `Z`…), `None` once it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Whether a process is gone or a zombie: killed either way.
pub fn dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z' | 'X'))
}

/// Waits (bounded) until `pid` is dead.
pub fn wait_dead(pid: u32, timeout: Duration) -> bool {
    lab::wait_until("process to die", timeout, || Ok(dead(pid).then_some(()))).is_ok()
}

//! Reading a server's BPF maps with bpftool: found through the process's
//! own descriptors (`/proc/PID/fdinfo` names each map's id), so tests
//! running side by side, each with its own xdhcpd, never read each
//! other's maps.

use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The id of the map called `name` that process `pid` holds open.
pub fn map_of(pid: u32, name: &str) -> anyhow::Result<u64> {
    let mut ids = Vec::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for fd in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))?.flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        if let Some(id) = info.lines().find_map(|l| l.strip_prefix("map_id:")) {
            ids.push(id.trim().parse::<u64>().with_context(|| format!("map_id {id:?}"))?);
        }
    }
    for id in &ids {
        let out = Command::new("bpftool").args(["-j", "map", "show", "id", &id.to_string()]).output().context("bpftool")?;
        let m: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if m["name"] == name {
            return Ok(*id);
        }
    }
    bail!("pid {pid} holds no {name} map (map ids {ids:?})")
}

/// Every entry of map `id` as bpftool formats it from BTF: `(key, value)`.
pub fn dump(id: u64) -> anyhow::Result<Vec<(Value, Value)>> {
    let out = Command::new("bpftool").args(["-j", "map", "dump", "id", &id.to_string()]).output().context("bpftool")?;
    let entries: Value = serde_json::from_slice(&out.stdout).context("bpftool map dump output")?;
    let entries = entries.as_array().context("bpftool map dump: not a list")?;
    Ok(entries.iter().map(|e| (e["formatted"]["key"].clone(), e["formatted"]["value"].clone())).collect())
}

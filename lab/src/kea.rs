//! Real Kea (`kea-dhcp4`, Debian's 2.2) as a reference server in a lab
//! host: config rendering per test, start, and waiting for HA states.
//!
//! Configs are kept as checked-in Kea JSON and patched per test as a
//! `serde_json::Value` (JSON pointers), rather than templated text: the
//! repo file stays a config Kea itself accepts (`kea-dhcp4 -t`), and a
//! patch that names a missing key fails loudly instead of being ignored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cmd;
use crate::lab::Lab;
use crate::process::Process;

/// Debian's path of Kea's high-availability hook.
pub const HA_HOOK: &str = "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so";

/// A Kea `Dhcp4` configuration, loaded from a file and patched per test.
#[derive(Debug, Clone, PartialEq)]
pub struct KeaConfig {
    value: Value,
}

impl KeaConfig {
    /// Loads a Kea JSON config (plain JSON: Kea's comment extensions are
    /// not accepted here, keep repo configs comment-free).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(KeaConfig { value })
    }

    /// Wraps an already-built JSON value.
    pub fn from_value(value: Value) -> Self {
        KeaConfig { value }
    }

    /// The JSON as it stands.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Replaces the value at JSON pointer `pointer` (RFC 6901, e.g.
    /// `/Dhcp4/valid-lifetime`). The parent must exist; the key itself may
    /// be new, so typos in the path fail rather than add junk.
    pub fn set(&mut self, pointer: &str, value: Value) -> anyhow::Result<&mut Self> {
        let (parent, key) = pointer.rsplit_once('/').with_context(|| format!("bad JSON pointer {pointer:?}"))?;
        let key = key.replace("~1", "/").replace("~0", "~");
        let target = self.value.pointer_mut(parent).with_context(|| format!("config has no {parent:?}"))?;
        match target {
            Value::Object(map) => {
                map.insert(key, value);
            }
            Value::Array(items) => {
                let i: usize = key.parse().with_context(|| format!("{pointer:?}: array index expected"))?;
                let slot = items.get_mut(i).with_context(|| format!("{pointer:?}: index out of range"))?;
                *slot = value;
            }
            _ => bail!("{parent:?} is neither an object nor an array"),
        }
        Ok(self)
    }

    /// Renew at 2 s, rebind at 4 s, expire at 8 s: dhclient then renews
    /// (unicast, at T1) and rebinds within a test's time.
    pub fn short_timers(&mut self) -> anyhow::Result<&mut Self> {
        self.set("/Dhcp4/renew-timer", 2.into())?.set("/Dhcp4/rebind-timer", 4.into())?.set("/Dhcp4/valid-lifetime", 8.into())
    }

    /// Points the memfile lease database at `path` (each test its own).
    pub fn lease_file(&mut self, path: &Path) -> anyhow::Result<&mut Self> {
        let path = path.to_str().context("lease file path is not UTF-8")?;
        self.set("/Dhcp4/lease-database/name", Value::from(path))
    }

    /// The lease file the config names.
    pub fn lease_file_path(&self) -> Option<PathBuf> {
        self.value.pointer("/Dhcp4/lease-database/name")?.as_str().map(PathBuf::from)
    }

    fn ha_mut(&mut self) -> anyhow::Result<&mut Value> {
        let hooks = self
            .value
            .pointer_mut("/Dhcp4/hooks-libraries")
            .and_then(Value::as_array_mut)
            .context("config has no hooks-libraries")?;
        hooks
            .iter_mut()
            .find(|h| h.get("library").and_then(Value::as_str).is_some_and(|l| l.ends_with("libdhcp_ha.so")))
            .and_then(|h| h.pointer_mut("/parameters/high-availability/0"))
            .context("config has no HA hook with a high-availability entry")
    }

    fn ha(&self) -> anyhow::Result<&Value> {
        let hooks = self.value.pointer("/Dhcp4/hooks-libraries").and_then(Value::as_array);
        hooks
            .into_iter()
            .flatten()
            .find(|h| h.get("library").and_then(Value::as_str).is_some_and(|l| l.ends_with("libdhcp_ha.so")))
            .and_then(|h| h.pointer("/parameters/high-availability/0"))
            .context("config has no HA hook with a high-availability entry")
    }

    /// Sets the URL of HA peer `peer` (this server's own URL is where its
    /// dedicated listener binds).
    pub fn peer_url(&mut self, peer: &str, url: &str) -> anyhow::Result<&mut Self> {
        let peers = self.ha_mut()?.get_mut("peers").and_then(Value::as_array_mut).context("HA entry has no peers")?;
        let entry = peers
            .iter_mut()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(peer))
            .with_context(|| format!("HA has no peer {peer:?}"))?;
        entry["url"] = Value::from(url);
        Ok(self)
    }

    /// Drops the HA hook: a lone server that serves at once instead of
    /// waiting for a partner.
    pub fn without_ha(&mut self) -> anyhow::Result<&mut Self> {
        let hooks = self
            .value
            .pointer_mut("/Dhcp4/hooks-libraries")
            .and_then(Value::as_array_mut)
            .context("config has no hooks-libraries")?;
        let before = hooks.len();
        hooks.retain(|h| !h.get("library").and_then(Value::as_str).is_some_and(|l| l.ends_with("libdhcp_ha.so")));
        if hooks.len() == before {
            bail!("config has no HA hook to remove");
        }
        Ok(self)
    }

    /// Every HA peer as (name, url).
    pub fn peer_urls(&self) -> anyhow::Result<Vec<(String, String)>> {
        let peers = self.ha()?.get("peers").and_then(Value::as_array).context("HA entry has no peers")?;
        peers
            .iter()
            .map(|p| {
                let field = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
                Ok((field("name").context("peer without name")?, field("url").context("peer without url")?))
            })
            .collect()
    }

    /// The HA `this-server-name`.
    pub fn this_server(&self) -> anyhow::Result<String> {
        self.ha()?.get("this-server-name").and_then(Value::as_str).map(str::to_owned).context("no this-server-name")
    }

    /// Writes the config as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.value).context("serializing config")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// Asks Kea itself whether a config file is valid (`kea-dhcp4 -t`, which
/// parses and loads hooks but opens no sockets).
pub fn check_config_file(path: &Path) -> anyhow::Result<()> {
    let mut c = Command::new("kea-dhcp4");
    c.arg("-t").arg(path);
    let out = cmd::run(&mut c, Duration::from_secs(30))?;
    if !out.success() {
        bail!("kea-dhcp4 rejected {}:\n{}{}", path.display(), out.stdout, out.stderr);
    }
    Ok(())
}

/// A `kea-dhcp4` running in a lab host.
#[derive(Debug)]
pub struct Kea {
    process: Process,
    config_path: PathBuf,
    lease_file: PathBuf,
}

impl Kea {
    /// Renders `config` into the host's dir with the lease file at
    /// `<host dir>/kea-leases4.csv` (so a restart in the same lab finds its
    /// leases again; a `lease-database` of another type is left as set), starts `kea-dhcp4 -c` with pid and lock files in the
    /// host dir too, and waits until Kea reports it has started.
    pub fn start(lab: &Lab, host: &str, config: &KeaConfig) -> anyhow::Result<Kea> {
        let mut kea = Kea::spawn(lab, host, config)?;
        kea.process.wait_for_log("DHCP4_STARTED", Duration::from_secs(15))?;
        Ok(kea)
    }

    /// [`Kea::start`] without the wait: returns as soon as the process is
    /// in its namespace (for callers that time the start-up themselves).
    pub fn spawn(lab: &Lab, host: &str, config: &KeaConfig) -> anyhow::Result<Kea> {
        let dir = lab.host_dir(host)?;
        let lease_file = dir.join("kea-leases4.csv");
        let config_path = dir.join("kea-dhcp4.json");
        let mut rendered = config.clone();
        // A database backend (a test's PostgreSQL) is the test's to set.
        let memfile = rendered.value.pointer("/Dhcp4/lease-database/type").and_then(Value::as_str);
        if memfile.is_none_or(|t| t == "memfile") {
            rendered.lease_file(&lease_file)?;
        }
        rendered.write(&config_path)?;
        let process = lab
            .cmd(host, "kea-dhcp4")
            .arg("-c")
            .arg(&config_path)
            .env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir)
            .spawn("kea-dhcp4")?;
        Ok(Kea { process, config_path, lease_file })
    }

    /// Waits until the HA hook logs a transition into `state` (upper case,
    /// as Kea logs it: `HOT-STANDBY`, `PARTNER-DOWN`, …).
    pub fn wait_ha_state(&mut self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        self.process.wait_for_log(&format!(" to {state} state"), timeout)
    }

    /// The server process: stop, kill, pause, resume, log.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// The rendered config it runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Its memfile lease file (CSV).
    pub fn lease_file(&self) -> &Path {
        &self.lease_file
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> KeaConfig {
        KeaConfig::from_value(json!({ "Dhcp4": {
            "lease-database": { "type": "memfile", "name": "/var/lib/kea/x.csv" },
            "hooks-libraries": [
                { "library": "/x/libdhcp_lease_cmds.so" },
                { "library": HA_HOOK, "parameters": { "high-availability": [ {
                    "this-server-name": "a",
                    "peers": [ { "name": "a", "url": "http://10.0.0.1:8000/" },
                               { "name": "b", "url": "http://10.0.0.2:8000/" } ] } ] } } ],
            "subnet4": [ { "id": 1 } ]
        }}))
    }

    #[test]
    fn set_patches_existing_paths_only() {
        let mut c = sample();
        c.set("/Dhcp4/valid-lifetime", json!(120)).unwrap();
        c.set("/Dhcp4/subnet4/0", json!({ "id": 2 })).unwrap();
        assert_eq!(c.value()["Dhcp4"]["valid-lifetime"], 120);
        assert_eq!(c.value()["Dhcp4"]["subnet4"][0]["id"], 2);
        assert!(c.set("/Dhcp4/nope/x", json!(1)).is_err());
        assert!(c.set("/Dhcp4/subnet4/5", json!(1)).is_err());
        assert!(c.set("no-slash", json!(1)).is_err());
    }

    #[test]
    fn lease_file_and_peer_urls() {
        let mut c = sample();
        c.lease_file(Path::new("/tmp/xlab-1-0/a/kea-leases4.csv")).unwrap();
        c.peer_url("b", "http://10.0.0.2:8001/").unwrap();
        assert_eq!(c.lease_file_path().unwrap(), Path::new("/tmp/xlab-1-0/a/kea-leases4.csv"));
        assert_eq!(
            c.peer_urls().unwrap(),
            [("a".into(), "http://10.0.0.1:8000/".into()), ("b".into(), "http://10.0.0.2:8001/".into())]
        );
        assert_eq!(c.this_server().unwrap(), "a");
        assert!(c.peer_url("zz", "http://x/").is_err());
        c.without_ha().unwrap();
        assert!(c.peer_urls().is_err());
        assert_eq!(c.value()["Dhcp4"]["hooks-libraries"].as_array().unwrap().len(), 1);
        assert!(c.without_ha().is_err());
    }
}

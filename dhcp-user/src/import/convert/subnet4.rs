//! The drafts → Kea's `subnet4`: subnet ids by network address, each host
//! placed as a reservation in the subnet of its address, pools with their
//! options, and the subnet's settings.

use serde_json::{Map, Value, json};

use crate::config::Cidr;

use super::{Converter, Outcome};

impl Converter {
    /// `subnet4`, and each subnet's id and prefix (for placing leases);
    /// subnets name `ha_server_name` when there is an HA relationship.
    pub(super) fn subnet4(
        &mut self,
        ha_server_name: Option<&str>,
    ) -> (Vec<Value>, Vec<(u32, Cidr)>) {
        // Subnets, numbered by network address.
        let mut order: Vec<usize> = (0..self.subnets.len()).collect();
        order.sort_by_key(|&i| u32::from(self.subnets[i].prefix.network()));
        let mut ids = vec![0u32; self.subnets.len()];
        for (n, &i) in order.iter().enumerate() {
            ids[i] = n as u32 + 1;
        }
        if !self.subnets.is_empty() {
            self.report.add(
                Outcome::Approximated,
                None,
                "subnet ids",
                "numbered 1, 2, … by network address so both peers agree",
            );
        }
        let mut reservations = self.reservations(&ids);

        let mut subnet4 = Vec::new();
        let mut placed = Vec::new();
        for &i in &order {
            let s = &self.subnets[i];
            let mut obj = Map::new();
            obj.insert("id".into(), json!(ids[i]));
            obj.insert("subnet".into(), json!(s.prefix.to_string()));
            let mut pools = Vec::new();
            for p in &s.pools {
                for (a, b) in &p.ranges {
                    let mut po = Map::new();
                    po.insert("pool".into(), json!(format!("{a}-{b}")));
                    if !p.settings.options.is_empty() {
                        let list: Vec<Value> = p
                            .settings
                            .options
                            .iter()
                            .map(|(n, d)| json!({"name": n, "data": d}))
                            .collect();
                        po.insert("option-data".into(), Value::Array(list));
                    }
                    pools.push(Value::Object(po));
                }
            }
            if !pools.is_empty() {
                obj.insert("pools".into(), Value::Array(pools));
            }
            s.settings.write(&mut obj);
            if !reservations[i].is_empty() {
                obj.insert(
                    "reservations".into(),
                    Value::Array(std::mem::take(&mut reservations[i])),
                );
            }
            if let Some(name) = ha_server_name {
                obj.insert("user-context".into(), json!({"ha-server-name": name}));
                if !s.pools.iter().any(|p| p.failover) {
                    self.report.add(
                        Outcome::Approximated,
                        Some(&s.at),
                        format!("subnet {}", s.prefix),
                        "no pool names the failover peer, but with one HA relationship Kea serves every subnet through it",
                    );
                }
            }
            subnet4.push(Value::Object(obj));
            placed.push((ids[i], s.prefix));
        }
        (subnet4, placed)
    }

    /// Each subnet's reservations (indexed as `self.subnets`); `ids` are
    /// the subnet ids, for the report.
    fn reservations(&mut self, ids: &[u32]) -> Vec<Vec<Value>> {
        let mut reservations: Vec<Vec<Value>> = vec![Vec::new(); self.subnets.len()];
        let hosts = std::mem::take(&mut self.hosts);
        for h in &hosts {
            let target = match h.address {
                Some(a) => self.subnets.iter().position(|s| s.prefix.contains(a)),
                None => h.subnet,
            };
            let construct = format!("host {}", h.name);
            let Some(si) = target else {
                self.report.add(Outcome::Refused, Some(&h.at), construct, "no imported subnet contains its fixed-address (or it has none outside a subnet); not imported");
                continue;
            };
            let mut r = Map::new();
            match (&h.hw, &h.client_id) {
                (Some(hw), _) => {
                    r.insert("hw-address".into(), json!(hw));
                }
                (None, Some(id)) => {
                    r.insert("client-id".into(), json!(id));
                }
                (None, None) => {
                    self.report.add(
                        Outcome::Refused,
                        Some(&h.at),
                        construct,
                        "no hardware ethernet or client identifier; not imported",
                    );
                    continue;
                }
            }
            let key = r.iter().next().map(|(k, v)| (k.clone(), v.clone()));
            let dup = reservations[si]
                .iter()
                .any(|o| key.as_ref().is_some_and(|(k, v)| o.get(k) == Some(v)))
                || h.address.is_some_and(|a| {
                    reservations[si]
                        .iter()
                        .any(|o| o.get("ip-address") == Some(&json!(a.to_string())))
                });
            if dup {
                self.report.add(
                    Outcome::Refused,
                    Some(&h.at),
                    construct,
                    "same identifier or address as an earlier host in this subnet; Kea allows one",
                );
                continue;
            }
            if let Some(a) = h.address {
                r.insert("ip-address".into(), json!(a.to_string()));
            }
            let mut settings = h.settings.clone();
            let hostname = settings.options.remove("host-name").or_else(|| {
                settings
                    .use_host_decl_names
                    .unwrap_or(false)
                    .then(|| h.name.clone())
            });
            if let Some(hn) = hostname {
                r.insert("hostname".into(), json!(hn));
            }
            if !settings.options.is_empty() {
                let list: Vec<Value> = settings
                    .options
                    .iter()
                    .map(|(n, d)| json!({"name": n, "data": d}))
                    .collect();
                r.insert("option-data".into(), Value::Array(list));
            }
            for (k, v) in [
                ("next-server", &settings.next_server),
                ("boot-file-name", &settings.filename),
                ("server-hostname", &settings.server_name),
            ] {
                if let Some(v) = v {
                    r.insert(k.into(), json!(v));
                }
            }
            self.report.add(
                Outcome::Mapped,
                Some(&h.at),
                construct,
                format!(
                    "reservation in subnet {} ({})",
                    ids[si], self.subnets[si].prefix
                ),
            );
            reservations[si].push(Value::Object(r));
        }
        reservations
    }
}

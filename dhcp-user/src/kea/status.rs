//! `status-get`'s `high-availability` list in Kea's shape (per
//! relationship `ha-mode` and `ha-servers.local/remote`), plus our
//! `unsent-update-count`, `replication-backlog` and `last-heartbeat-age`,
//! rendered from the typed [`RelStatus`]. Kea's role and mode names live
//! here, once.

use serde_json::{Value, json};

use crate::{
    config::ha::{HaMode, Role},
    ha::RelStatus,
};

/// Kea's role names.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Primary => "primary",
        Role::Secondary => "secondary",
        Role::Standby => "standby",
        Role::Backup => "backup",
    }
}

/// Kea's mode names.
pub fn mode_name(m: HaMode) -> &'static str {
    match m {
        HaMode::LoadBalancing => "load-balancing",
        HaMode::HotStandby => "hot-standby",
        HaMode::PassiveBackup => "passive-backup",
    }
}

/// One relationship's `status-get` entry.
pub fn rel_json(s: &RelStatus) -> Value {
    let mut entry = json!({
        "ha-mode": mode_name(s.mode),
        "ha-servers": { "local": {
            "role": role_name(s.local.role),
            "state": s.local.state.name(),
            "scopes": s.local.scopes,
            "server-name": s.local.server_name,
        } },
        "unsent-update-count": s.unsent_update_count,
        "replication-backlog": s.replication_backlog,
        "last-heartbeat-age": s.last_heartbeat_age,
        "paused": s.paused,
        "clock-skew": s.clock_skew,
    });
    if let Some(p) = &s.remote {
        let r = &p.status;
        entry["ha-servers"]["remote"] = json!({
            "age": r.age,
            "in-touch": r.in_touch,
            "last-state": r.last_state.map_or("", |s| s.name()),
            "last-scopes": r.last_scopes,
            "communication-interrupted": r.communication_interrupted,
            "connecting-clients": r.connecting_clients,
            "unacked-clients": r.unacked_clients,
            "unacked-clients-left": r.unacked_clients_left,
            "analyzed-packets": r.analyzed_packets,
            "role": role_name(p.role),
            "server-name": p.server_name,
            "url": p.url,
        });
    }
    entry
}

/// The whole `high-availability` list.
pub fn ha_json(list: &[RelStatus]) -> Value {
    Value::Array(list.iter().map(rel_json).collect())
}

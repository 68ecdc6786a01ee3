//! Kea's HA messages as bytes and JSON, both ways, without I/O: every
//! command this server sends a peer ([`Outbound`], built here and nowhere
//! else, as Kea's `CommandCreator`), the one-element answer array,
//! heartbeat answers with their RFC 1123 `date-time`, and the lease JSON
//! of `lease4-update`/`-del` (with `expire`) and of `lease4-get-page`
//! answers (with `cltt`).
//!
//! Shapes follow `shared/notes/kea-ha-protocol.md` §1–§3 and the Kea 2.2
//! capture; a real Kea peer is the test (see the lab's Kea interop drills).

use std::{collections::BTreeSet, time::SystemTime};

use serde_json::{Map, Value, json};

use super::{
    lease::lease_json,
    time::{http_date, parse_http_date},
};
use crate::{
    ha::{HeartbeatReply, PartnerState, PartnerStatus},
    leases::Lease,
};

/// Why a peer's answer could not be used (Kea counts each of these as a
/// failed exchange).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body is not JSON.
    #[error("answer is not JSON: {0}")]
    NotJson(String),
    /// Kea reads only a JSON array's first element; an object is a failure.
    #[error("answer is not a non-empty JSON array")]
    NotArray,
    /// `result` missing or not an integer.
    #[error("answer has no integer 'result'")]
    NoResult,
    /// A heartbeat answer without a valid `state`.
    #[error("heartbeat answer has no valid 'state'")]
    BadState,
    /// A heartbeat answer without a valid RFC 1123 `date-time`.
    #[error("heartbeat answer has no valid 'date-time'")]
    BadDateTime,
    /// `unsent-update-count` present but not an unsigned integer.
    #[error("heartbeat 'unsent-update-count' is not an integer")]
    BadUnsentCount,
}

/// One decoded answer (`result`, `text`, `arguments`).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReply {
    /// Kea result code (0 success, 3 empty: both fine for HA).
    pub result: i64,
    /// `text`, empty when absent.
    pub text: String,
    /// `arguments`, when present.
    pub arguments: Option<Value>,
}

impl PeerReply {
    /// Kea's HA reading: 0 and 3 are success.
    pub fn is_success(&self) -> bool {
        matches!(self.result, 0 | 3)
    }
}

/// The body of a command to a peer: exactly `command`, `service` and,
/// when there are any, `arguments` (Kea's parser refuses other keys).
pub fn command_body(command: &str, arguments: Option<Value>) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("command".into(), json!(command));
    m.insert("service".into(), json!(["dhcp4"]));
    if let Some(a) = arguments {
        m.insert("arguments".into(), a);
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// A command this server sends an HA peer. Every outbound body is built
/// from one of these, so the shapes Kea's parser accepts live in one place.
#[derive(Debug, Clone, Copy)]
pub enum Outbound<'a> {
    /// `ha-heartbeat` from `server` (this server's name).
    Heartbeat {
        /// This server's name in the relationship.
        server: &'a str,
    },
    /// `ha-reset`: the partner goes back to waiting.
    Reset {
        /// This server's name in the relationship.
        server: &'a str,
    },
    /// `ha-sync-complete-notify` after a lease sync from the partner.
    SyncCompleteNotify {
        /// This server's name in the relationship.
        server: &'a str,
    },
    /// `ha-maintenance-notify` for an operator's maintenance start/cancel.
    MaintenanceNotify {
        /// This server's name in the relationship.
        server: &'a str,
        /// Cancel instead of start.
        cancel: bool,
    },
    /// `ha-maintenance-start` sent by a server about to stop (SIGTERM,
    /// `shutdown`): the partner notifies us back, we go in-maintenance and
    /// it serves every scope at once instead of after failure detection.
    /// Kea 2.2 ignores the arguments; an xdhcpd hub uses `server-name` to
    /// act on our relationship only.
    MaintenanceStart {
        /// This server's name in the relationship.
        server: &'a str,
    },
    /// `ha-maintenance-cancel` sent by a server that came back while its
    /// partner still holds it in maintenance (it restarted before the
    /// partner saw it gone): the partner notifies the cancel back and both
    /// return to their previous states.
    MaintenanceCancel {
        /// This server's name in the relationship.
        server: &'a str,
    },
    /// `dhcp-disable` with origin `ha-partner`, for `max_period` seconds.
    DhcpDisable {
        /// Seconds after which the partner re-enables itself.
        max_period: u32,
    },
    /// `dhcp-enable` with origin `ha-partner`.
    DhcpEnable,
    /// `lease4-get-page` from `from` (`"start"` or the last address seen).
    LeaseGetPage {
        /// `"start"` or the last address of the previous page.
        from: &'a str,
        /// Page size.
        limit: u32,
    },
    /// `lease4-update` of a committed lease (`force-create`).
    LeaseUpdate(&'a Lease),
    /// `lease4-del` of a released or replaced lease.
    LeaseDel(&'a Lease),
}

/// A partner update's command: `lease4-update` or `lease4-del`.
impl<'a> From<&'a crate::ha::Update> for Outbound<'a> {
    fn from(u: &'a crate::ha::Update) -> Self {
        match u {
            crate::ha::Update::Put(l) => Outbound::LeaseUpdate(l),
            crate::ha::Update::Del(l) => Outbound::LeaseDel(l),
        }
    }
}

impl Outbound<'_> {
    /// The command name.
    pub fn name(&self) -> &'static str {
        match self {
            Outbound::Heartbeat { .. } => "ha-heartbeat",
            Outbound::Reset { .. } => "ha-reset",
            Outbound::SyncCompleteNotify { .. } => "ha-sync-complete-notify",
            Outbound::MaintenanceNotify { .. } => "ha-maintenance-notify",
            Outbound::MaintenanceStart { .. } => "ha-maintenance-start",
            Outbound::MaintenanceCancel { .. } => "ha-maintenance-cancel",
            Outbound::DhcpDisable { .. } => "dhcp-disable",
            Outbound::DhcpEnable => "dhcp-enable",
            Outbound::LeaseGetPage { .. } => "lease4-get-page",
            Outbound::LeaseUpdate(_) => "lease4-update",
            Outbound::LeaseDel(_) => "lease4-del",
        }
    }

    /// The `arguments` Kea expects with it.
    pub fn arguments(&self) -> Value {
        match *self {
            Outbound::Heartbeat { server }
            | Outbound::Reset { server }
            | Outbound::SyncCompleteNotify { server }
            | Outbound::MaintenanceStart { server }
            | Outbound::MaintenanceCancel { server } => json!({"server-name": server}),
            Outbound::MaintenanceNotify { server, cancel } => json!({"cancel": cancel, "server-name": server}),
            Outbound::DhcpDisable { max_period } => json!({"max-period": max_period, "origin": "ha-partner"}),
            Outbound::DhcpEnable => json!({"origin": "ha-partner"}),
            Outbound::LeaseGetPage { from, limit } => json!({"from": from, "limit": limit}),
            Outbound::LeaseUpdate(l) => lease_update_args(l),
            Outbound::LeaseDel(l) => lease_del_args(l),
        }
    }

    /// The request body.
    pub fn body(&self) -> Vec<u8> {
        command_body(self.name(), Some(self.arguments()))
    }
}

/// Decodes a peer's answer body: a JSON array whose first element holds
/// the result.
pub fn parse_reply(body: &[u8]) -> Result<PeerReply, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let first = v.as_array().and_then(|a| a.first()).ok_or(WireError::NotArray)?;
    let result = first.get("result").and_then(Value::as_i64).ok_or(WireError::NoResult)?;
    Ok(PeerReply {
        result,
        text: first.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
        arguments: first.get("arguments").cloned(),
    })
}

/// Reads a heartbeat answer the way Kea's `asyncSendHeartbeat` does: a
/// non-zero result, a missing or unknown `state`, or a `date-time` that is
/// not strict RFC 1123 make the heartbeat a failure; malformed `scopes`
/// are ignored.
pub fn parse_heartbeat(reply: &PeerReply) -> Result<PartnerStatus, WireError> {
    if reply.result != 0 {
        return Err(WireError::NoResult);
    }
    let args = reply.arguments.as_ref().and_then(Value::as_object).ok_or(WireError::BadState)?;
    let state = args
        .get("state")
        .and_then(Value::as_str)
        .and_then(PartnerState::from_name)
        .ok_or(WireError::BadState)?;
    let date_time = args
        .get("date-time")
        .and_then(Value::as_str)
        .and_then(parse_http_date)
        .ok_or(WireError::BadDateTime)?;
    let scopes = args.get("scopes").and_then(Value::as_array).and_then(|a| {
        a.iter().map(|s| s.as_str().map(str::to_owned)).collect::<Option<BTreeSet<String>>>()
    });
    let unsent_update_count = match args.get("unsent-update-count") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(WireError::BadUnsentCount)?),
    };
    Ok(PartnerStatus { state, date_time, scopes, unsent_update_count })
}

/// The arguments of our `ha-heartbeat` answer.
pub fn heartbeat_args(r: &HeartbeatReply, now: SystemTime) -> Value {
    json!({
        "state": r.state.name(),
        "date-time": http_date(now),
        "scopes": r.scopes,
        "unsent-update-count": r.unsent_update_count,
    })
}

/// `lease4-update` arguments for a committed lease, as Kea's
/// `CommandCreator::createLease4Update`: the lease JSON with `expire`
/// instead of `cltt`, and `force-create`.
pub fn lease_update_args(lease: &Lease) -> Value {
    let mut v = lease_expire_json(lease);
    if let Some(m) = v.as_object_mut() {
        m.insert("force-create".into(), json!(true));
    }
    v
}

/// `lease4-del` arguments: the same lease JSON, without `force-create`.
pub fn lease_del_args(lease: &Lease) -> Value {
    lease_expire_json(lease)
}

fn lease_expire_json(lease: &Lease) -> Value {
    let mut v = lease_json(lease);
    if let Some(m) = v.as_object_mut() {
        m.remove("cltt");
        m.insert("expire".into(), json!(lease.expire));
    }
    v
}

/// A `lease4-get-page` lease (which carries `cltt`) rewritten with
/// `expire`, the form `lease4-update`'s parser reads; `None` when `cltt`
/// or `valid-lft` is missing (Kea's `fromElement` requires both).
pub fn page_lease_as_update(lease: &Value) -> Option<Value> {
    let mut m = lease.as_object()?.clone();
    let cltt = m.remove("cltt")?.as_u64().filter(|c| *c > 0)?;
    let valid = m.get("valid-lft")?.as_u64()?;
    m.insert("expire".into(), json!(cltt + valid));
    Some(Value::Object(m))
}

/// Kea's sync rule: take the partner's lease when we have none at that
/// address or ours is older (smaller `cltt`); leases only we have are kept.
pub fn sync_takes(local: Option<&Lease>, remote: &Lease) -> bool {
    local.is_none_or(|l| l.cltt() < remote.cltt())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{ha::State, leases::HwAddr};

    #[test]
    fn bodies_have_only_keas_keys() {
        let b: Value = serde_json::from_slice(&command_body("ha-heartbeat", None)).unwrap();
        assert_eq!(b, json!({"command": "ha-heartbeat", "service": ["dhcp4"]}));
        let b: Value = serde_json::from_slice(&command_body("dhcp-disable", Some(json!({"max-period": 60, "origin": "ha-partner"})))).unwrap();
        assert_eq!(b["arguments"]["origin"], "ha-partner");
        let b: Value = serde_json::from_slice(&Outbound::DhcpDisable { max_period: 60 }.body()).unwrap();
        assert_eq!(b, json!({"command": "dhcp-disable", "service": ["dhcp4"], "arguments": {"max-period": 60, "origin": "ha-partner"}}));
        let b: Value = serde_json::from_slice(&Outbound::MaintenanceNotify { server: "a", cancel: true }.body()).unwrap();
        assert_eq!(b["arguments"], json!({"cancel": true, "server-name": "a"}));
        let b: Value = serde_json::from_slice(&Outbound::MaintenanceStart { server: "a" }.body()).unwrap();
        assert_eq!(b, json!({"command": "ha-maintenance-start", "service": ["dhcp4"], "arguments": {"server-name": "a"}}));
        let b: Value = serde_json::from_slice(&Outbound::MaintenanceCancel { server: "a" }.body()).unwrap();
        assert_eq!(b["command"], "ha-maintenance-cancel");
    }

    #[test]
    fn replies_are_arrays() {
        let r = parse_reply(br#"[ { "result": 3, "text": "0 IPv4 lease(s) found.", "arguments": {"count": 0, "leases": []} } ]"#).unwrap();
        assert!(r.is_success());
        assert_eq!(r.arguments.unwrap()["count"], 0);
        assert_eq!(parse_reply(br#"{ "result": 0 }"#), Err(WireError::NotArray));
        assert_eq!(parse_reply(br#"[ { "text": "x" } ]"#), Err(WireError::NoResult));
        assert!(matches!(parse_reply(b"<html>"), Err(WireError::NotJson(_))));
        assert!(!parse_reply(br#"[{"result": 1}]"#).unwrap().is_success());
    }

    #[test]
    fn heartbeat_answers_from_the_capture() {
        let r = parse_reply(br#"[ { "arguments": { "date-time": "Mon, 23 Nov 2026 07:18:12 GMT", "scopes": [ "lobezno" ], "state": "hot-standby", "unsent-update-count": 0 }, "result": 0, "text": "HA peer status returned." } ]"#).unwrap();
        let s = parse_heartbeat(&r).unwrap();
        assert_eq!(s.state, PartnerState::In(State::HotStandby));
        assert_eq!(s.scopes.unwrap().into_iter().collect::<Vec<_>>(), vec!["lobezno".to_owned()]);
        assert_eq!(s.unsent_update_count, Some(0));
        let bad_state = parse_reply(br#"[{"result":0,"arguments":{"state":"sleeping","date-time":"Mon, 23 Nov 2026 07:18:12 GMT"}}]"#).unwrap();
        assert_eq!(parse_heartbeat(&bad_state), Err(WireError::BadState));
        let bad_date = parse_reply(br#"[{"result":0,"arguments":{"state":"ready","date-time":"yesterday"}}]"#).unwrap();
        assert_eq!(parse_heartbeat(&bad_date), Err(WireError::BadDateTime));
        // Malformed scopes are ignored, as Kea does.
        let odd = parse_reply(br#"[{"result":0,"arguments":{"state":"ready","date-time":"Mon, 23 Nov 2026 07:18:12 GMT","scopes":[1]}}]"#).unwrap();
        assert_eq!(parse_heartbeat(&odd).unwrap().scopes, None);
        // Our own answer parses back.
        let ours = heartbeat_args(&HeartbeatReply { state: State::Ready, scopes: vec![], unsent_update_count: 7 }, SystemTime::now());
        let back = parse_heartbeat(&PeerReply { result: 0, text: String::new(), arguments: Some(ours) }).unwrap();
        assert_eq!((back.state, back.unsent_update_count), (PartnerState::In(State::Ready), Some(7)));
    }

    fn lease(cltt: u64) -> Lease {
        let mut l = Lease::new(
            Ipv4Addr::new(192, 168, 50, 33),
            Some(HwAddr::new(1, vec![2, 0, 0, 0, 0, 3]).unwrap()),
            None,
            1,
            cltt,
            60,
        );
        l.hostname = "mutante3".into();
        l
    }

    #[test]
    fn lease_update_matches_the_capture() {
        // The capture's lease4-update for mutante3 (expire 1795418357).
        let v = lease_update_args(&lease(1_795_418_357 - 60));
        assert_eq!(
            v,
            json!({"expire": 1795418357u64, "force-create": true, "fqdn-fwd": false, "fqdn-rev": false,
                   "hostname": "mutante3", "hw-address": "02:00:00:00:00:03", "ip-address": "192.168.50.33",
                   "state": 0, "subnet-id": 1, "valid-lft": 60})
        );
        assert!(lease_del_args(&lease(5)).get("force-create").is_none());
        let page = lease_json(&lease(1000));
        let upd = page_lease_as_update(&page).unwrap();
        assert_eq!(upd["expire"], 1060);
        assert!(upd.get("cltt").is_none());
    }

    #[test]
    fn sync_keeps_the_newer_lease() {
        assert!(sync_takes(None, &lease(10)));
        assert!(sync_takes(Some(&lease(9)), &lease(10)));
        assert!(!sync_takes(Some(&lease(10)), &lease(10)));
        assert!(!sync_takes(Some(&lease(11)), &lease(10)));
    }
}

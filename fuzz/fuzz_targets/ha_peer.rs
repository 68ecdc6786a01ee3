//! The HA peer endpoint: what a partner (or anyone who reaches the peer
//! URL) sends to an HA server, and what a partner answers.
//!
//! - Requests: the first byte picks one of the commands a partner sends
//!   (`ha-heartbeat`, `lease4-update`, `lease4-del`, `lease4-get-page`,
//!   `dhcp-disable`, …); the rest, when it is JSON, is its `arguments`,
//!   else the whole body as is. Sent to venus's primary with its HA runtime
//!   (partner URLs moved to 127.0.0.1, so what would contact the partner is
//!   refused at once). Every answer must be JSON with an integer `result`.
//! - Replies: the same bytes as a partner's answer, through the client's
//!   parsers (`parse_reply`, `parse_heartbeat`, a `lease4-get-page` entry).
#![no_main]

use dhcp_user::kea::ha as wire;
use libfuzzer_sys::fuzz_target;

const PARTNER_COMMANDS: &[&str] = &[
    "ha-heartbeat",
    "lease4-update",
    "lease4-del",
    "lease4-get-page",
    "lease4-get-all",
    "dhcp-disable",
    "dhcp-enable",
    "ha-sync-complete-notify",
    "ha-maintenance-notify",
    "ha-reset",
    "ha-scopes",
    "ha-continue",
    "status-get",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let body = match serde_json::from_slice::<serde_json::Value>(rest) {
        Ok(args) => {
            let command = PARTNER_COMMANDS[usize::from(sel) % PARTNER_COMMANDS.len()];
            serde_json::json!({ "command": command, "arguments": args, "service": ["dhcp4"] }).to_string().into_bytes()
        }
        Err(_) => rest.to_vec(),
    };
    let api = xdhcp_fuzz::Api::new(&xdhcp_fuzz::contained(xdhcp_fuzz::VENUS));
    api.post(body);
    api.render_all();

    if let Ok(reply) = wire::parse_reply(rest) {
        let _ = reply.is_success();
        let _ = wire::parse_heartbeat(&reply);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
        let _ = wire::page_lease_as_update(&v);
    }
});

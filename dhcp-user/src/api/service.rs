//! Server-level commands Kea's `ctrl_dhcp4_srv.cc` answers beside
//! configuration: `leases-reclaim`, `build-report`, `server-tag-get`, and
//! the commands Kea's lease_cmds hook registers that xdhcpd does not do.

use serde_json::{Value, json};

use super::{
    ApiState,
    command::{Answer, ArgError, Handled, Request, ResultCode},
};
use crate::clock::unix_now;

/// Registered by Kea's `libdhcp_lease_cmds.so` in `kea-dhcp4` too, so
/// they appear in `list-commands` (scripts look for them to tell whether
/// the hook is loaded) but are answered as unsupported: DHCPv6 leases in a
/// DHCPv4 server, and DNS updates, which xdhcpd does not make.
pub const REGISTERED_UNSUPPORTED: &[&str] = &[
    "lease4-resend-ddns",
    "lease6-add",
    "lease6-bulk-apply",
    "lease6-del",
    "lease6-get",
    "lease6-get-all",
    "lease6-get-by-duid",
    "lease6-get-by-hostname",
    "lease6-get-page",
    "lease6-resend-ddns",
    "lease6-update",
    "lease6-wipe",
];

/// Runs one of this file's commands; `None` if `req` is not one.
pub fn dispatch(state: &ApiState, req: &Request) -> Option<Handled> {
    Some(match req.command.as_str() {
        "leases-reclaim" => leases_reclaim(state, req),
        "build-report" => Ok(Answer::ok(build_report())),
        "server-tag-get" => Ok(server_tag(state)),
        c if REGISTERED_UNSUPPORTED.contains(&c) => {
            Ok(Answer::new(ResultCode::Unsupported, format!("'{c}' command not supported.")))
        }
        _ => return None,
    })
}

/// `{"remove": bool}` as Kea checks it; reclaims every expired lease now.
fn leases_reclaim(state: &ApiState, req: &Request) -> Handled {
    let remove = match req.arguments.as_ref().and_then(|a| a.get("remove")) {
        None => return Err(ArgError::Other("Missing mandatory 'remove' parameter.".into())),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ArgError::Other("'remove' parameter expected to be a boolean.".into())),
    };
    let n = state.core.reclaim_now(remove, unix_now());
    state.event(format!("leases-reclaim: {n} expired lease(s) reclaimed"));
    Ok(Answer::ok("Reclamation of expired leases is complete."))
}

/// What Kea's `build-report` gives: how this binary was built.
fn build_report() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!(
        "Version:          {v}\n\
         Product:          xdhcpd (Kea 2.2 compatible DHCPv4 server)\n\
         Build target:     {}-{}\n\
         Profile:          {}\n\
         Lease backends:   memfile (Kea CSV)\n\
         Hooks built in:   libdhcp_lease_cmds, libdhcp_ha, libdhcp_bootp",
        std::env::consts::ARCH,
        std::env::consts::OS,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    )
}

/// `server-tag-get`: the running config's `server-tag` (empty if none).
fn server_tag(state: &ApiState) -> Answer {
    let applied = state.applied.lock().unwrap_or_else(|p| p.into_inner());
    let tag = applied
        .json
        .as_ref()
        .and_then(|j| j.pointer("/Dhcp4/server-tag"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Answer::ok("").without_text().with_args(json!({ "server-tag": tag }))
}

//! Kea's command channel, without HTTP: a [`Request`] and the daemon's
//! [`ApiState`] in, an [`Answer`] out. The texts and result codes are the
//! ones a real Kea 2.2 `kea-dhcp4` (with `libdhcp_lease_cmds.so`) returns,
//! because scripts match on them.

use std::path::Path;

use serde_json::{Value, json};

pub use crate::kea::command::{Answer, ArgError, Args, Handled, Request, RequestError, ResultCode, map_args};

use super::{ApiState, leases};
use crate::{clock::unix_now, config};

/// Commands served (what `list-commands` reports); the `ha-*` ones only
/// with HA configured (otherwise they are answered with result 2).
pub const COMMANDS: &[&str] = &[
    "build-report",
    "config-get",
    "config-reload",
    "config-set",
    "config-test",
    "config-write",
    "dhcp-disable",
    "dhcp-enable",
    "ha-continue",
    "ha-heartbeat",
    "ha-maintenance-cancel",
    "ha-maintenance-notify",
    "ha-maintenance-start",
    "ha-reset",
    "ha-scopes",
    "ha-sync",
    "ha-sync-complete-notify",
    "lease4-add",
    "lease4-del",
    "lease4-get",
    "lease4-get-all",
    "lease4-get-by-client-id",
    "lease4-get-by-hostname",
    "lease4-get-by-hw-address",
    "lease4-get-page",
    "lease4-update",
    "lease4-wipe",
    "leases-reclaim",
    "list-commands",
    "server-tag-get",
    "shutdown",
    "statistic-get",
    "statistic-get-all",
    "statistic-remove",
    "statistic-remove-all",
    "statistic-reset",
    "statistic-reset-all",
    "statistic-sample-age-set",
    "statistic-sample-age-set-all",
    "statistic-sample-count-set",
    "statistic-sample-count-set-all",
    "status-get",
    "version-get",
];

/// Runs one command. Never panics on input; an invalid request changes
/// nothing. Lease changes are on disk before this returns success.
pub async fn dispatch(state: &ApiState, req: &Request) -> Answer {
    if let Some(handled) = super::service::dispatch(state, req) {
        return handled.unwrap_or_else(Answer::from);
    }
    let handled = match req.command.as_str() {
        "version-get" => Ok(version()),
        "list-commands" => {
            // Like Kea, the ha-* commands exist only with the HA hook loaded.
            let ha = state.ha_active().is_some();
            let mut list: Vec<&str> = COMMANDS.iter().copied().filter(|c| ha || !c.starts_with("ha-")).collect();
            list.extend(super::service::REGISTERED_UNSUPPORTED);
            list.sort_unstable();
            Ok(Answer { result: ResultCode::Success, text: None, arguments: Some(json!(list)) })
        }
        "status-get" => Ok(status_get(state)),
        "shutdown" => Ok(shutdown(state)),
        "dhcp-disable" => dhcp_disable(state, req).await,
        "dhcp-enable" => Ok(dhcp_enable(state, req).await),
        "config-get" => Ok(config_get(state)),
        "config-test" => config_test(state, req).await,
        "config-set" => config_set(state, req).await,
        "config-reload" => Ok(config_reload(state).await),
        "config-write" => config_write(state, req),
        c if c.starts_with("statistic-") => super::statistic::dispatch(state, req).unwrap_or_else(|| unsupported(c)),
        c if c.starts_with("lease4-") => leases::dispatch(state, req).await,
        c if c.starts_with("ha-") => super::ha::dispatch(state, req).await,
        c => unsupported(c),
    };
    handled.unwrap_or_else(Answer::from)
}

/// Kea's answer to a command nobody registered.
fn unsupported(c: &str) -> Handled {
    Ok(Answer::new(ResultCode::Unsupported, format!("'{c}' command not supported.")))
}

fn version() -> Answer {
    let v = env!("CARGO_PKG_VERSION");
    Answer::ok(v).with_args(
        json!({ "extended": format!("xdhcpd {v}\nKea 2.2 Dhcp4 configuration and control API") }),
    )
}

/// Whether DHCP is being served at `now` (unix seconds), per `dhcp-disable`.
pub fn dhcp_enabled(until: Option<u64>, now: u64) -> bool {
    until.is_none_or(|t| now >= t)
}

fn status_get(state: &ApiState) -> Answer {
    let pool = state.packet_pool.as_ref().and_then(|w| w.status());
    let until = state.core.dhcp_disabled_until();
    let reload = state
        .applied
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .reloaded_at
        .elapsed()
        .as_secs();
    let mut args = json!({
        "pid": std::process::id(),
        "uptime": state.started.elapsed().as_secs(),
        "reload": reload,
        "multi-threading-enabled": pool.is_some(),
        "sockets": { "status": "ready" },
        "xdhcp": {
            "attach-mode": state.attach_mode,
            "dhcp-enabled": dhcp_enabled(until, unix_now()),
        },
    });
    // Kea's keys, only with multi-threading on.
    if let Some(p) = &pool {
        args["thread-pool-size"] = json!(p.threads);
        args["packet-queue-size"] = json!(p.queue_size);
        args["packet-queue-statistics"] = json!(p.queue.averages());
        args["xdhcp"]["packet-queue-dropped"] = json!(p.queue.dropped());
    }
    if let Some(ha) = state.ha_status() {
        args["high-availability"] = crate::kea::status::ha_json(&ha);
    }
    Answer::ok("").without_text().with_args(args)
}

fn shutdown(state: &ApiState) -> Answer {
    state.event("shutdown requested");
    state.stop_request.cancel();
    Answer::ok("Shutting down.")
}

async fn dhcp_disable(state: &ApiState, req: &Request) -> Handled {
    let args = match &req.arguments {
        None => None,
        Some(Value::Object(m)) => Some(Args(m)),
        Some(_) => {
            return Err(ArgError::Other(
                "arguments for the 'dhcp-disable' command must be a map".into(),
            ));
        }
    };
    let mut period = None;
    if let Some(a) = &args {
        match a.get("max-period") {
            None => {}
            Some(Value::Number(n)) => match n.as_i64() {
                Some(p) if p > 0 => period = Some(p as u64),
                _ => {
                    return Err(ArgError::Other(
                        "'max-period' must be positive integer".into(),
                    ));
                }
            },
            Some(_) => {
                return Err(ArgError::Other(
                    "'max-period' argument must be a number".into(),
                ));
            }
        }
        match a.get("origin") {
            None => {}
            Some(Value::String(o)) if o == "ha-partner" => {
                if let Some(a) = super::ha::partner_dhcp(state, false, period) {
                    return Ok(a);
                }
            }
            Some(Value::String(o)) if o == "user" => {}
            Some(Value::String(o)) => {
                return Err(ArgError::Other(format!(
                    "invalid value used for 'origin' parameter: {o}"
                )));
            }
            Some(_) => return Err(ArgError::Other("'origin' argument must be a string".into())),
        }
    }
    let until = period.map_or(u64::MAX, |p| unix_now().saturating_add(p));
    // The kernel must stop answering too: answered once it has.
    state.core.disable_dhcp(until).await;
    Ok(match period {
        Some(p) => {
            state.event(format!("DHCP disabled for {p} s"));
            Answer::ok(format!("DHCPv4 service disabled for {p} seconds"))
        }
        None => {
            state.event("DHCP disabled");
            Answer::ok("DHCPv4 service disabled")
        }
    })
}

async fn dhcp_enable(state: &ApiState, req: &Request) -> Answer {
    let origin = req.arguments.as_ref().and_then(|a| a.get("origin")).and_then(Value::as_str);
    if origin == Some("ha-partner")
        && let Some(a) = super::ha::partner_dhcp(state, true, None)
    {
        return a;
    }
    state.core.enable_dhcp().await;
    state.event("DHCP enabled");
    Answer::ok("DHCP service successfully enabled")
}

fn config_get(state: &ApiState) -> Answer {
    match &state.applied.lock().unwrap_or_else(|p| p.into_inner()).json {
        Some(v) => Answer {
            result: ResultCode::Success,
            text: None,
            arguments: Some(v.clone()),
        },
        None => Answer::error(
            "the running configuration cannot be shown as plain JSON (it uses <?include?>)",
        ),
    }
}

/// The `arguments` of config-set/config-test: `{"Dhcp4": {...}}`.
fn config_args(req: &Request) -> Result<&Value, ArgError> {
    let Some(args) = &req.arguments else {
        return Err(ArgError::Other(
            "Missing mandatory 'arguments' parameter.".into(),
        ));
    };
    match args {
        Value::Object(m) if m.contains_key("Dhcp4") => Ok(args),
        Value::Object(_) => Err(ArgError::Other(
            "Missing mandatory 'Dhcp4' parameter.".into(),
        )),
        _ => Err(ArgError::Other(
            "'arguments' parameter expected to be a map.".into(),
        )),
    }
}

fn parse_config(v: &Value, name: &str) -> Result<config::Config, ArgError> {
    config::parse(&v.to_string(), name).map_err(|e| ArgError::Other(e.to_string()))
}

/// Checked by the reconfiguration service as `config-set` would be
/// (peers, TLS files, loggers, listeners built), nothing applied.
async fn config_test(state: &ApiState, req: &Request) -> Handled {
    let cfg = parse_config(config_args(req)?, "config-test")?;
    state.reconfig.test(&cfg).await.map_err(|e| ArgError::Other(e.to_string()))?;
    Ok(Answer::ok(
        "Configuration seems sane. Checked, but not applied.",
    ))
}

/// Applied everywhere by the reconfiguration service, or refused whole.
async fn config_set(state: &ApiState, req: &Request) -> Handled {
    let args = config_args(req)?;
    let cfg = parse_config(args, "config-set")?;
    state
        .reconfig
        .apply(&cfg, Some(args.clone()), "config-set")
        .await
        .map_err(|e| ArgError::Other(format!("config-set: {e}")))?;
    Ok(Answer::ok("Configuration successful."))
}

/// The config file read again and applied (as SIGHUP does).
async fn config_reload(state: &ApiState) -> Answer {
    match state.reconfig.reload().await {
        Ok(_) => Answer::ok("Configuration successful."),
        Err(e) => Answer::error(format!("Config reload failed: {e}")),
    }
}

/// Writes the running config. Only inside the config file's directory:
/// Kea 2.2 wrote anywhere, which made the API a root file writer (fixed in
/// later Kea versions the same way).
fn config_write(state: &ApiState, req: &Request) -> Handled {
    let name = match &req.arguments {
        None => None,
        Some(Value::Object(m)) => Args(m).str("filename")?,
        Some(_) => return Err(ArgError::Other("Argument must be a map".into())),
    };
    let Some(default) = &state.config_path else {
        return Err(ArgError::Other(
            "no configuration file to write next to".into(),
        ));
    };
    let dir = default
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let target = match name {
        None => default.clone(),
        Some(n) if Path::new(n).is_absolute() => Path::new(n).to_path_buf(),
        Some(n) => dir.join(n),
    };
    let allowed = target.parent().is_some_and(|p| same_dir(p, dir)) && target.file_name().is_some();
    if !allowed {
        return Err(ArgError::Other(format!(
            "not allowed to write config into {}: must be in {}",
            target.display(),
            dir.display()
        )));
    }
    let Some(json) = state
        .applied
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .json
        .clone()
    else {
        return Err(ArgError::Other(
            "the running configuration cannot be shown as plain JSON".into(),
        ));
    };
    let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
    let tmp = target.with_extension("xdhcp-tmp");
    std::fs::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, &target))
        .map_err(|e| {
            ArgError::Other(format!(
                "Unable to open file {} for writing: {e}",
                target.display()
            ))
        })?;
    let shown = target.display().to_string();
    Ok(
        Answer::ok(format!("Configuration written to {shown} successful"))
            .with_args(json!({ "filename": shown, "size": text.len() })),
    )
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

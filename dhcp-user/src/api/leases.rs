//! The `lease4-*` commands of Kea's `libdhcp_lease_cmds.so`: lookups, and
//! changes that go through the store's durable path (the answer waits for
//! the fsync, so "added" means "on disk"). The lease JSON itself is
//! [`crate::kea::lease`].

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::{
    ApiState,
    command::{Answer, ArgError, Args, Handled, Request, ResultCode, map_args},
};
use crate::{
    clock::unix_now,
    core::Tx,
    kea::lease::{lease_json, parse_lease},
    leases::{
        ClientId, Durable, HwAddr, Lease,
        model::{IdError, MAX_CLIENT_ID_LEN, MAX_HWADDR_LEN, MIN_CLIENT_ID_LEN, parse_colon_hex, parse_formatted_hex},
    },
};

/// How `lease4-get`/`lease4-del` name a lease.
enum Selector {
    Address(Ipv4Addr),
    HwAddr(u32, HwAddr),
    ClientId(u32, ClientId),
}

/// Kea's `getParameters`: `ip-address`, or `identifier-type` +
/// `identifier` + `subnet-id`, checked in Kea's order with Kea's texts.
fn selector(req: &Request) -> Result<Selector, ArgError> {
    let a = map_args(req, "Parameters missing or are not a map.")?;
    if let Some(v) = a.get("ip-address") {
        let Value::String(s) = v else {
            return Err(ArgError::Other("'ip-address' is not a string.".into()));
        };
        return Ok(Selector::Address(s.parse().map_err(|_| {
            ArgError::Other(format!("Failed to convert string to address '{s}': Invalid argument"))
        })?));
    }
    let subnet_id = match a.get("subnet-id") {
        None => {
            return Err(ArgError::Other(
                "Mandatory 'subnet-id' parameter missing.".into(),
            ));
        }
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ArgError::Other("'subnet-id' parameter is not integer.".into()))?,
    };
    let Some(Value::String(kind)) = a.get("identifier-type") else {
        return Err(ArgError::Other(
            "No 'ip-address' provided and 'identifier-type' is either missing or not a string."
                .into(),
        ));
    };
    let Some(Value::String(id)) = a.get("identifier") else {
        return Err(ArgError::Other(
            "No 'ip-address' provided and 'identifier' is either missing or not a string.".into(),
        ));
    };
    match kind.as_str() {
        "hw-address" => Ok(Selector::HwAddr(
            subnet_id,
            id.parse()
                .map_err(|e| ArgError::Other(format!("invalid 'identifier' {id}: {e}")))?,
        )),
        "client-id" => Ok(Selector::ClientId(
            subnet_id,
            id.parse()
                .map_err(|e| ArgError::Other(format!("invalid 'identifier' {id}: {e}")))?,
        )),
        other => Err(ArgError::Other(format!(
            "Incorrect identifier type: {other}, the only supported values are: address, hw-address, client-id"
        ))),
    }
}

fn select(state: &ApiState, s: &Selector) -> Option<Lease> {
    state.core.write(|tx| selected(tx, s))
}

/// The lease a selector names, first of several.
fn selected(tx: &Tx<'_>, s: &Selector) -> Option<Lease> {
    match s {
        Selector::Address(a) => tx.get(*a),
        Selector::HwAddr(subnet, hw) => tx.by_hwaddr(*subnet, hw).into_iter().next(),
        Selector::ClientId(subnet, id) => tx.by_client_id(*subnet, id).into_iter().next(),
    }
}

/// `N IPv4 lease(s) found.`, result 3 when N is 0.
fn found(leases: &[Lease], extra: Option<(&str, Value)>) -> Answer {
    let n = leases.len();
    let mut args = Map::new();
    args.insert(
        "leases".into(),
        Value::Array(leases.iter().map(lease_json).collect()),
    );
    if let Some((k, v)) = extra {
        args.insert(k.into(), v);
    }
    let result = if n == 0 {
        ResultCode::Empty
    } else {
        ResultCode::Success
    };
    Answer::new(result, format!("{n} IPv4 lease(s) found.")).with_args(Value::Object(args))
}

/// Waits until the store's writes are on disk; the change is in memory
/// already, so a failure here must be reported, not hidden.
async fn durable(writes: Vec<Durable>) -> Result<(), ArgError> {
    for d in writes {
        d.await
            .map_err(|e| ArgError::Other(format!("lease change not written to disk: {e}")))?;
    }
    Ok(())
}

/// Runs a `lease4-*` command.
pub async fn dispatch(state: &ApiState, req: &Request) -> Handled {
    match req.command.as_str() {
        "lease4-get" => {
            let s = selector(req)?;
            Ok(match select(state, &s) {
                Some(l) => Answer::ok("IPv4 lease found.").with_args(lease_json(&l)),
                None => Answer::new(ResultCode::Empty, "Lease not found."),
            })
        }
        "lease4-get-all" => get_all(state, req),
        "lease4-get-page" => get_page(state, req),
        "lease4-get-by-hw-address" => {
            let a = map_args(req, BY_ARGS_MISSING)?;
            let hw = kea_hwaddr(by_key(&a, "hw-address")?)?;
            let leases: Vec<Lease> = state
                .core
                .leases()
                .into_iter()
                .filter(|l| l.hwaddr.as_ref().is_some_and(|h| h.bytes() == hw.as_slice()))
                .collect();
            Ok(found(&leases, None))
        }
        "lease4-get-by-client-id" => {
            let a = map_args(req, BY_ARGS_MISSING)?;
            let id = kea_client_id(by_key(&a, "client-id")?)?;
            let leases: Vec<Lease> = state
                .core
                .leases()
                .into_iter()
                .filter(|l| l.client_id.as_ref() == Some(&id))
                .collect();
            Ok(found(&leases, None))
        }
        "lease4-get-by-hostname" => {
            let a = map_args(req, BY_ARGS_MISSING)?;
            let name = by_key(&a, "hostname")?;
            if name.is_empty() {
                return Err(ArgError::Other("'hostname' parameter is empty".into()));
            }
            // Kea compares hostnames case-insensitively.
            let leases: Vec<Lease> = state
                .core
                .leases()
                .into_iter()
                .filter(|l| l.hostname.eq_ignore_ascii_case(name))
                .collect();
            Ok(found(&leases, None))
        }
        "lease4-add" => add_or_update(state, req, false).await,
        "lease4-update" => add_or_update(state, req, true).await,
        "lease4-del" => {
            let s = selector(req)?;
            let write = state.core.write(|tx| {
                selected(tx, &s).map(|l| (l.address, tx.remove(l.address)))
            });
            let Some((addr, write)) = write else {
                return Ok(Answer::new(ResultCode::Empty, "IPv4 lease not found."));
            };
            durable(vec![write]).await?;
            state.event(format!("lease4-del {addr}"));
            Ok(Answer::ok("IPv4 lease deleted."))
        }
        "lease4-wipe" => wipe(state, req).await,
        c => Ok(Answer::new(
            ResultCode::Unsupported,
            format!("'{c}' command not supported."),
        )),
    }
}

/// What every `lease4-get-by-*` answers without an arguments map (Kea's text, typo included).
const BY_ARGS_MISSING: &str = "Command arguments missing or a not a map.";

fn id_text(e: IdError) -> ArgError {
    ArgError::Other(e.to_string())
}

/// Kea's `HWAddr::fromText`: colon-separated octets; an empty text is a
/// valid (empty) address that matches no lease, so it is kept as bytes.
fn kea_hwaddr(text: &str) -> Result<Vec<u8>, ArgError> {
    let bytes = parse_colon_hex(text).map_err(id_text)?;
    if bytes.len() > MAX_HWADDR_LEN {
        return Err(ArgError::Other("hwaddr length exceeds MAX_HWADDR_LEN".into()));
    }
    Ok(bytes)
}

/// Kea's `ClientId::fromText`, with the DUID checks first as Kea's
/// constructors run them, each with Kea's text.
fn kea_client_id(text: &str) -> Result<ClientId, ArgError> {
    let bytes = parse_formatted_hex(text).map_err(id_text)?;
    let n = bytes.len();
    if n > MAX_CLIENT_ID_LEN {
        return Err(ArgError::Other(format!("DUID size is {n} bytes, exceeds maximum of {MAX_CLIENT_ID_LEN}")));
    }
    if n == 0 {
        return Err(ArgError::Other("Empty DUIDs are not allowed".into()));
    }
    if n < MIN_CLIENT_ID_LEN {
        return Err(ArgError::Other(format!("client-id is too short ({n}), at least {MIN_CLIENT_ID_LEN} is required")));
    }
    ClientId::new(bytes).map_err(id_text)
}

/// A mandatory string argument with the `lease4-get-by-*` wording.
fn by_key<'a>(a: &Args<'a>, key: &'static str) -> Result<&'a str, ArgError> {
    match a.get(key) {
        None => Err(ArgError::Other(format!("'{key}' parameter not specified"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ArgError::Other(format!(
            "'{key}' parameter must be a string"
        ))),
    }
}

fn get_all(state: &ApiState, req: &Request) -> Handled {
    // Kea: with arguments at all, `subnets` is mandatory.
    let subnets: Option<Vec<u32>> = match &req.arguments {
        None => None,
        Some(Value::Object(m)) => match m.get("subnets") {
            None => return Err(ArgError::Other("'subnets' parameter not specified".into())),
            Some(Value::Array(ids)) => Some(
                ids.iter()
                    .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        ArgError::Other("listed subnet identifiers must be numbers".into())
                    })?,
            ),
            Some(_) => return Err(ArgError::Other("'subnets' parameter must be a list".into())),
        },
        Some(_) => {
            return Err(ArgError::Other(
                "Parameters missing or are not a map.".into(),
            ));
        }
    };
    let mut leases = state.core.leases();
    if let Some(ids) = subnets {
        leases.retain(|l| ids.contains(&l.subnet_id));
    }
    Ok(found(&leases, None))
}

/// Kea's paging: `from` is `"start"` or the last address of the previous
/// page; answers include `count`.
fn get_page(state: &ApiState, req: &Request) -> Handled {
    let a = map_args(
        req,
        "no parameters specified for the lease4-get-page command",
    )?;
    let after = match a.get("from") {
        None => return Err(ArgError::Other("'from' parameter not specified".into())),
        Some(Value::String(s)) if s == "start" => None,
        Some(Value::String(s)) => Some(s.parse::<Ipv4Addr>().map_err(|_| {
            ArgError::Other(
                "'from' parameter value is neither 'start' keyword nor a valid IPv4 address".into(),
            )
        })?),
        Some(_) => return Err(ArgError::Other("'from' parameter must be a string".into())),
    };
    let limit = page_limit(a.get("limit"))?;
    let leases = state.core.leases_after(after, limit);
    let count = leases.len();
    Ok(found(&leases, Some(("count", json!(count)))))
}

/// Kea's `limit` check: an integer (a negative one wraps to a huge size,
/// as Kea's cast does), from 1 to `u32::MAX`.
fn page_limit(v: Option<&Value>) -> Result<usize, ArgError> {
    let n = match v {
        None => return Err(ArgError::Other("'limit' parameter not specified".into())),
        Some(Value::Number(n)) if !n.is_f64() => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)).unwrap_or(u64::MAX),
        Some(_) => return Err(ArgError::Other("'limit' parameter must be a number".into())),
    };
    if n == 0 {
        return Err(ArgError::Other("page size of retrieved leases must not be 0".into()));
    }
    if n > u64::from(u32::MAX) {
        return Err(ArgError::Other(format!(
            "page size of retrieved leases must not be greater than {}",
            u32::MAX
        )));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

async fn add_or_update(state: &ApiState, req: &Request, update: bool) -> Handled {
    let a = map_args(
        req,
        if update {
            "no parameters specified for lease4-update command"
        } else {
            "no parameters specified for the command"
        },
    )?;
    let force = if update {
        a.bool("force-create")?.unwrap_or(false)
    } else {
        false
    };
    // Check and write under one lock so a DHCP exchange cannot slip between.
    let applied = state.core.write(|tx| -> Result<_, ArgError> {
        let lease = parse_lease(&a, tx.policy(), unix_now())?;
        let local = tx.get(lease.address);
        let existed = local.is_some();
        // A partner's update for an address we hold for another client:
        // the HA lease conflict rule decides (crate::ha::conflict).
        if update && force
            && let Some(primary) = tx.policy().subnet(lease.subnet_id).and_then(|s| super::ha::update_sender_is_primary(state, s))
            && crate::ha::conflict::update_keeps_local(local.as_ref(), &lease, primary, unix_now())
        {
            return Ok(Err(local.unwrap_or(lease)));
        }
        if !update && existed {
            return Err(ArgError::Other("IPv4 lease already exists.".into()));
        }
        if update && !existed && !force {
            return Err(ArgError::Other(format!(
                "failed to update the lease with address {} either because the lease has been deleted or it has changed in the database, in both cases a retry might succeed",
                lease.address
            )));
        }
        let write = tx.upsert(lease.clone());
        Ok(Ok((lease, existed, write)))
    })?;
    let (lease, existed, write) = match applied {
        Ok(a) => a,
        Err(kept) => {
            state.event(format!("lease4-update {}: refused, held by another client (HA lease conflict rule)", kept.address));
            return Ok(super::ha::conflict_answer(&kept));
        }
    };
    durable(vec![write]).await?;
    state.event(format!("{} {}", req.command, lease.address));
    Ok(if !update {
        Answer::ok(format!(
            "Lease for address {}, subnet-id {} added.",
            lease.address, lease.subnet_id
        ))
    } else if existed {
        Answer::ok("IPv4 lease updated.")
    } else {
        Answer::ok("IPv4 lease added.")
    })
}

async fn wipe(state: &ApiState, req: &Request) -> Handled {
    let subnet = match &req.arguments {
        None => None,
        Some(Value::Object(m)) => Args(m).u32("subnet-id")?,
        Some(_) => {
            return Err(ArgError::Other(
                "Parameters missing or are not a map.".into(),
            ));
        }
    };
    let (ids, writes) = state.core.write(|tx| {
        let ids: Vec<u32> = match subnet {
            Some(id) => vec![id],
            None => tx.policy().subnets.iter().map(|s| s.id).collect(),
        };
        let doomed: Vec<Ipv4Addr> = tx
            .snapshot()
            .into_iter()
            .filter(|l| ids.contains(&l.subnet_id))
            .map(|l| l.address)
            .collect();
        let mut writes = Vec::with_capacity(doomed.len());
        for addr in doomed {
            writes.push(tx.remove(addr));
        }
        (ids, writes)
    });
    let n = writes.len();
    durable(writes).await?;
    let list: String = ids.iter().map(|i| format!(" {i}")).collect();
    if n > 0 {
        state.event(format!("lease4-wipe: {n} lease(s) from subnet(s){list}"));
    }
    let result = if n == 0 {
        ResultCode::Empty
    } else {
        ResultCode::Success
    };
    Ok(Answer::new(
        result,
        format!("Deleted {n} IPv4 lease(s) from subnet(s){list}"),
    ))
}

//! Stage 2: wire structs → validated runtime types.
//!
//! Every check names the JSON path of what it refuses; `mod.rs` turns the
//! path into `file:line:column`. Inheritance follows Kea 2.2: each lifetime
//! key a subnet lacks is copied from the global level before the subnet is
//! interpreted; `authoritative`, `match-client-id` and the boot fields fall
//! back to the global value; option data is merged per code, most specific
//! level (reservation, pool, subnet, global) winning.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::client_names::{self, NamePolicy};
use super::error::Invalid;
use super::ha::{self, HaConfig};
use super::lifetimes::LifetimeKeys;
use super::option_def::{self, OptionDefs};
use super::option_space;
use super::options::{self, OptionSet};
use super::wire;
use super::{
    BootParams, Cidr, Config, ControlSocket, HostId, HostIdentifierType, InterfaceSpec,
    ExpiredLeases, InterfacesConfig, LeaseCache, OutboundInterface, Pool, Reservation,
    ReservationFlags, SharedNetwork, SocketType, Subnet, SubnetClasses, SubnetContext, SubnetId,
};

type Warnings = Vec<(String, String)>;

/// The client-name keys of a wire level (global, network or subnet).
macro_rules! name_keys {
    ($l:expr) => {
        client_names::NameKeys {
            replace: $l.ddns_replace_client_name.as_deref(),
            prefix: $l.ddns_generated_prefix.as_deref(),
            suffix: $l.ddns_qualifying_suffix.as_deref(),
            char_set: $l.hostname_char_set.as_deref(),
            char_replacement: $l.hostname_char_replacement.as_deref(),
        }
    };
}

const P: &str = "Dhcp4";

/// The `TryFrom` of the design: a whole `wire::Root` into a `Config` plus
/// warnings (path, message).
pub(crate) struct Validated(pub Config, pub Warnings);

impl TryFrom<wire::Root> for Validated {
    type Error = Invalid;

    fn try_from(root: wire::Root) -> Result<Self, Invalid> {
        let (c, w) = build(root)?;
        Ok(Validated(c, w))
    }
}

pub(crate) fn build(root: wire::Root) -> Result<(Config, Warnings), Invalid> {
    let d = root.dhcp4;
    let mut w: Warnings = Vec::new();
    let at = |k: &str| format!("{P}.{k}");

    let control_socket = control_socket(d.control_socket.as_ref(), &at("control-socket"), &mut w)?;
    let loggers = super::loggers::parse(d.loggers.unwrap_or_default(), &at("loggers"), &mut w)?;
    let multi_threading = super::multi_threading::parse(d.multi_threading.as_ref(), &at("multi-threading"))?;
    ignored(&mut w, &at("dhcp-queue-control"), &d.dhcp_queue_control, "Kea packet-processing tuning");
    ignored(&mut w, &at("sanity-checks"), &d.sanity_checks, "xdhcp's lease store applies its own checks");
    if let Some(ddns) = &d.dhcp_ddns {
        if ddns.get("enable-updates").and_then(Value::as_bool) == Some(true) {
            return Err(Invalid::new(at("dhcp-ddns.enable-updates"), "DNS updates are not supported by xdhcp"));
        }
        ignored(&mut w, &at("dhcp-ddns"), &d.dhcp_ddns, "DNS updates are disabled");
    }
    if d.user_context.is_some() {
        w.push((at("user-context"), "ignored".into()));
    }
    if let Some(port) = d.dhcp4o6_port.filter(|p| *p != 0) {
        w.push((
            at("dhcp4o6-port"),
            format!("ignored: DHCPv4-over-DHCPv6 (port {port}) is not supported"),
        ));
    }

    let interfaces = interfaces(d.interfaces_config.as_ref(), &at("interfaces-config"), &mut w)?;
    let lease_database = super::lease_db::validate(d.lease_database.as_ref(), &at("lease-database"), &mut w)?;

    let global_keys = LifetimeKeys {
        valid: d.valid_lifetime,
        min_valid: d.min_valid_lifetime,
        max_valid: d.max_valid_lifetime,
        renew: d.renew_timer,
        rebind: d.rebind_timer,
        calculate_tee_times: d.calculate_tee_times,
        t1_percent: d.t1_percent,
        t2_percent: d.t2_percent,
    };
    let global_lifetimes = global_keys.resolve(P)?;
    let global_boot = boot_params(
        &BootParams {
            next_server: Ipv4Addr::UNSPECIFIED,
            server_hostname: String::new(),
            boot_file_name: String::new(),
        },
        &d.next_server,
        &d.server_hostname,
        &d.boot_file_name,
        P,
    )?;
    let authoritative = d.authoritative.unwrap_or(false);
    let match_client_id = d.match_client_id.unwrap_or(true);
    let global_flags = reservation_flags(
        ReservationFlags { global: false, in_subnet: true, out_of_pool: false },
        &d.reservation_mode,
        d.reservations_global,
        d.reservations_in_subnet,
        d.reservations_out_of_pool,
        P,
        &mut w,
    )?;
    let host_reservation_identifiers = host_ids(&d.host_reservation_identifiers, &at("host-reservation-identifiers"))?;
    let option_defs = option_def::parse_list(d.option_def.as_deref().unwrap_or_default(), &at("option-def"), &mut w)?;
    let options = option_list(&option_defs, &d.option_data, &at("option-data"), &mut w)?;
    let client_classes =
        super::client_classes::parse_list(d.client_classes.as_deref().unwrap_or_default(), &at("client-classes"), &option_defs, &mut w)?;
    let global_reservations = reservation_list(d.reservations, &at("reservations"), None, 0, &option_defs, |_| &options, &mut w)?;

    let Hooks { lease_cmds, ha, bootp, flex_options } = hooks(d.hooks_libraries, &at("hooks-libraries"), &option_defs, &mut w)?;

    let global_cache = lease_cache(LeaseCache::default(), d.cache_threshold, d.cache_max_age, P)?;
    let globals = Globals {
        keys: global_keys,
        boot: global_boot.clone(),
        authoritative,
        match_client_id,
        store_extended_info: d.store_extended_info.unwrap_or(false),
        flags: global_flags,
        options: options.clone(),
        option_defs: &option_defs,
        cache: global_cache,
        names: client_names::inherit(&NamePolicy::default(), name_keys!(d), P)?,
        interfaces: &interfaces,
        ha: ha.as_ref(),
        network: None,
    };
    let mut subnets: Vec<Subnet> = Vec::new();
    let mut next_auto_id = 1u32;
    // Kea parses shared-networks before subnet4 (json_config_parser.cc),
    // so it numbers subnets without an id in that order and reports the
    // first error of shared-networks first (checked with kea-dhcp4 2.2).
    let mut shared_networks: Vec<SharedNetwork> = Vec::new();
    for (i, n) in d
        .shared_networks
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let np = format!("{P}.shared-networks[{i}]");
        let index = shared_networks.len();
        let (network, members) =
            shared_network(n, &np, index, &globals, &mut next_auto_id, &mut w)?;
        if shared_networks.iter().any(|o| o.name == network.name) {
            return Err(Invalid::new(
                format!("{np}.name"),
                format!(
                    "a shared-network with name {:?} is defined twice",
                    network.name
                ),
            ));
        }
        for (j, subnet) in members.into_iter().enumerate() {
            add_subnet(&mut subnets, subnet, &format!("{np}.subnet4[{j}]"))?;
        }
        shared_networks.push(network);
    }
    for (i, s) in d.subnet4.unwrap_or_default().into_iter().enumerate() {
        let sp = format!("{P}.subnet4[{i}]");
        let subnet = subnet(s, &sp, &globals, &mut next_auto_id, &mut w)?;
        add_subnet(&mut subnets, subnet, &sp)?;
    }
    // Kea keeps subnets, and each shared network's subnets, ordered by id:
    // selection and a network's allocation walk both follow that order.
    subnets.sort_by_key(|s| s.id);
    for n in &mut shared_networks {
        n.subnets.sort_unstable();
    }

    let config = Config {
        source: String::new(),
        interfaces,
        lease_database,
        global_lifetimes,
        global_boot,
        authoritative,
        match_client_id,
        echo_client_id: d.echo_client_id.unwrap_or(true),
        decline_probation_period: d.decline_probation_period.unwrap_or(86_400),
        expired_leases: expired_leases(d.expired_leases_processing, &at("expired-leases-processing"), &mut w)?,
        host_reservation_identifiers,
        early_global_reservations_lookup: d.early_global_reservations_lookup.unwrap_or(false),
        options,
        subnets,
        shared_networks,
        global_reservations,
        client_classes,
        lease_cmds,
        bootp,
        flex_options,
        ha,
        loggers,
        control_socket,
        multi_threading,
        server_tag: d.server_tag.unwrap_or_default(),
        warnings: Vec::new(),
    };
    Ok((config, w))
}

/// `expired-leases-processing` with Kea's defaults and limits
/// (`CfgExpiration`).
fn expired_leases(
    e: Option<wire::ExpiredLeasesProcessing>,
    path: &str,
    w: &mut Warnings,
) -> Result<ExpiredLeases, Invalid> {
    let mut out = ExpiredLeases::default();
    let Some(e) = e else { return Ok(out) };
    if e.user_context.is_some() {
        w.push((format!("{path}.user-context"), "ignored".into()));
    }
    let get = |v: Option<i64>, key: &str, max: i64, default: u32| -> Result<u32, Invalid> {
        match v {
            None => Ok(default),
            Some(v) if v < 0 => Err(Invalid::new(
                format!("{path}.{key}"),
                format!("value for configuration parameter '{key}' must not be negative"),
            )),
            Some(v) if v > max => Err(Invalid::new(
                format!("{path}.{key}"),
                format!("out range value '{v}' for configuration parameter '{key}', expected maximum value of '{max}'"),
            )),
            Some(v) => Ok(v as u32),
        }
    };
    let (u16m, u32m) = (i64::from(u16::MAX), i64::from(u32::MAX));
    let d = ExpiredLeases::default();
    out.reclaim_timer_wait_time = get(e.reclaim_timer_wait_time, "reclaim-timer-wait-time", u16m, d.reclaim_timer_wait_time)?;
    out.flush_reclaimed_timer_wait_time = get(
        e.flush_reclaimed_timer_wait_time,
        "flush-reclaimed-timer-wait-time",
        u16m,
        d.flush_reclaimed_timer_wait_time,
    )?;
    out.hold_reclaimed_time = get(e.hold_reclaimed_time, "hold-reclaimed-time", u32m, d.hold_reclaimed_time)?;
    out.max_reclaim_leases = get(e.max_reclaim_leases, "max-reclaim-leases", u32m, d.max_reclaim_leases)?;
    out.max_reclaim_time = get(e.max_reclaim_time, "max-reclaim-time", 10_000, d.max_reclaim_time)?;
    out.unwarned_reclaim_cycles = get(e.unwarned_reclaim_cycles, "unwarned-reclaim-cycles", u16m, d.unwarned_reclaim_cycles)?;
    Ok(out)
}

fn ignored(w: &mut Warnings, path: &str, v: &Option<Value>, why: &str) {
    if v.is_some() {
        w.push((path.to_owned(), format!("ignored: {why}")));
    }
}

/// What a subnet inherits from the level above it: the global level, or a
/// shared network (itself already over the global level).
#[derive(Clone)]
struct Globals<'a> {
    keys: LifetimeKeys,
    boot: BootParams,
    authoritative: bool,
    match_client_id: bool,
    store_extended_info: bool,
    flags: ReservationFlags,
    options: OptionSet,
    option_defs: &'a OptionDefs,
    cache: LeaseCache,
    names: NamePolicy,
    interfaces: &'a InterfacesConfig,
    ha: Option<&'a HaConfig>,
    /// Set for the subnets of a shared network.
    network: Option<NetworkScope>,
}

/// The shared network a subnet belongs to, as its subnets see it.
#[derive(Clone)]
struct NetworkScope {
    index: usize,
    client_class: Option<String>,
    required: Vec<String>,
    own_options: OptionSet,
    interface: Option<String>,
    relay_addresses: Vec<Ipv4Addr>,
    ha_server_name: Option<String>,
}

/// Adds a subnet to the flat list, refusing what Kea refuses: an id or a
/// prefix used twice. Overlapping prefixes are accepted, as Kea 2.2 accepts
/// them: its subnets are ordered by id, so the lowest id that matches a
/// packet serves it (the list is sorted by id once complete).
fn add_subnet(subnets: &mut Vec<Subnet>, subnet: Subnet, sp: &str) -> Result<(), Invalid> {
    if let Some(other) = subnets.iter().find(|o| o.id == subnet.id) {
        return Err(Invalid::new(
            format!("{sp}.id"),
            format!(
                "subnet id {} is already used by subnet {}",
                subnet.id, other.prefix
            ),
        ));
    }
    if let Some(other) = subnets.iter().find(|o| o.prefix == subnet.prefix) {
        return Err(Invalid::new(
            format!("{sp}.subnet"),
            format!("subnet with the prefix of '{}' already exists (id {})", subnet.prefix, other.id),
        ));
    }
    subnets.push(subnet);
    Ok(())
}

/// `cache-threshold` and `cache-max-age` over the parent's (Kea's
/// `parseCacheParams`: the threshold is a fraction strictly between 0 and 1).
fn lease_cache(
    parent: LeaseCache,
    threshold: Option<f64>,
    max_age: Option<u32>,
    path: &str,
) -> Result<LeaseCache, Invalid> {
    if let Some(t) = threshold
        && !(t > 0.0 && t < 1.0)
    {
        return Err(Invalid::new(
            format!("{path}.cache-threshold"),
            format!("{t} is invalid, it must be greater than 0.0 and less than 1.0"),
        ));
    }
    Ok(LeaseCache {
        threshold: threshold.or(parent.threshold),
        max_age: max_age.or(parent.max_age),
    })
}

/// One `shared-networks` entry: the network, and its subnets with the
/// network's parameters inherited (global → shared network → subnet → pool).
fn shared_network(
    n: wire::SharedNetwork4,
    path: &str,
    index: usize,
    g: &Globals<'_>,
    next_auto_id: &mut u32,
    w: &mut Warnings,
) -> Result<(SharedNetwork, Vec<Subnet>), Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    let name = match n.name {
        None => return Err(Invalid::new(path, "a shared-network needs a \"name\"")),
        Some(s) if s.is_empty() => return Err(Invalid::new(at("name"), "must not be empty")),
        Some(s) => s,
    };
    let keys = LifetimeKeys {
        valid: n.valid_lifetime,
        min_valid: n.min_valid_lifetime,
        max_valid: n.max_valid_lifetime,
        renew: n.renew_timer,
        rebind: n.rebind_timer,
        calculate_tee_times: n.calculate_tee_times,
        t1_percent: n.t1_percent,
        t2_percent: n.t2_percent,
    }
    .inherit(&g.keys);
    // Checked at the network's own level too, so an error names its key.
    keys.resolve(path)?;
    let interface = match n.interface {
        Some(i) if i.is_empty() => None,
        Some(i) => {
            if !g.interfaces.serves(&i) {
                w.push((
                    at("interface"),
                    format!("{i:?} is not in interfaces-config.interfaces; the network is not served there"),
                ));
            }
            Some(i)
        }
        None => None,
    };
    let mut ha_server_name = None;
    if let Some(mut uc) = n.user_context {
        match uc.remove("ha-server-name") {
            None => {}
            Some(Value::String(s)) if !s.is_empty() => ha_server_name = Some(s),
            Some(_) => {
                return Err(Invalid::new(
                    at("user-context.ha-server-name"),
                    "must be a non-empty string",
                ));
            }
        }
    }
    let own_options = option_list(g.option_defs, &n.option_data, &at("option-data"), w)?;
    let scope = Globals {
        keys,
        boot: boot_params(
            &g.boot,
            &n.next_server,
            &n.server_hostname,
            &n.boot_file_name,
            path,
        )?,
        authoritative: n.authoritative.unwrap_or(g.authoritative),
        match_client_id: n.match_client_id.unwrap_or(g.match_client_id),
        store_extended_info: n.store_extended_info.unwrap_or(g.store_extended_info),
        flags: reservation_flags(
            g.flags,
            &n.reservation_mode,
            n.reservations_global,
            n.reservations_in_subnet,
            n.reservations_out_of_pool,
            path,
            w,
        )?,
        options: g.options.merged_with(&own_options),
        option_defs: g.option_defs,
        cache: lease_cache(g.cache, n.cache_threshold, n.cache_max_age, path)?,
        names: client_names::inherit(&g.names, name_keys!(n), path)?,
        interfaces: g.interfaces,
        ha: g.ha,
        network: Some(NetworkScope {
            index,
            client_class: n.client_class.clone().filter(|c| !c.is_empty()),
            required: n.require_client_classes.clone().unwrap_or_default(),
            own_options: own_options.clone(),
            interface: interface.clone(),
            relay_addresses: relay_list(n.relay, &at("relay"))?,
            ha_server_name,
        }),
    };
    let mut members = Vec::new();
    // Kea's sharedNetworksSanityChecks: one authoritative setting and at
    // most one interface per network.
    let mut link = interface.clone();
    for (j, s) in n.subnet4.unwrap_or_default().into_iter().enumerate() {
        let sp = format!("{path}.subnet4[{j}]");
        let subnet = subnet(s, &sp, &scope, next_auto_id, w)?;
        if subnet.authoritative != scope.authoritative {
            return Err(Invalid::new(
                format!("{sp}.authoritative"),
                format!(
                    "subnet {} has authoritative {} but its shared-network {name:?} has {}",
                    subnet.prefix, subnet.authoritative, scope.authoritative
                ),
            ));
        }
        match (&link, &subnet.interface) {
            (Some(l), Some(i)) if l != i => {
                return Err(Invalid::new(
                    format!("{sp}.interface"),
                    format!(
                        "subnet {} has interface {i:?}, but the shared-network {name:?} or an earlier subnet in it uses {l:?}",
                        subnet.prefix
                    ),
                ));
            }
            (None, Some(i)) => link = Some(i.clone()),
            _ => {}
        }
        members.push(subnet);
    }
    let subnet_ids = members.iter().map(|s| s.id).collect();
    Ok((
        SharedNetwork {
            name,
            interface,
            subnets: subnet_ids,
        },
        members,
    ))
}

/// A `relay` map: `ip-addresses`, or Kea's older single `ip-address`.
fn relay_list(relay: Option<wire::Relay>, rp: &str) -> Result<Vec<Ipv4Addr>, Invalid> {
    let Some(r) = relay else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    match (r.ip_addresses, r.ip_address) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(rp, "use ip-addresses or ip-address, not both"));
        }
        (Some(list), None) => {
            for (i, a) in list.iter().enumerate() {
                out.push(parse_ipv4(a, &format!("{rp}.ip-addresses[{i}]"))?);
            }
        }
        (None, Some(a)) => {
            let a = parse_ipv4(&a, &format!("{rp}.ip-address"))?;
            // Kea's old "0.0.0.0 means no relay" spelling.
            if !a.is_unspecified() {
                out.push(a);
            }
        }
        (None, None) => return Err(Invalid::new(rp, "needs ip-addresses")),
    }
    Ok(out)
}

fn interfaces(ic: Option<&wire::InterfacesConfig>, path: &str, w: &mut Warnings) -> Result<InterfacesConfig, Invalid> {
    let mut out = InterfacesConfig {
        interfaces: Vec::new(),
        socket_type: SocketType::Raw,
        outbound_interface: OutboundInterface::SameAsInbound,
        re_detect: true,
    };
    let Some(ic) = ic else { return Ok(out) };
    if ic.user_context.is_some() {
        w.push((format!("{path}.user-context"), "ignored".into()));
    }
    for (i, spec) in ic.interfaces.iter().flatten().enumerate() {
        let ip = format!("{path}.interfaces[{i}]");
        let parsed = if spec == "*" {
            InterfaceSpec::All
        } else {
            let (name, addr) = match spec.split_once('/') {
                Some((n, a)) => {
                    let a = a
                        .parse::<Ipv4Addr>()
                        .map_err(|_| Invalid::new(&ip, format!("{spec:?}: {a:?} is not an IPv4 address")))?;
                    (n, Some(a))
                }
                None => (spec.as_str(), None),
            };
            if name.is_empty() || name.len() > 15 || name.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(Invalid::new(&ip, format!("{spec:?} is not a valid interface name")));
            }
            InterfaceSpec::Named { name: name.to_owned(), address: addr }
        };
        if out.interfaces.contains(&parsed) {
            return Err(Invalid::new(&ip, format!("{spec:?} is listed twice")));
        }
        out.interfaces.push(parsed);
    }
    if let Some(t) = &ic.dhcp_socket_type {
        out.socket_type = match t.as_str() {
            "raw" => SocketType::Raw,
            "udp" => SocketType::Udp,
            _ => {
                return Err(Invalid::new(
                    format!("{path}.dhcp-socket-type"),
                    format!("{t:?}: expected \"raw\" or \"udp\""),
                ));
            }
        };
    }
    if let Some(o) = &ic.outbound_interface {
        out.outbound_interface = match o.as_str() {
            "same-as-inbound" => OutboundInterface::SameAsInbound,
            "use-routing" => OutboundInterface::UseRouting,
            _ => {
                return Err(Invalid::new(
                    format!("{path}.outbound-interface"),
                    format!("{o:?}: expected \"same-as-inbound\" or \"use-routing\""),
                ));
            }
        };
    }
    out.re_detect = ic.re_detect.unwrap_or(true);
    Ok(out)
}

/// `control-socket`: Kea 2.2 knows only `"unix"` and needs a socket name.
fn control_socket(cs: Option<&wire::ControlSocket>, path: &str, w: &mut Warnings) -> Result<Option<ControlSocket>, Invalid> {
    let Some(cs) = cs else { return Ok(None) };
    if cs.user_context.is_some() {
        w.push((format!("{path}.user-context"), "ignored".into()));
    }
    match cs.socket_type.as_deref() {
        Some("unix") => {}
        Some(t) => return Err(Invalid::new(format!("{path}.socket-type"), format!("{t:?}: only \"unix\" is supported (Kea 2.2)"))),
        None => return Err(Invalid::new(path, "Mandatory 'socket-type' parameter missing")),
    }
    match cs.socket_name.as_deref() {
        Some("") => Err(Invalid::new(format!("{path}.socket-name"), "must not be empty")),
        Some(n) => Ok(Some(ControlSocket { socket_name: PathBuf::from(n) })),
        None => Err(Invalid::new(path, "Mandatory 'socket-name' parameter missing")),
    }
}

fn boot_params(
    parent: &BootParams,
    next_server: &Option<String>,
    server_hostname: &Option<String>,
    boot_file_name: &Option<String>,
    path: &str,
) -> Result<BootParams, Invalid> {
    // Kea treats an empty next-server as not set.
    let next_server = match next_server.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_ipv4(s, &format!("{path}.next-server"))?,
        None => parent.next_server,
    };
    let server_hostname = match server_hostname {
        Some(s) => bounded(s, 63, &format!("{path}.server-hostname"))?,
        None => parent.server_hostname.clone(),
    };
    let boot_file_name = match boot_file_name {
        Some(s) => bounded(s, 127, &format!("{path}.boot-file-name"))?,
        None => parent.boot_file_name.clone(),
    };
    Ok(BootParams { next_server, server_hostname, boot_file_name })
}

/// The BOOTP header's sname and file fields have 64 and 128 bytes, NUL included.
fn bounded(s: &str, max: usize, path: &str) -> Result<String, Invalid> {
    if s.len() > max {
        return Err(Invalid::new(path, format!("must be at most {max} bytes long, it is {}", s.len())));
    }
    Ok(s.to_owned())
}

fn parse_ipv4(s: &str, path: &str) -> Result<Ipv4Addr, Invalid> {
    s.trim().parse::<Ipv4Addr>().map_err(|_| Invalid::new(path, format!("{s:?} is not an IPv4 address")))
}

#[allow(clippy::too_many_arguments)]
fn reservation_flags(
    parent: ReservationFlags,
    mode: &Option<String>,
    global: Option<bool>,
    in_subnet: Option<bool>,
    out_of_pool: Option<bool>,
    path: &str,
    w: &mut Warnings,
) -> Result<ReservationFlags, Invalid> {
    if let Some(m) = mode {
        let mp = format!("{path}.reservation-mode");
        if global.is_some() || in_subnet.is_some() || out_of_pool.is_some() {
            return Err(Invalid::new(
                mp,
                "cannot be used together with reservations-global, reservations-in-subnet or reservations-out-of-pool",
            ));
        }
        let (g, s, o) = match m.as_str() {
            "disabled" => (false, false, false),
            "out-of-pool" => (false, true, true),
            "global" => (true, false, false),
            "all" => (false, true, false),
            _ => {
                return Err(Invalid::new(
                    mp,
                    format!("{m:?}: expected \"disabled\", \"out-of-pool\", \"global\" or \"all\""),
                ));
            }
        };
        w.push((mp, "deprecated in Kea; read as the equivalent reservations-* flags".into()));
        return Ok(ReservationFlags { global: g, in_subnet: s, out_of_pool: o });
    }
    Ok(ReservationFlags {
        global: global.unwrap_or(parent.global),
        in_subnet: in_subnet.unwrap_or(parent.in_subnet),
        out_of_pool: out_of_pool.unwrap_or(parent.out_of_pool),
    })
}

fn host_ids(list: &Option<Vec<String>>, path: &str) -> Result<Vec<HostIdentifierType>, Invalid> {
    let Some(list) = list else {
        // Kea's DHCPv4 default order.
        return Ok(vec![
            HostIdentifierType::HwAddress,
            HostIdentifierType::Duid,
            HostIdentifierType::CircuitId,
            HostIdentifierType::ClientId,
        ]);
    };
    if list.is_empty() {
        return Err(Invalid::new(path, "must name at least one identifier type"));
    }
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let t = match n.as_str() {
            "hw-address" => HostIdentifierType::HwAddress,
            "duid" => HostIdentifierType::Duid,
            "circuit-id" => HostIdentifierType::CircuitId,
            "client-id" => HostIdentifierType::ClientId,
            "flex-id" => return Err(Invalid::new(format!("{path}[{i}]"), FLEX_ID_UNSUPPORTED)),
            _ => {
                return Err(Invalid::new(
                    format!("{path}[{i}]"),
                    format!("{n:?}: expected one of hw-address, duid, circuit-id, client-id, flex-id"),
                ));
            }
        };
        if out.contains(&t) {
            return Err(Invalid::new(format!("{path}[{i}]"), format!("{n:?} is listed twice")));
        }
        out.push(t);
    }
    Ok(out)
}

/// Why `flex-id` is refused wherever it appears.
const FLEX_ID_UNSUPPORTED: &str =
    "flex-id identifies hosts through Kea's libdhcp_flex_id.so hook, which xdhcp does not provide";

/// Reservations of one scope (a subnet, or the global level when `prefix`
/// is `None`), with Kea's uniqueness rules: one reservation per identifier
/// and one per address in the scope.
/// `context` gives the options a reservation's own are read against (its
/// pool's or subnet's for an address, Kea's `in_context`).
#[allow(clippy::too_many_arguments)]
fn reservation_list<'o>(
    list: Option<Vec<wire::Reservation>>,
    path: &str,
    prefix: Option<&Cidr>,
    subnet_id: u32,
    defs: &OptionDefs,
    context: impl Fn(Option<Ipv4Addr>) -> &'o OptionSet,
    w: &mut Warnings,
) -> Result<Vec<Reservation>, Invalid> {
    let mut reservations: Vec<Reservation> = Vec::new();
    for (j, r) in list.into_iter().flatten().enumerate() {
        let rp = format!("{path}[{j}]");
        let mut res = reservation(r, &rp, prefix, defs, w)?;
        res.options = std::mem::take(&mut res.options).in_context(context(res.ip_address));
        // Kea's texts (`CfgHosts::add4`), which operators and tools grep.
        if reservations.iter().any(|o| o.id == res.id) {
            let hex = crate::leases::model::colon_hex;
            let what = match &res.id {
                HostId::HwAddress(b) => format!("failed to add new host using the HW address '{}'", hex(b)),
                HostId::Duid(b) => format!("failed to add new host using the DUID '{}'", hex(b)),
                other => format!("failed to add new host using the {} '{}'", id_key(other.kind()), hex(other.bytes())),
            };
            return Err(Invalid::new(
                format!("{rp}.{}", id_key(res.id.kind())),
                format!("{what} to the IPv4 subnet id '{subnet_id}' as this host has already been added"),
            ));
        }
        if let Some(a) = res.ip_address
            && reservations.iter().any(|o| o.ip_address == Some(a))
        {
            let hex = crate::leases::model::colon_hex;
            let (hw, duid) = match &res.id {
                HostId::HwAddress(b) => (hex(b), "(null)".to_owned()),
                HostId::Duid(b) => ("(null)".to_owned(), hex(b)),
                _ => ("(null)".to_owned(), "(null)".to_owned()),
            };
            return Err(Invalid::new(
                format!("{rp}.ip-address"),
                format!(
                    "failed to add new host using the HW address '{hw} and DUID '{duid}' to the IPv4 subnet id \
                     '{subnet_id}' for the address {a}: There's already a reservation for this address"
                ),
            ));
        }
        reservations.push(res);
    }
    Ok(reservations)
}

/// The JSON key of an identifier type.
fn id_key(t: HostIdentifierType) -> &'static str {
    match t {
        HostIdentifierType::HwAddress => "hw-address",
        HostIdentifierType::ClientId => "client-id",
        HostIdentifierType::Duid => "duid",
        HostIdentifierType::CircuitId => "circuit-id",
    }
}

/// One scope's `option-data` list, with the definitions in force.
fn option_list(
    defs: &OptionDefs,
    list: &Option<Vec<wire::OptionData>>,
    path: &str,
    w: &mut Warnings,
) -> Result<OptionSet, Invalid> {
    option_space::scope_options(defs, list.as_deref().unwrap_or_default(), path, w)
}

/// The hook libraries xdhcp provides: lease commands, HA, BOOTP, flex-option.
struct Hooks {
    lease_cmds: bool,
    ha: Option<HaConfig>,
    bootp: bool,
    flex_options: super::flex_option::FlexOptions,
}

fn hooks(list: Option<Vec<wire::HookLibrary>>, path: &str, defs: &OptionDefs, w: &mut Warnings) -> Result<Hooks, Invalid> {
    let mut lease_cmds = false;
    let mut bootp = false;
    let mut flex: Option<super::flex_option::FlexOptions> = None;
    let mut ha: Option<HaConfig> = None;
    for (i, h) in list.unwrap_or_default().into_iter().enumerate() {
        let hp = format!("{path}[{i}]");
        if h.user_context.is_some() {
            w.push((format!("{hp}.user-context"), "ignored".into()));
        }
        let file = Path::new(&h.library).file_name().and_then(|f| f.to_str()).unwrap_or("");
        match file {
            "libdhcp_lease_cmds.so" => {
                if lease_cmds {
                    return Err(Invalid::new(format!("{hp}.library"), "libdhcp_lease_cmds.so is loaded twice"));
                }
                match &h.parameters {
                    None => {}
                    Some(Value::Object(m)) if m.is_empty() => {}
                    Some(_) => {
                        return Err(Invalid::new(
                            format!("{hp}.parameters"),
                            "libdhcp_lease_cmds.so takes no parameters",
                        ));
                    }
                }
                lease_cmds = true;
            }
            "libdhcp_bootp.so" => {
                if bootp {
                    return Err(Invalid::new(format!("{hp}.library"), "libdhcp_bootp.so is loaded twice"));
                }
                if !matches!(&h.parameters, None | Some(Value::Object(_))) {
                    return Err(Invalid::new(format!("{hp}.parameters"), "libdhcp_bootp.so takes no parameters"));
                }
                bootp = true;
            }
            "libdhcp_flex_option.so" => {
                if flex.is_some() {
                    return Err(Invalid::new(format!("{hp}.library"), "libdhcp_flex_option.so is loaded twice"));
                }
                flex = Some(super::flex_option::parse(h.parameters.as_ref(), &format!("{hp}.parameters"), defs)?);
            }
            "libdhcp_ha.so" => {
                if ha.is_some() {
                    return Err(Invalid::new(format!("{hp}.library"), "libdhcp_ha.so is loaded twice"));
                }
                let pp = format!("{hp}.parameters");
                let Some(params) = h.parameters else {
                    return Err(Invalid::new(&hp, "libdhcp_ha.so needs \"parameters\" with \"high-availability\""));
                };
                let wire: ha::WireParameters = serde_path_to_error::deserialize(params).map_err(|e| {
                    let inner = e.path().to_string();
                    let full = if inner == "." {
                        pp.clone()
                    } else if inner.starts_with('[') {
                        format!("{pp}{inner}")
                    } else {
                        format!("{pp}.{inner}")
                    };
                    Invalid::new(full, e.into_inner().to_string())
                })?;
                ha = Some(ha::build(wire, &pp, &mut |p, m| w.push((p, m)))?);
            }
            _ => {
                return Err(Invalid::new(
                    format!("{hp}.library"),
                    format!(
                        "{:?}: hook library not supported (xdhcp provides libdhcp_lease_cmds.so, libdhcp_ha.so, libdhcp_bootp.so and libdhcp_flex_option.so)",
                        h.library
                    ),
                ));
            }
        }
    }
    Ok(Hooks { lease_cmds, ha, bootp, flex_options: flex.unwrap_or_default() })
}

fn subnet(
    s: wire::Subnet4,
    path: &str,
    g: &Globals<'_>,
    next_auto_id: &mut u32,
    w: &mut Warnings,
) -> Result<Subnet, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    let prefix = parse_cidr(&s.subnet, &at("subnet"), w)?;
    let id = match s.id {
        Some(0) | None => {
            let id = *next_auto_id;
            *next_auto_id += 1;
            w.push((
                path.to_owned(),
                format!("no subnet id; assigned {id} as Kea 2.2 would — set ids explicitly so HA peers agree"),
            ));
            SubnetId(id)
        }
        Some(id) => SubnetId(id),
    };
    let keys = LifetimeKeys {
        valid: s.valid_lifetime,
        min_valid: s.min_valid_lifetime,
        max_valid: s.max_valid_lifetime,
        renew: s.renew_timer,
        rebind: s.rebind_timer,
        calculate_tee_times: s.calculate_tee_times,
        t1_percent: s.t1_percent,
        t2_percent: s.t2_percent,
    };
    let lifetimes = keys.inherit(&g.keys).resolve(path)?;
    let boot = boot_params(&g.boot, &s.next_server, &s.server_hostname, &s.boot_file_name, path)?;
    let reservation_flags = reservation_flags(
        g.flags,
        &s.reservation_mode,
        s.reservations_global,
        s.reservations_in_subnet,
        s.reservations_out_of_pool,
        path,
        w,
    )?;

    // A subnet's own relay addresses, else its shared network's (Kea's
    // selectSubnet: a subnet with relays must match them).
    let mut relay_addresses = relay_list(s.relay, &at("relay"))?;
    if relay_addresses.is_empty()
        && let Some(n) = &g.network
    {
        relay_addresses = n.relay_addresses.clone();
    }
    let cache = lease_cache(g.cache, s.cache_threshold, s.cache_max_age, path)?;
    let names = client_names::inherit(&g.names, name_keys!(s), path)?;

    let interface = match s.interface {
        Some(i) if i.is_empty() => None,
        Some(i) => {
            if !g.interfaces.serves(&i) {
                w.push((
                    at("interface"),
                    format!("{i:?} is not in interfaces-config.interfaces; the subnet is not served there"),
                ));
            }
            Some(i)
        }
        None => None,
    };
    let interface_inherited = g.network.as_ref().and_then(|n| n.interface.clone());

    let own_options = option_list(g.option_defs, &s.option_data, &at("option-data"), w)?;
    let options = g.options.merged_with(&own_options);
    let classes = SubnetClasses {
        client_class: s.client_class.clone().filter(|c| !c.is_empty()),
        network_client_class: g.network.as_ref().and_then(|n| n.client_class.clone()),
        required: g.network.iter().flat_map(|n| n.required.iter().cloned()).chain(s.require_client_classes.iter().flatten().cloned()).collect(),
        scoped_options: g.network.as_ref().map_or_else(OptionSet::new, |n| n.own_options.clone()).merged_with(&own_options),
    };

    let mut pools: Vec<(usize, Pool)> = Vec::new();
    for (j, p) in s.pools.into_iter().flatten().enumerate() {
        let pp = format!("{path}.pools[{j}]");
        if p.user_context.is_some() {
            w.push((format!("{pp}.user-context"), "ignored".into()));
        }
        let (start, end) =
            parse_pool(&p.pool).map_err(|m| Invalid::new(format!("{pp}.pool"), format!("{:?}: {m}", p.pool)))?;
        let pool_own = option_list(g.option_defs, &p.option_data, &format!("{pp}.option-data"), w)?;
        let pool_options = options.merged_with(&pool_own);
        let mut pool = Pool::new(start, end, &prefix, pool_options).map_err(|m| Invalid::new(format!("{pp}.pool"), m))?;
        pool.own_options = pool_own;
        pool.client_class = p.client_class.clone().filter(|c| !c.is_empty());
        pool.required_classes = p.require_client_classes.clone().unwrap_or_default();
        if let Some((k, other)) = pools.iter().find(|(_, o)| o.start <= pool.end && pool.start <= o.end) {
            // Kea's words (Subnet::addPool), then which pool it overlaps.
            return Err(Invalid::new(
                format!("{pp}.pool"),
                format!(
                    "a pool of type V4, with the following address range: {start}-{end} overlaps with an existing \
                     pool in the subnet: {prefix} to which it is being added (pools[{k}]: {}-{})",
                    other.start, other.end
                ),
            ));
        }
        pools.push((j, pool));
    }
    let mut pools: Vec<Pool> = pools.into_iter().map(|(_, p)| p).collect();
    pools.sort_by_key(|p| p.start);

    let in_pool_or_subnet = |a: Option<Ipv4Addr>| a.and_then(|a| pools.iter().find(|p| p.contains(a))).map_or(&options, |p| &p.options);
    let reservations =
        reservation_list(s.reservations, &at("reservations"), Some(&prefix), id.0, g.option_defs, in_pool_or_subnet, w)?;

    let mut context = SubnetContext::default();
    context.ha_server_name = g.network.as_ref().and_then(|n| n.ha_server_name.clone());
    if let Some(mut uc) = s.user_context {
        match uc.remove("ha-server-name") {
            None => {}
            Some(Value::String(n)) if !n.is_empty() => context.ha_server_name = Some(n),
            Some(_) => return Err(Invalid::new(at("user-context.ha-server-name"), "must be a non-empty string")),
        }
        context.other = uc;
    }
    let ha_relationship = match g.ha {
        None => {
            if context.ha_server_name.is_some() {
                w.push((at("user-context.ha-server-name"), "ignored: libdhcp_ha.so is not loaded".into()));
            }
            None
        }
        Some(ha) if !ha.is_hub() => {
            if let Some(n) = &context.ha_server_name
                && ha.relationship_of_peer(n).is_none()
            {
                w.push((
                    at("user-context.ha-server-name"),
                    format!("{n:?} is not an HA peer; with one relationship it is not needed and is ignored"),
                ));
            }
            Some(0)
        }
        Some(ha) => match &context.ha_server_name {
            Some(n) => Some(ha.relationship_of_peer(n).ok_or_else(|| {
                Invalid::new(
                    at("user-context.ha-server-name"),
                    format!("{n:?} is not a peer of any of this server's HA relationships"),
                )
            })?),
            None => {
                w.push((
                    path.to_owned(),
                    "no user-context.ha-server-name: with several HA relationships this subnet belongs to none and its packets are dropped (as in Kea)".into(),
                ));
                None
            }
        },
    };

    Ok(Subnet {
        id,
        prefix,
        pools,
        reservations,
        options,
        relay_addresses,
        interface: interface.or(interface_inherited),
        lifetimes,
        authoritative: s.authoritative.unwrap_or(g.authoritative),
        match_client_id: s.match_client_id.unwrap_or(g.match_client_id),
        store_extended_info: s.store_extended_info.unwrap_or(g.store_extended_info),
        boot,
        reservation_flags,
        cache,
        names,
        context,
        ha_relationship,
        shared_network: g.network.as_ref().map(|n| n.index),
        classes,
    })
}

/// `a.b.c.d/len`; host bits are cleared with a warning (Kea masks them too).
fn parse_cidr(s: &str, path: &str, w: &mut Warnings) -> Result<Cidr, Invalid> {
    let bad = |why: &str| Invalid::new(path, format!("{s:?}: {why}"));
    let (a, l) = s.trim().split_once('/').ok_or_else(|| bad("expected a prefix like 192.0.2.0/24"))?;
    let addr: Ipv4Addr = a.trim().parse().map_err(|_| bad("not an IPv4 address"))?;
    let len: u8 =
        l.trim().parse().ok().filter(|l| (1..=32).contains(l)).ok_or_else(|| bad("prefix length must be 1 to 32"))?;
    let cidr = Cidr::new(addr, len).ok_or_else(|| bad("prefix length must be 1 to 32"))?;
    if cidr.network != addr {
        w.push((path.to_owned(), format!("{s:?} has host bits set; using {cidr}")));
    }
    Ok(cidr)
}

/// `a - b` or `a/len`.
fn parse_pool(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let ip = |t: &str| t.trim().parse::<Ipv4Addr>().map_err(|_| format!("{:?} is not an IPv4 address", t.trim()));
    if let Some((a, l)) = s.split_once('/') {
        let addr = ip(a)?;
        let len: u8 = l.trim().parse().ok().filter(|l| (1..=32).contains(l)).ok_or("prefix length must be 1 to 32")?;
        let c = Cidr::new(addr, len).ok_or("prefix length must be 1 to 32")?;
        Ok((c.network(), c.last()))
    } else if let Some((a, b)) = s.split_once('-') {
        Ok((ip(a)?, ip(b)?))
    } else {
        Err("expected \"first-last\" or \"prefix/len\"".into())
    }
}

fn reservation(
    r: wire::Reservation,
    path: &str,
    prefix: Option<&Cidr>,
    defs: &OptionDefs,
    w: &mut Warnings,
) -> Result<Reservation, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    if r.user_context.is_some() {
        w.push((at("user-context"), "ignored".into()));
    }
    let decode = |s: &str, key: &str| {
        options::quoted_literal(s).or_else(|| options::decode_formatted_hex(s)).ok_or_else(|| {
            Invalid::new(at(key), format!("{s:?} is not hexadecimal bytes (colons optional) or a 'quoted string'"))
        })
    };
    if r.flex_id.is_some() {
        return Err(Invalid::new(at("flex-id"), FLEX_ID_UNSUPPORTED));
    }
    let given: Vec<(&str, &String)> = [
        ("hw-address", &r.hw_address),
        ("duid", &r.duid),
        ("circuit-id", &r.circuit_id),
        ("client-id", &r.client_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let id = match given[..] {
        [] => return Err(Invalid::new(path, "a reservation needs one of hw-address, duid, circuit-id, client-id")),
        [(key, v)] => {
            let b = decode(v, key)?;
            // Kea's limits per identifier type.
            let (min, max, what) = match key {
                "hw-address" => (1, 20, "a hardware address"),
                "client-id" => (2, 128, "a client identifier"),
                _ => (1, 128, key),
            };
            if b.len() < min || b.len() > max {
                return Err(Invalid::new(at(key), format!("{v:?}: {what} has {min} to {max} bytes")));
            }
            match key {
                "hw-address" => HostId::HwAddress(b),
                "client-id" => HostId::ClientId(b),
                "duid" => HostId::Duid(b),
                _ => HostId::CircuitId(b),
            }
        }
        [(a, _), (b, _), ..] => return Err(Invalid::new(path, format!("give one identifier, not both {a} and {b}"))),
    };
    let ip_address = match &r.ip_address {
        None => None,
        Some(a) => {
            let addr = parse_ipv4(a, &at("ip-address"))?;
            if addr.is_unspecified() {
                None
            } else {
                if let Some(prefix) = prefix
                    && !prefix.contains(addr)
                {
                    return Err(Invalid::new(at("ip-address"), format!("{addr} is not inside subnet {prefix}")));
                }
                Some(addr)
            }
        }
    };
    let hostname = match r.hostname {
        Some(h) if h.is_empty() => None,
        Some(h) => {
            if h.len() > 255 {
                return Err(Invalid::new(at("hostname"), "must be at most 255 bytes long"));
            }
            Some(h)
        }
        None => None,
    };
    let options = option_list(defs, &r.option_data, &at("option-data"), w)?;
    let next_server =
        r.next_server.as_deref().filter(|s| !s.is_empty()).map(|s| parse_ipv4(s, &at("next-server"))).transpose()?;
    let server_hostname = r.server_hostname.as_deref().map(|s| bounded(s, 63, &at("server-hostname"))).transpose()?;
    let boot_file_name = r.boot_file_name.as_deref().map(|s| bounded(s, 127, &at("boot-file-name"))).transpose()?;
    let client_classes = r.client_classes.unwrap_or_default();
    Ok(Reservation { id, ip_address, hostname, options, next_server, server_hostname, boot_file_name, client_classes })
}

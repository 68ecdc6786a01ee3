//! Kea `Dhcp4` configuration: parsing, validation and the runtime types the server uses.
//!
//! xdhcp replaces or pairs with ISC Kea, so operators hand it their existing
//! `kea-dhcp4.conf` unchanged. This module reads that file and either returns
//! a [`Config`] in which every value has been checked and pre-computed
//! (option data already encoded to bytes, pools known to lie inside their
//! subnet, HA peers known to be consistent), or refuses it — before anything
//! starts — with an error naming the file, `line:column` and JSON path:
//!
//! ```text
//! /etc/kea/kea-dhcp4.conf:41:9: Dhcp4.subnet4[2].pools[0].pool: "10.0.0.5-10.0.0.1": start is after end
//! ```
//!
//! # Layout
//!
//! - `comments.rs`: Kea's `#`, `//`, `/* */` comments and `<?include "file"?>`
//!   (relative to the including file, then the working directory), with a
//!   map from the resulting JSON back to every file, line and column.
//! - `spans.rs`: positions of keys and values by JSON path.
//! - `wire.rs`: stage 1, serde structs mirroring Kea's keys, denying unknown
//!   ones (`serde_path_to_error` supplies the path of whatever fails).
//! - `validate.rs`: stage 2, wire structs → the validated types below,
//!   including Kea's global → subnet → pool inheritance.
//! - `option_def.rs`: option definitions, Kea's tables and `option-def`.
//! - `option_value.rs`: an option's `data` (text or hex) → bytes, Kea's checks.
//! - `option_space.rs`: one scope's `option-data` → its options, sub-option
//!   spaces encapsulated as Kea does per scope.
//! - `options.rs`: the encoded options of a scope ([`OptionSet`]), merging
//!   across scopes and the vendor option (125).
//! - `ha.rs`: `libdhcp_ha.so` parameters and their validation.
//! - `loggers.rs`: `Dhcp4.loggers` as Kea reads it (the `logging` module
//!   writes them).
//! - `lease_db.rs`: `lease-database`, memfile or PostgreSQL with Kea's keys.
//! - `lifetimes.rs`: lease time and T1/T2 exactly as Kea 2.2 computes them.
//! - `client_classes.rs`: `client-classes`, their tests parsed once into
//!   [`crate::classify::expr`] trees.
//!
//! # Unknown and ignored keys
//!
//! A key xdhcp does not support is an error naming its path: ignoring it
//! would silently change behaviour the operator configured. Only these
//! harmless keys are accepted and ignored, each producing a [`Warning`] in
//! [`Config::warnings`]:
//!
//! - `Dhcp4.dhcp-queue-control` (Kea's packet processing tuning),
//! - `Dhcp4.sanity-checks` (xdhcp's lease store applies its own checks),
//! - `Dhcp4.dhcp-ddns` unless it enables updates (DNS updates are not
//!   supported, so `"enable-updates": true` is an error),
//! - `user-context` wherever it is not used (it is kept on subnets, whose
//!   `ha-server-name` ties them to an HA relationship).
//!
//! `comment` is accepted anywhere without a warning: it is documentation by
//! definition. The HA hook's own keys follow the same rule.
//!
//! # Deliberate differences from Kea
//!
//! Kea-valid files that xdhcp still refuses, because the alternative would be
//! silently wrong: lease backends other than memfile and postgresql; hook libraries other
//! than `libdhcp_lease_cmds.so`, `libdhcp_ha.so` and `libdhcp_bootp.so`; an IPv6 address where
//! an IPv4 one is expected, or an IPv6 prefix longer than 128 bits, in
//! option data; a key written twice in one JSON object (Kea keeps the last
//! one in free-form maps); peer URLs without an
//! explicit port. Kea reads these leniently; xdhcp names the exact key
//! instead. `dhcp-user/tests/kea_option_configs.rs` holds option
//! configurations to `kea-dhcp4 -t`'s verdict.
//!
//! Kea quirks kept for compatibility, each with a warning: the same option
//! twice in one `option-data` list (the last is sent, as Kea does);
//! several values for a single-valued option (the first is sent); options
//! the server sets itself (sent only where it sets none); sub-options no
//! option of their scope carries (never sent); a subnet
//! without `id` is numbered 1, 2, … in file order like Kea 2.2 does;
//! `reservation-mode` is read as the equivalent `reservations-*` flags; a
//! subnet prefix with host bits set is masked.

#![warn(missing_docs)]

pub mod client_classes;
pub mod client_names;
mod comments;
mod error;
pub mod flex_option;
pub mod ha;
pub mod lease_db;
mod lifetimes;
pub mod loggers;
pub mod multi_threading;
pub mod option_def;
mod option_space;
mod option_value;
pub mod options;
mod spans;
mod validate;
mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use client_classes::ClientClass;
pub use comments::MAX_INCLUDE_DEPTH;
pub(crate) use comments::expand as expand_comments;
pub use error::{ConfigError, Location, Warning};
pub use ha::{HaConfig, HaMode, HaRelationship, Peer, PeerUrl, Role, Secret};
pub use lease_db::{DEFAULT_LEASE_FILE, DbTls, LeaseDatabase, Memfile, OnFail, Postgresql};
pub use lifetimes::{LeaseTimes, Lifetimes};
pub use options::{DhcpOption, OptionSet};

use error::Invalid;
use spans::SpanIndex;

/// Reads and validates the Kea configuration file at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        file: name.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let line = prefix.matches('\n').count() as u32 + 1;
        let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        ConfigError::Syntax {
            at: Location {
                file: name.clone(),
                line: Some(line),
                column: Some(column),
            },
            message: "file is not valid UTF-8".into(),
        }
    })?;
    parse(&text, &name)
}

/// Only `Dhcp4.loggers` of the file at `path`, for a configuration the
/// daemon refuses: Kea sets up its loggers before it applies the rest, so the
/// reason for the refusal lands where the operator's logs go. `None` when
/// the file, its JSON or the loggers themselves are unusable.
pub fn load_loggers(path: impl AsRef<Path>) -> Option<Vec<loggers::Logger>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).ok()?;
    let ex = comments::expand(&text, &path.display().to_string()).ok()?;
    let root: serde_json::Value = serde_json::from_str(&ex.text).ok()?;
    let list = root.get("Dhcp4")?.get("loggers")?.clone();
    let list: Vec<loggers::WireLogger> = serde_json::from_value(list).ok()?;
    loggers::parse(list, "Dhcp4.loggers", &mut Vec::new()).ok()
}

/// Validates configuration `text`. `source_name` is used in messages and, if
/// it is a path, as the base for relative includes.
pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
    let ex = comments::expand(text, source_name)?;
    let mut de = serde_json::Deserializer::from_str(&ex.text);
    let root: wire::Root = match serde_path_to_error::deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(serde_failure(&ex, &path, inner));
        }
    };
    if let Err(e) = de.end() {
        return Err(serde_failure(&ex, ".", e));
    }
    let spans = SpanIndex::build(&ex.text);
    if let Some((path, offset)) = spans.duplicate() {
        let key = path.rsplit(['.', ']']).next().unwrap_or(path).to_owned();
        return Err(ConfigError::Invalid {
            at: ex.location(offset),
            path: path.to_owned(),
            message: format!("duplicate key \"{key}\""),
        });
    }
    let validate::Validated(mut config, warnings) =
        validate::Validated::try_from(root).map_err(|inv| invalid_to_error(&ex, &spans, inv))?;
    config.warnings = warnings
        .into_iter()
        .map(|(path, message)| {
            let at = spans
                .key(&path)
                .map_or_else(|| Location::file_only(ex.main_file()), |o| ex.location(o));
            Warning { at, path, message }
        })
        .collect();
    config.source = source_name.to_owned();
    Ok(config)
}

/// Turns a serde_json error at JSON `path` into a located `ConfigError`.
fn serde_failure(ex: &comments::Expanded, path: &str, e: serde_json::Error) -> ConfigError {
    let at_line_col = ex.location(ex.offset_of_line_col(e.line(), e.column()));
    let mut message = e.to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    match e.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ConfigError::Syntax {
            at: at_line_col,
            message,
        },
        serde_json::error::Category::Data => {
            // Prefer the start of the value (or key) that failed over where
            // serde_json noticed; the index needs valid JSON, which a data
            // error implies.
            let spans = SpanIndex::build(&ex.text);
            let path = if path == "." {
                String::new()
            } else {
                path.to_owned()
            };
            let inv = Invalid::new(path, message);
            match invalid_to_error(ex, &spans, inv) {
                ConfigError::Invalid { at, path, message } if at.line.is_none() => {
                    ConfigError::Invalid {
                        at: at_line_col,
                        path,
                        message,
                    }
                }
                other => other,
            }
        }
    }
}

/// Locates a stage-2 error; serde's "unknown field" becomes `UnknownKey`.
fn invalid_to_error(ex: &comments::Expanded, spans: &SpanIndex, inv: Invalid) -> ConfigError {
    let locate = |o: Option<usize>| {
        o.map_or_else(|| Location::file_only(ex.main_file()), |o| ex.location(o))
    };
    if let Some(rest) = inv.message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default().to_owned();
        return ConfigError::UnknownKey {
            at: locate(spans.key(&inv.path)),
            path: inv.path,
            key,
        };
    }
    let path = if inv.path.is_empty() {
        "(top level)".to_owned()
    } else {
        inv.path
    };
    ConfigError::Invalid {
        at: locate(spans.value(&path)),
        path,
        message: inv.message,
    }
}

/// A validated server configuration. Built only by [`load`] and [`parse`].
#[derive(Debug, Clone)]
pub struct Config {
    source: String,
    interfaces: InterfacesConfig,
    lease_database: LeaseDatabase,
    global_lifetimes: Lifetimes,
    global_boot: BootParams,
    authoritative: bool,
    match_client_id: bool,
    echo_client_id: bool,
    decline_probation_period: u32,
    expired_leases: ExpiredLeases,
    host_reservation_identifiers: Vec<HostIdentifierType>,
    early_global_reservations_lookup: bool,
    options: OptionSet,
    subnets: Vec<Subnet>,
    shared_networks: Vec<SharedNetwork>,
    global_reservations: Vec<Reservation>,
    client_classes: Vec<ClientClass>,
    lease_cmds: bool,
    bootp: bool,
    flex_options: flex_option::FlexOptions,
    ha: Option<HaConfig>,
    loggers: Vec<loggers::Logger>,
    control_socket: Option<ControlSocket>,
    multi_threading: multi_threading::MultiThreading,
    server_tag: String,
    /// Accepted-but-ignored keys and reproduced Kea quirks, each with its
    /// file, position and JSON path, for the daemon to log at start-up.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// The file (or source name) this was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// `loggers`, for the `logging` module to write Kea's log lines where
    /// the operator's Kea wrote them.
    pub fn loggers(&self) -> &[loggers::Logger] {
        &self.loggers
    }
    /// `control-socket`: where Kea's command channel listens.
    pub fn control_socket(&self) -> Option<&ControlSocket> {
        self.control_socket.as_ref()
    }
    /// `multi-threading`: a packet queue and a pool of workers, or neither.
    pub fn multi_threading(&self) -> multi_threading::MultiThreading {
        self.multi_threading
    }
    /// `server-tag` (empty when unset), for `server-tag-get`.
    pub fn server_tag(&self) -> &str {
        &self.server_tag
    }
    /// `interfaces-config`.
    pub fn interfaces(&self) -> &InterfacesConfig {
        &self.interfaces
    }
    /// `lease-database`: the memfile or PostgreSQL.
    pub fn lease_database(&self) -> &LeaseDatabase {
        &self.lease_database
    }
    /// Global lifetime settings (subnets already inherit them).
    pub fn global_lifetimes(&self) -> &Lifetimes {
        &self.global_lifetimes
    }
    /// Global `next-server`, `server-hostname`, `boot-file-name`.
    pub fn global_boot(&self) -> &BootParams {
        &self.global_boot
    }
    /// Global `authoritative` (default false).
    pub fn authoritative(&self) -> bool {
        self.authoritative
    }
    /// Global `match-client-id` (default true).
    pub fn match_client_id(&self) -> bool {
        self.match_client_id
    }
    /// `echo-client-id` (default true).
    pub fn echo_client_id(&self) -> bool {
        self.echo_client_id
    }
    /// `decline-probation-period` in seconds (default 86400).
    pub fn decline_probation_period(&self) -> u32 {
        self.decline_probation_period
    }
    /// `expired-leases-processing`, Kea's defaults filled in.
    pub fn expired_leases(&self) -> ExpiredLeases {
        self.expired_leases
    }
    /// `early-global-reservations-lookup`: global reservations are looked
    /// up before subnet selection (their classes then select the subnet).
    pub fn early_global_reservations_lookup(&self) -> bool {
        self.early_global_reservations_lookup
    }
    /// `host-reservation-identifiers`, in lookup order.
    pub fn host_reservation_identifiers(&self) -> &[HostIdentifierType] {
        &self.host_reservation_identifiers
    }
    /// Global `option-data`.
    pub fn options(&self) -> &OptionSet {
        &self.options
    }
    /// All subnets: the top-level `subnet4` list in order, then each
    /// shared network's (Kea's order for selection and auto-numbering).
    pub fn subnets(&self) -> &[Subnet] {
        &self.subnets
    }
    /// Global `reservations` (subnets with `reservations-global` use them).
    pub fn global_reservations(&self) -> &[Reservation] {
        &self.global_reservations
    }
    /// `client-classes`, in configuration order (Kea's evaluation order).
    pub fn client_classes(&self) -> &[ClientClass] {
        &self.client_classes
    }
    /// `shared-networks`, in configuration order.
    pub fn shared_networks(&self) -> &[SharedNetwork] {
        &self.shared_networks
    }
    /// Whether `libdhcp_bootp.so` is loaded: BOOTP clients are answered.
    pub fn bootp(&self) -> bool {
        self.bootp
    }
    /// `libdhcp_flex_option.so`: reply options added, replaced or removed
    /// by expressions (empty when the hook is not loaded).
    pub fn flex_options(&self) -> &flex_option::FlexOptions {
        &self.flex_options
    }
    /// Whether `libdhcp_lease_cmds.so` is loaded (lease commands served).
    pub fn lease_cmds(&self) -> bool {
        self.lease_cmds
    }
    /// HA settings, when `libdhcp_ha.so` is loaded.
    pub fn ha(&self) -> Option<&HaConfig> {
        self.ha.as_ref()
    }
    /// The subnet with `id`.
    pub fn subnet(&self, id: SubnetId) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.id == id)
    }

    /// The subnet with the lowest id whose prefix contains `addr` (subnets
    /// may overlap, as in Kea, which then picks the lowest id).
    pub fn subnet_containing(&self, addr: Ipv4Addr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.prefix.contains(addr))
    }

    /// The subnet explicitly bound to interface `name` by its `interface`
    /// key (the first, if several are).
    pub fn subnet_for_interface(&self, name: &str) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(name))
    }

    /// For a directly connected client: the subnet containing the address of
    /// the interface the packet arrived on. Use after
    /// [`Config::subnet_for_interface`] found no explicit binding.
    pub fn subnet_for_interface_address(&self, iface_addr: Ipv4Addr) -> Option<&Subnet> {
        self.subnet_containing(iface_addr)
    }

    /// For a relayed packet: the subnet listing `giaddr` in its relay
    /// `ip-addresses`, else the subnet containing `giaddr` (Kea's order).
    pub fn subnet_for_relay(&self, giaddr: Ipv4Addr) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.relay_addresses.contains(&giaddr))
            .or_else(|| self.subnet_containing(giaddr))
    }
}

/// A subnet identifier (Kea's `id`), the same on all HA peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubnetId(pub u32);

impl fmt::Display for SubnetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An IPv4 prefix with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: Ipv4Addr,
    len: u8,
}

impl Cidr {
    /// The prefix of `addr`/`len` (host bits cleared); `len` ≤ 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        (len <= 32).then(|| Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }
    /// Network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }
    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }
    /// Netmask, e.g. 255.255.254.0 for /23.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.len))
    }
    /// Last address (the broadcast address for prefixes shorter than /31).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.len))
    }
    /// Whether `addr` is inside.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == u32::from(self.network)
    }
    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// A dynamic address range: `start ≤ end`, both inside the owning subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    start: Ipv4Addr,
    end: Ipv4Addr,
    options: OptionSet,
    own_options: OptionSet,
    client_class: Option<String>,
    required_classes: Vec<String>,
}

impl Pool {
    /// A pool of `start..=end` inside `subnet`, with its effective options.
    pub fn new(
        start: Ipv4Addr,
        end: Ipv4Addr,
        subnet: &Cidr,
        options: OptionSet,
    ) -> Result<Self, String> {
        if start > end {
            return Err(format!("{start}-{end}: start is after end"));
        }
        if !subnet.contains(start) || !subnet.contains(end) {
            // Kea's words (Subnet::addPool), which operators and tools grep.
            return Err(format!(
                "a pool of type V4, with the following address range: {start}-{end} does not match the prefix of a \
                 subnet: {subnet} to which it is being added"
            ));
        }
        Ok(Pool {
            start,
            end,
            options,
            own_options: OptionSet::new(),
            client_class: None,
            required_classes: Vec::new(),
        })
    }
    /// First address.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }
    /// Last address.
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }
    /// Whether `addr` is in the pool.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.start <= addr && addr <= self.end
    }
    /// Number of addresses.
    pub fn size(&self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }
    /// Effective options for addresses in this pool (global, subnet, pool).
    pub fn options(&self) -> &OptionSet {
        &self.options
    }
    /// The pool's own `option-data` (class options rank below it).
    pub fn own_options(&self) -> &OptionSet {
        &self.own_options
    }
    /// `client-class`: only members of it get addresses here.
    pub fn client_class(&self) -> Option<&str> {
        self.client_class.as_deref()
    }
    /// `require-client-classes`.
    pub fn required_classes(&self) -> &[String] {
        &self.required_classes
    }
}

/// How a reservation identifies its client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostId {
    /// `hw-address`: the client's hardware address (1–20 bytes).
    HwAddress(Vec<u8>),
    /// `client-id`: the client identifier option's contents (2–128 bytes).
    ClientId(Vec<u8>),
    /// `duid`: the DUID inside an RFC 4361 client identifier (type 255,
    /// IAID, DUID), 1–128 bytes.
    Duid(Vec<u8>),
    /// `circuit-id`: the relay agent's circuit-id sub-option (82.1).
    CircuitId(Vec<u8>),
}

impl HostId {
    /// Kea's name for the identifier type.
    pub fn kind(&self) -> HostIdentifierType {
        match self {
            HostId::HwAddress(_) => HostIdentifierType::HwAddress,
            HostId::ClientId(_) => HostIdentifierType::ClientId,
            HostId::Duid(_) => HostIdentifierType::Duid,
            HostId::CircuitId(_) => HostIdentifierType::CircuitId,
        }
    }
    /// The identifier's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            HostId::HwAddress(b) | HostId::ClientId(b) | HostId::Duid(b) | HostId::CircuitId(b) => b,
        }
    }
}

/// A host reservation inside a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    id: HostId,
    ip_address: Option<Ipv4Addr>,
    hostname: Option<String>,
    options: OptionSet,
    next_server: Option<Ipv4Addr>,
    server_hostname: Option<String>,
    boot_file_name: Option<String>,
    client_classes: Vec<String>,
}

impl Reservation {
    /// `client-classes`: classes the client joins when this reservation
    /// is found.
    pub fn client_classes(&self) -> &[String] {
        &self.client_classes
    }
    /// The client identifier.
    pub fn id(&self) -> &HostId {
        &self.id
    }
    /// Reserved address (inside the subnet), if any.
    pub fn ip_address(&self) -> Option<Ipv4Addr> {
        self.ip_address
    }
    /// Reserved host name, if any.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }
    /// The reservation's own options (most specific level).
    pub fn options(&self) -> &OptionSet {
        &self.options
    }
    /// Reservation-specific `next-server`.
    pub fn next_server(&self) -> Option<Ipv4Addr> {
        self.next_server
    }
    /// Reservation-specific `server-hostname`.
    pub fn server_hostname(&self) -> Option<&str> {
        self.server_hostname.as_deref()
    }
    /// Reservation-specific `boot-file-name`.
    pub fn boot_file_name(&self) -> Option<&str> {
        self.boot_file_name.as_deref()
    }
}

/// `next-server` (siaddr), `server-hostname` (sname), `boot-file-name` (file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    /// siaddr; 0.0.0.0 when unset.
    pub next_server: Ipv4Addr,
    /// sname (≤ 63 bytes); empty when unset.
    pub server_hostname: String,
    /// file (≤ 127 bytes); empty when unset.
    pub boot_file_name: String,
}

/// Where reservations are looked up (Kea's `reservations-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationFlags {
    /// `reservations-global` (default false).
    pub global: bool,
    /// `reservations-in-subnet` (default true).
    pub in_subnet: bool,
    /// `reservations-out-of-pool` (default false).
    pub out_of_pool: bool,
}

/// `expired-leases-processing`: when expired leases are reclaimed and
/// reclaimed ones removed. Seconds unless named otherwise; 0 turns the
/// matching timer off (Kea's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredLeases {
    /// Between two reclamation runs.
    pub reclaim_timer_wait_time: u32,
    /// Between two removals of reclaimed leases.
    pub flush_reclaimed_timer_wait_time: u32,
    /// How long a reclaimed lease is kept (0: removed when reclaimed).
    pub hold_reclaimed_time: u32,
    /// Most leases reclaimed in one run (0: no limit).
    pub max_reclaim_leases: u32,
    /// Longest run, milliseconds (0: no limit).
    pub max_reclaim_time: u32,
    /// Runs that may leave leases behind before a warning (0: never warn).
    pub unwarned_reclaim_cycles: u32,
}

impl Default for ExpiredLeases {
    /// Kea 2.2's defaults.
    fn default() -> Self {
        ExpiredLeases {
            reclaim_timer_wait_time: 10,
            flush_reclaimed_timer_wait_time: 25,
            hold_reclaimed_time: 3600,
            max_reclaim_leases: 100,
            max_reclaim_time: 250,
            unwarned_reclaim_cycles: 5,
        }
    }
}

/// Kea's lease caching (`cache-threshold`, `cache-max-age`): a renewal
/// early in a lease's life gets the lease as it stands, without a write.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LeaseCache {
    /// Fraction of the valid lifetime, strictly between 0 and 1.
    pub threshold: Option<f64>,
    /// Seconds.
    pub max_age: Option<u32>,
}

/// A `shared-networks` entry: subnets on one link. Its parameters are
/// already inherited by its subnets; what stays here is what selection
/// and allocation need to treat the subnets as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedNetwork {
    /// `name`, unique.
    pub name: String,
    /// The network's own `interface`, if set.
    pub interface: Option<String>,
    /// Its subnets' ids, in ascending order (Kea's allocation order).
    pub subnets: Vec<SubnetId>,
}

/// The subnet's `user-context`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubnetContext {
    /// `ha-server-name`: ties the subnet to an HA relationship.
    pub ha_server_name: Option<String>,
    /// Everything else, as written.
    pub other: Map<String, Value>,
}

/// A validated `subnet4` entry, with global settings already inherited.
#[derive(Debug, Clone)]
pub struct Subnet {
    id: SubnetId,
    prefix: Cidr,
    pools: Vec<Pool>,
    reservations: Vec<Reservation>,
    options: OptionSet,
    relay_addresses: Vec<Ipv4Addr>,
    interface: Option<String>,
    lifetimes: Lifetimes,
    authoritative: bool,
    match_client_id: bool,
    store_extended_info: bool,
    boot: BootParams,
    reservation_flags: ReservationFlags,
    cache: LeaseCache,
    names: client_names::NamePolicy,
    context: SubnetContext,
    ha_relationship: Option<usize>,
    shared_network: Option<usize>,
    classes: SubnetClasses,
}

/// A subnet's client class settings (its own and its shared network's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubnetClasses {
    /// The subnet's `client-class`.
    pub client_class: Option<String>,
    /// Its shared network's `client-class` (checked as well, as Kea does).
    pub network_client_class: Option<String>,
    /// `require-client-classes` of the network, then of the subnet.
    pub required: Vec<String>,
    /// Options set below the global level (network, then subnet): class
    /// options rank between these and the global ones.
    pub scoped_options: OptionSet,
}

impl Subnet {
    /// Client class settings.
    pub fn classes(&self) -> &SubnetClasses {
        &self.classes
    }
    /// Subnet id.
    pub fn id(&self) -> SubnetId {
        self.id
    }
    /// The prefix.
    pub fn prefix(&self) -> Cidr {
        self.prefix
    }
    /// Pools, sorted by start address, never overlapping.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }
    /// Reservations (unique identifiers and addresses).
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }
    /// Effective subnet-level options (global merged with subnet).
    pub fn options(&self) -> &OptionSet {
        &self.options
    }
    /// Relay agent addresses (`relay.ip-addresses`).
    pub fn relay_addresses(&self) -> &[Ipv4Addr] {
        &self.relay_addresses
    }
    /// The `interface` this subnet is bound to, if set.
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }
    /// Effective lifetimes.
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }
    /// Effective `authoritative`.
    pub fn authoritative(&self) -> bool {
        self.authoritative
    }
    /// Effective `match-client-id`.
    pub fn match_client_id(&self) -> bool {
        self.match_client_id
    }
    /// Effective `store-extended-info`: relayed clients' option 82 kept in their leases.
    pub fn store_extended_info(&self) -> bool {
        self.store_extended_info
    }
    /// Effective boot parameters.
    pub fn boot(&self) -> &BootParams {
        &self.boot
    }
    /// Effective reservation lookup flags.
    pub fn reservation_flags(&self) -> ReservationFlags {
        self.reservation_flags
    }
    /// Effective lease caching parameters.
    pub fn lease_cache(&self) -> LeaseCache {
        self.cache
    }
    /// Effective client-name parameters (option 81 processing).
    pub fn name_policy(&self) -> &client_names::NamePolicy {
        &self.names
    }
    /// Index into [`Config::shared_networks`] of this subnet's network.
    pub fn shared_network(&self) -> Option<usize> {
        self.shared_network
    }
    /// `user-context` (with `ha-server-name` pulled out).
    pub fn context(&self) -> &SubnetContext {
        &self.context
    }
    /// `user-context.ha-server-name`, if set.
    pub fn ha_server_name(&self) -> Option<&str> {
        self.context.ha_server_name.as_deref()
    }
    /// Index into [`HaConfig::relationships`] of the relationship serving
    /// this subnet. With one relationship every subnet maps to it; with
    /// several (hub-and-spoke), only subnets naming one do — Kea drops
    /// packets for the others.
    pub fn ha_relationship(&self) -> Option<usize> {
        self.ha_relationship
    }
    /// Whether `addr` is in this subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.prefix.contains(addr)
    }
    /// The pool containing `addr`.
    pub fn pool_containing(&self, addr: Ipv4Addr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(addr))
    }
    /// The reservation for hardware address `hw`.
    pub fn reservation_for_hw(&self, hw: &[u8]) -> Option<&Reservation> {
        self.reservations
            .iter()
            .find(|r| matches!(&r.id, HostId::HwAddress(h) if h == hw))
    }
    /// The reservation for client identifier `cid`.
    pub fn reservation_for_client_id(&self, cid: &[u8]) -> Option<&Reservation> {
        self.reservations
            .iter()
            .find(|r| matches!(&r.id, HostId::ClientId(c) if c == cid))
    }
    /// The reservation of address `addr`.
    pub fn reservation_for_address(&self, addr: Ipv4Addr) -> Option<&Reservation> {
        self.reservations
            .iter()
            .find(|r| r.ip_address == Some(addr))
    }
    /// Options for a client given `addr`: reservation beats pool beats
    /// subnet beats global, per option code (Kea's precedence).
    pub fn options_for(
        &self,
        addr: Option<Ipv4Addr>,
        reservation: Option<&Reservation>,
    ) -> OptionSet {
        let base = addr
            .and_then(|a| self.pool_containing(a))
            .map_or(&self.options, |p| &p.options);
        match reservation {
            Some(r) => base.merged_with(&r.options),
            None => base.clone(),
        }
    }
}

/// One entry of `interfaces-config.interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// `"*"`: every interface.
    All,
    /// `"eth0"` or `"eth0/192.0.2.1"` (listen on that address only).
    Named {
        /// Interface name.
        name: String,
        /// The one address to use on it, if given.
        address: Option<Ipv4Addr>,
    },
}

/// `dhcp-socket-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// `raw` (Kea's default): serves clients without an address.
    Raw,
    /// `udp`: ordinary UDP sockets (relayed traffic only).
    Udp,
}

/// `outbound-interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundInterface {
    /// `same-as-inbound` (default).
    SameAsInbound,
    /// `use-routing`.
    UseRouting,
}

/// `interfaces-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfacesConfig {
    /// Interfaces to serve (empty: none, as in Kea).
    pub interfaces: Vec<InterfaceSpec>,
    /// Socket type (default raw).
    pub socket_type: SocketType,
    /// Outbound interface selection (default same-as-inbound).
    pub outbound_interface: OutboundInterface,
    /// `re-detect` (default true).
    pub re_detect: bool,
}

impl InterfacesConfig {
    /// Whether `name` is to be served.
    pub fn serves(&self, name: &str) -> bool {
        self.interfaces.iter().any(|i| match i {
            InterfaceSpec::All => true,
            InterfaceSpec::Named { name: n, .. } => n == name,
        })
    }
}

/// `control-socket` (`socket-type` `unix`): Kea's command channel, which
/// `kea-ctrl-agent`, `kea-shell` and scripts using `socat` talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSocket {
    /// `socket-name`: the unix socket's path.
    pub socket_name: PathBuf,
}

/// Names allowed in `host-reservation-identifiers` (`flex-id` is refused:
/// it needs Kea's flex_id hook, which xdhcp does not provide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostIdentifierType {
    /// `hw-address`.
    HwAddress,
    /// `duid`.
    Duid,
    /// `circuit-id`.
    CircuitId,
    /// `client-id`.
    ClientId,
}

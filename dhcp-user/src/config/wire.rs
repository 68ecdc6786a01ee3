//! Stage 1: the `Dhcp4` JSON exactly as Kea spells it, as serde structs.
//!
//! Field names are Kea's (kebab-case) and every struct denies unknown
//! fields, so a key xdhcp does not model fails with its JSON path instead of
//! being dropped. Keys xdhcp accepts but ignores are typed as raw JSON here
//! and reported as warnings by stage 2 (`validate.rs`). Nothing here checks
//! values beyond their JSON type; that is stage 2's job.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The whole file: `{ "Dhcp4": { ... } }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// The DHCPv4 server section.
    #[serde(rename = "Dhcp4")]
    pub dhcp4: Dhcp4,
}

/// Kea's `Dhcp4` map.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Dhcp4 {
    pub interfaces_config: Option<InterfacesConfig>,
    pub lease_database: Option<LeaseDatabase>,
    pub valid_lifetime: Option<u32>,
    pub min_valid_lifetime: Option<u32>,
    pub max_valid_lifetime: Option<u32>,
    pub renew_timer: Option<u32>,
    pub rebind_timer: Option<u32>,
    pub calculate_tee_times: Option<bool>,
    pub t1_percent: Option<f64>,
    pub t2_percent: Option<f64>,
    pub authoritative: Option<bool>,
    pub match_client_id: Option<bool>,
    pub decline_probation_period: Option<u32>,
    pub echo_client_id: Option<bool>,
    pub next_server: Option<String>,
    pub boot_file_name: Option<String>,
    pub server_hostname: Option<String>,
    pub option_data: Option<Vec<OptionData>>,
    pub option_def: Option<Vec<OptionDef>>,
    pub subnet4: Option<Vec<Subnet4>>,
    pub shared_networks: Option<Vec<SharedNetwork4>>,
    /// Client classes (`config::client_classes`).
    pub client_classes: Option<Vec<ClientClass>>,
    /// Global host reservations (used where `reservations-global` is on).
    pub reservations: Option<Vec<Reservation>>,
    pub reservation_mode: Option<String>,
    pub reservations_global: Option<bool>,
    /// Look global reservations up before subnet selection, so their
    /// `client-classes` can select the subnet (Kea 2.2).
    pub early_global_reservations_lookup: Option<bool>,
    pub reservations_in_subnet: Option<bool>,
    pub reservations_out_of_pool: Option<bool>,
    pub host_reservation_identifiers: Option<Vec<String>>,
    pub hooks_libraries: Option<Vec<HookLibrary>>,
    pub expired_leases_processing: Option<ExpiredLeasesProcessing>,
    pub cache_threshold: Option<f64>,
    pub cache_max_age: Option<u32>,
    /// Client-name parameters (`config::client_names`).
    pub ddns_replace_client_name: Option<String>,
    pub ddns_generated_prefix: Option<String>,
    pub ddns_qualifying_suffix: Option<String>,
    pub hostname_char_set: Option<String>,
    pub hostname_char_replacement: Option<String>,
    // Only read by DNS updates, which are refused: typed, then unused.
    #[allow(dead_code)]
    pub ddns_send_updates: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_no_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_client_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_update_on_renew: Option<bool>,
    #[allow(dead_code)]
    pub ddns_use_conflict_resolution: Option<bool>,
    pub store_extended_info: Option<bool>,
    pub dhcp4o6_port: Option<u16>,
    /// Kea's loggers, honoured by the `logging` module.
    pub loggers: Option<Vec<super::loggers::WireLogger>>,
    /// Kea's command channel (a unix socket), served by `api::unix`.
    pub control_socket: Option<ControlSocket>,
    /// Shown by `server-tag-get` (Kea's config backend label).
    pub server_tag: Option<String>,

    // Accepted and ignored with a warning (see the module docs of `config`).
    pub multi_threading: Option<Value>,
    pub sanity_checks: Option<Value>,

    pub dhcp_ddns: Option<Value>,
    pub dhcp_queue_control: Option<Value>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// `control-socket`. Both keys optional here, so that stage 2 names the
/// one missing with Kea's wording.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControlSocket {
    pub socket_type: Option<String>,
    pub socket_name: Option<String>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// `interfaces-config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfacesConfig {
    pub interfaces: Option<Vec<String>>,
    pub dhcp_socket_type: Option<String>,
    pub outbound_interface: Option<String>,
    pub re_detect: Option<bool>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// `lease-database`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LeaseDatabase {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub persist: Option<bool>,
    pub lfc_interval: Option<u32>,
    pub max_row_errors: Option<u32>,
    // Database keys (`config::lease_db` checks ranges, so wide types here).
    pub host: Option<String>,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub password: Option<super::ha::Secret>,
    pub connect_timeout: Option<i64>,
    pub max_reconnect_tries: Option<i64>,
    pub reconnect_wait_time: Option<i64>,
    pub on_fail: Option<String>,
    pub trust_anchor: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cipher_list: Option<String>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `option-data` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OptionData {
    pub name: Option<String>,
    pub code: Option<u32>,
    pub space: Option<String>,
    pub csv_format: Option<bool>,
    pub always_send: Option<bool>,
    pub data: Option<String>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `option-def` entry (`Dhcp4.option-def`). Required keys are
/// optional here so that stage 2 names the entry that lacks one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OptionDef {
    pub name: Option<String>,
    pub code: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub array: Option<bool>,
    pub record_types: Option<String>,
    pub space: Option<String>,
    pub encapsulate: Option<String>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `subnet4` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Subnet4 {
    pub id: Option<u32>,
    pub subnet: String,
    pub pools: Option<Vec<Pool>>,
    pub option_data: Option<Vec<OptionData>>,
    pub reservations: Option<Vec<Reservation>>,
    pub relay: Option<Relay>,
    pub interface: Option<String>,
    pub valid_lifetime: Option<u32>,
    pub min_valid_lifetime: Option<u32>,
    pub max_valid_lifetime: Option<u32>,
    pub renew_timer: Option<u32>,
    pub rebind_timer: Option<u32>,
    pub calculate_tee_times: Option<bool>,
    pub t1_percent: Option<f64>,
    pub t2_percent: Option<f64>,
    pub authoritative: Option<bool>,
    pub match_client_id: Option<bool>,
    pub next_server: Option<String>,
    pub boot_file_name: Option<String>,
    pub server_hostname: Option<String>,
    pub reservation_mode: Option<String>,
    pub reservations_global: Option<bool>,
    pub reservations_in_subnet: Option<bool>,
    pub reservations_out_of_pool: Option<bool>,
    pub cache_threshold: Option<f64>,
    pub cache_max_age: Option<u32>,
    /// Client-name parameters (`config::client_names`).
    pub ddns_replace_client_name: Option<String>,
    pub ddns_generated_prefix: Option<String>,
    pub ddns_qualifying_suffix: Option<String>,
    pub hostname_char_set: Option<String>,
    pub hostname_char_replacement: Option<String>,
    // Only read by DNS updates, which are refused: typed, then unused.
    #[allow(dead_code)]
    pub ddns_send_updates: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_no_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_client_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_update_on_renew: Option<bool>,
    #[allow(dead_code)]
    pub ddns_use_conflict_resolution: Option<bool>,
    pub store_extended_info: Option<bool>,
    pub client_class: Option<String>,
    pub require_client_classes: Option<Vec<String>>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `shared-networks` entry: subnets on one link, with the parameters
/// they inherit (Kea's `shared_network_param` list, classes and DNS
/// updates aside).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SharedNetwork4 {
    pub name: Option<String>,
    pub subnet4: Option<Vec<Subnet4>>,
    pub interface: Option<String>,
    pub relay: Option<Relay>,
    pub option_data: Option<Vec<OptionData>>,
    pub valid_lifetime: Option<u32>,
    pub min_valid_lifetime: Option<u32>,
    pub max_valid_lifetime: Option<u32>,
    pub renew_timer: Option<u32>,
    pub rebind_timer: Option<u32>,
    pub calculate_tee_times: Option<bool>,
    pub t1_percent: Option<f64>,
    pub t2_percent: Option<f64>,
    pub authoritative: Option<bool>,
    pub match_client_id: Option<bool>,
    pub next_server: Option<String>,
    pub boot_file_name: Option<String>,
    pub server_hostname: Option<String>,
    pub reservation_mode: Option<String>,
    pub reservations_global: Option<bool>,
    pub reservations_in_subnet: Option<bool>,
    pub reservations_out_of_pool: Option<bool>,
    pub cache_threshold: Option<f64>,
    pub cache_max_age: Option<u32>,
    /// Client-name parameters (`config::client_names`).
    pub ddns_replace_client_name: Option<String>,
    pub ddns_generated_prefix: Option<String>,
    pub ddns_qualifying_suffix: Option<String>,
    pub hostname_char_set: Option<String>,
    pub hostname_char_replacement: Option<String>,
    // Only read by DNS updates, which are refused: typed, then unused.
    #[allow(dead_code)]
    pub ddns_send_updates: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_no_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_override_client_update: Option<bool>,
    #[allow(dead_code)]
    pub ddns_update_on_renew: Option<bool>,
    #[allow(dead_code)]
    pub ddns_use_conflict_resolution: Option<bool>,
    pub store_extended_info: Option<bool>,
    pub client_class: Option<String>,
    pub require_client_classes: Option<Vec<String>>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// `expired-leases-processing` (signed, so a negative value gets Kea's
/// own message instead of a type error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpiredLeasesProcessing {
    pub reclaim_timer_wait_time: Option<i64>,
    pub flush_reclaimed_timer_wait_time: Option<i64>,
    pub hold_reclaimed_time: Option<i64>,
    pub max_reclaim_leases: Option<i64>,
    pub max_reclaim_time: Option<i64>,
    pub unwarned_reclaim_cycles: Option<i64>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `pools` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pool {
    pub pool: String,
    pub option_data: Option<Vec<OptionData>>,
    pub client_class: Option<String>,
    pub require_client_classes: Option<Vec<String>>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `reservations` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Reservation {
    pub hw_address: Option<String>,
    pub client_id: Option<String>,
    pub duid: Option<String>,
    pub circuit_id: Option<String>,
    pub flex_id: Option<String>,
    pub ip_address: Option<String>,
    pub hostname: Option<String>,
    pub option_data: Option<Vec<OptionData>>,
    pub next_server: Option<String>,
    pub server_hostname: Option<String>,
    pub boot_file_name: Option<String>,
    pub client_classes: Option<Vec<String>>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// A subnet's `relay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Relay {
    pub ip_addresses: Option<Vec<String>>,
    /// Kea's older single-address form.
    pub ip_address: Option<String>,
}

/// One `hooks-libraries` entry; `parameters` is interpreted per library.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HookLibrary {
    pub library: String,
    pub parameters: Option<Value>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

/// One `client-classes` entry. Required keys are optional here so that
/// stage 2 names the entry that lacks one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientClass {
    pub name: Option<String>,
    pub test: Option<String>,
    pub only_if_required: Option<bool>,
    pub option_data: Option<Vec<OptionData>>,
    pub option_def: Option<Vec<OptionDef>>,
    pub next_server: Option<String>,
    pub server_hostname: Option<String>,
    pub boot_file_name: Option<String>,
    pub valid_lifetime: Option<u32>,
    pub min_valid_lifetime: Option<u32>,
    pub max_valid_lifetime: Option<u32>,
    pub user_context: Option<Map<String, Value>>,
    #[allow(dead_code)] // Accepted everywhere and deliberately unused.
    pub comment: Option<String>,
}

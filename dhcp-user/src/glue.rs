//! Adapters between the parts: the validated [`Config`] compiled into the
//! engine's [`Policy`], the lease store seen through the engine's
//! [`LeaseView`], and engine writes turned into stored leases. Kept in one
//! place so `config`, `leases` and `dhcp` need not know each other.

use std::{collections::HashMap, net::Ipv4Addr, sync::Arc, time::Duration};

use crate::{
    config::{Config, HostId, HostIdentifierType, InterfaceSpec, OptionSet, Reservation as ConfigReservation},
    dhcp::{
        engine::{Held, HeldState, LeaseView, NewLease},
        policy::{ClassPolicy, Host, HostTable, OptionBytes, OptionValue, Policy, Pool, Reservation, ScopeClasses, SubnetPolicy},
    },
    leases::{ClientId, HwAddr, Lease, LeaseState, LeaseStore, StoreConfig},
};

fn option_bytes(set: &OptionSet) -> OptionBytes {
    set.iter()
        .map(|o| (o.code(), OptionValue { data: o.data().to_vec(), always_send: o.always_send() }))
        .collect()
}

/// The hosts of one scope whose identifier type is enabled.
fn host_table(reservations: &[ConfigReservation], enabled: &[HostIdentifierType]) -> HostTable {
    let mut t = HostTable::default();
    for r in reservations.iter().filter(|r| enabled.contains(&r.id().kind())) {
        let host = Host {
            address: r.ip_address(),
            hostname: r.hostname().map(str::to_owned),
            options: option_bytes(r.options()),
            classes: r.client_classes().to_vec(),
        };
        let table = match r.id() {
            HostId::HwAddress(_) => &mut t.by_hwaddr,
            HostId::ClientId(_) => &mut t.by_client_id,
            HostId::Duid(_) => &mut t.by_duid,
            HostId::CircuitId(_) => &mut t.by_circuit_id,
        };
        table.insert(r.id().bytes().to_vec(), host);
    }
    t
}

/// Compiles the config for the per-packet path.
pub fn compile(cfg: &Config) -> Policy {
    let identifiers = cfg.host_reservation_identifiers().to_vec();
    let global_hosts = Arc::new(host_table(cfg.global_reservations(), &identifiers));
    let subnets = cfg
        .subnets()
        .iter()
        .map(|s| {
            let flags = s.reservation_flags();
            let in_subnet: &[ConfigReservation] = if flags.in_subnet { s.reservations() } else { &[] };
            let hosts = host_table(in_subnet, &identifiers);
            // The kernel's reservation map: address reservations by MAC or
            // client-id (the two identifiers it reads).
            let kernel = |t: &HashMap<Vec<u8>, Host>| -> HashMap<Vec<u8>, Reservation> {
                t.iter()
                    .filter_map(|(id, h)| {
                        let r = Reservation { address: h.address?, hostname: h.hostname.clone(), options: h.options.clone() };
                        Some((id.clone(), r))
                    })
                    .collect()
            };
            let (by_hwaddr, by_client_id) = (kernel(&hosts.by_hwaddr), kernel(&hosts.by_client_id));
            // Kea's addressReserved: any in-subnet reservation keeps its
            // address from others (identifier enabled or not), except an
            // in-pool one when reservations are declared out of pool.
            let reserved = in_subnet
                .iter()
                .filter_map(|r| r.ip_address())
                .filter(|a| !flags.out_of_pool || s.pool_containing(*a).is_none())
                .map(|a| (a, ()))
                .collect();
            let boot = s.boot();
            SubnetPolicy {
                id: s.id().0,
                network: s.prefix().network(),
                prefix_len: s.prefix().prefix_len(),
                pools: s
                    .pools()
                    .iter()
                    .map(|p| Pool {
                        start: p.start(),
                        end: p.end(),
                        options: option_bytes(p.options()),
                        classes: ScopeClasses {
                            client_class: p.client_class().map(str::to_owned),
                            required: p.required_classes().to_vec(),
                            scoped_codes: s.classes().scoped_options.iter().chain(p.own_options().iter()).map(|o| o.code()).collect(),
                        },
                    })
                    .collect(),
                options: option_bytes(s.options()),
                by_hwaddr,
                by_client_id,
                hosts,
                global_hosts: flags.global.then(|| Arc::clone(&global_hosts)),
                identifiers: identifiers.clone(),
                reserved,
                lifetimes: *s.lifetimes(),
                authoritative: s.authoritative(),
                match_client_id: s.match_client_id(),
                store_extended_info: s.store_extended_info(),
                echo_client_id: cfg.echo_client_id(),
                next_server: boot.next_server,
                server_hostname: (!boot.server_hostname.is_empty()).then(|| boot.server_hostname.clone()),
                boot_file_name: (!boot.boot_file_name.is_empty()).then(|| boot.boot_file_name.clone()),
                relay_addresses: s.relay_addresses().to_vec(),
                interface: s.interface().map(str::to_owned),
                ha_server_name: s.ha_server_name().map(str::to_owned),
                shared_network: s.shared_network(),
                cache: s.lease_cache(),
                names: s.name_policy().clone(),
                classes: ScopeClasses {
                    client_class: s.classes().client_class.clone(),
                    required: s.classes().required.clone(),
                    scoped_codes: s.classes().scoped_options.iter().map(|o| o.code()).collect(),
                },
                network_client_class: s.classes().network_client_class.clone(),
            }
        })
        .collect::<Vec<_>>();
    let networks = cfg
        .shared_networks()
        .iter()
        .map(|n| {
            n.subnets
                .iter()
                .filter_map(|id| subnets.iter().position(|s| s.id == id.0))
                .collect()
        })
        .collect();
    let classes: Vec<ClassPolicy> = cfg
        .client_classes()
        .iter()
        .map(|c| ClassPolicy { def: c.clone(), options: option_bytes(&c.options) })
        .collect();
    let hosts_have_classes = |t: &HostTable| {
        [&t.by_hwaddr, &t.by_client_id, &t.by_duid, &t.by_circuit_id].iter().any(|m| m.values().any(|h| !h.classes.is_empty()))
    };
    let flex = cfg.flex_options().clone();
    let early_hosts = cfg.early_global_reservations_lookup().then(|| (Arc::clone(&global_hosts), identifiers.clone()));
    let classify = !classes.is_empty()
        || !flex.is_empty()
        || hosts_have_classes(&global_hosts)
        || subnets.iter().any(|s| {
            s.network_client_class.is_some()
                || s.classes.client_class.is_some()
                || !s.classes.required.is_empty()
                || hosts_have_classes(&s.hosts)
                || s.pools.iter().any(|p| p.classes.client_class.is_some() || !p.classes.required.is_empty())
        });
    Policy {
        subnets,
        decline_probation_period: cfg.decline_probation_period(),
        expired_leases: cfg.expired_leases(),
        bootp: cfg.bootp(),
        networks,
        classes,
        classify,
        flex,
        early_hosts,
    }
}

/// Interfaces to serve: the named ones, or every non-loopback interface
/// with an IPv4 address for `"*"`.
pub fn interface_names(cfg: &Config) -> Vec<String> {
    let mut names = Vec::new();
    for spec in &cfg.interfaces().interfaces {
        match spec {
            InterfaceSpec::Named { name, .. } => names.push(name.clone()),
            InterfaceSpec::All => {
                if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
                    for ifa in addrs {
                        let is_v4 = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()).is_some();
                        let loopback = ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK);
                        if is_v4 && !loopback {
                            names.push(ifa.interface_name.clone());
                        }
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The memfile store settings from `lease-database` (Kea's default memfile
/// when the leases are in a database: the caller picks the backend).
pub fn store_config(cfg: &Config) -> StoreConfig {
    let db = cfg.lease_database().memfile().cloned().unwrap_or_default();
    StoreConfig {
        path: db.persist.then(|| db.name.clone()),
        persist: db.persist,
        lfc_interval: Duration::from_secs(u64::from(db.lfc_interval)),
    }
}

/// The engine's view of a stored lease.
pub fn held(l: &Lease) -> Held {
    Held {
        address: l.address,
        subnet_id: l.subnet_id,
        hwaddr: l.hwaddr.as_ref().map(|h| h.bytes().to_vec()).unwrap_or_default(),
        client_id: l.client_id.as_ref().map(|c| c.bytes().to_vec()),
        expire: l.expire,
        valid_lifetime: l.valid_lifetime,
        hostname: l.hostname.clone(),
        state: match l.state {
            LeaseState::Default => HeldState::Active,
            LeaseState::Declined => HeldState::Declined,
            // Reclaimed, and states newer Kea versions define, are free.
            LeaseState::ExpiredReclaimed | LeaseState::Other(_) => HeldState::Reclaimed,
        },
    }
}

/// The store as the engine reads it, under the HA reuse grace rule while
/// one runs (`(grace, now)`, see [`crate::ha::grace`]).
pub struct StoreView<'a>(pub &'a LeaseStore, pub Option<(crate::ha::ReuseGrace, u64)>);

impl StoreView<'_> {
    fn held(&self, l: &Lease) -> Held {
        match self.1 {
            Some((g, now)) => g.apply(now, held(l)),
            None => held(l),
        }
    }
}

impl LeaseView for StoreView<'_> {
    fn by_address(&self, address: Ipv4Addr) -> Option<Held> {
        self.0.get(address).map(|l| self.held(&l))
    }

    fn by_hwaddr(&self, subnet_id: u32, hwaddr: &[u8]) -> Option<Held> {
        let hw = HwAddr::new(1, hwaddr.to_vec()).ok()?;
        let leases = self.0.by_hwaddr(subnet_id, &hw);
        // Prefer an assigned lease over reclaimed leftovers.
        leases.iter().max_by_key(|l| (l.state == LeaseState::Default, l.expire)).map(|l| self.held(l))
    }

    fn by_client_id(&self, subnet_id: u32, client_id: &[u8]) -> Option<Held> {
        let id = ClientId::new(client_id.to_vec()).ok()?;
        let leases = self.0.by_client_id(subnet_id, &id);
        leases.iter().max_by_key(|l| (l.state == LeaseState::Default, l.expire)).map(|l| self.held(l))
    }
}

/// The stored form of an engine write.
pub fn to_lease(n: &NewLease) -> Lease {
    if n.state == HeldState::Declined {
        let now = n.expire.saturating_sub(u64::from(n.valid_lifetime));
        return Lease::declined(n.address, n.subnet_id, n.valid_lifetime, now);
    }
    let hwaddr = HwAddr::new(n.htype, n.hwaddr.clone()).ok();
    let client_id = n.client_id.as_ref().and_then(|c| ClientId::new(c.clone()).ok());
    let cltt = n.expire.saturating_sub(u64::from(n.valid_lifetime));
    let mut lease = Lease::new(n.address, hwaddr, client_id, n.subnet_id, cltt, n.valid_lifetime);
    lease.hostname = n.hostname.clone();
    lease.user_context = n.relay_agent_info.as_deref().map(extended_info);
    lease
}

/// Kea's `updateLease4ExtendedInfo`: the user context that holds a relayed
/// client's option 82, as `Option::toHexString` writes it (`0x`, upper case).
fn extended_info(rai: &[u8]) -> serde_json::Value {
    let hex: String = rai.iter().map(|b| format!("{b:02X}")).collect();
    serde_json::json!({"ISC": {"relay-agent-info": format!("0x{hex}")}})
}


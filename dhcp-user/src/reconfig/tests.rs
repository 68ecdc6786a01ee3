//! Reconfiguration without root or network: a config is in force
//! everywhere (policy, HA relationships, the kernel's queue) or nowhere.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::{
    dhcp::policy::Policy,
    fastpath::SubnetServing,
    ha::State,
    kernel::{KernelSync, Maps, Scope},
    leases::{Lease, LeaseStore},
    net::Interface,
};

/// A map write the kernel-sync task made: its kind and, for templates and
/// serving bits, the subnets the kernel may answer in.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Install(Vec<u32>),
    Serving(Vec<u32>),
    Lease(std::net::Ipv4Addr),
}

/// The kernel's maps, recorded.
struct Recorder(Arc<Mutex<Vec<Seen>>>);

fn serving(policy: &Policy, scope: &Scope) -> Vec<u32> {
    policy.subnets.iter().filter(|s| scope.get(s) != SubnetServing::Off).map(|s| s.id).collect()
}

impl Maps for Recorder {
    fn install(&mut self, policy: &Policy, _: &[Interface], scope: &Scope) {
        self.0.lock().unwrap().push(Seen::Install(serving(policy, scope)));
    }
    fn set_serving(&mut self, policy: &Policy, scope: &Scope) {
        self.0.lock().unwrap().push(Seen::Serving(serving(policy, scope)));
    }
    fn lease(&mut self, _: &Policy, addr: std::net::Ipv4Addr, _: Option<&Lease>) {
        self.0.lock().unwrap().push(Seen::Lease(addr));
    }
    fn set_clock(&mut self) {}
}

/// The seed's hub (two HA relationships), leases in memory.
fn hub() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed004/zaldua1zerb1.json");
    let mut v = plain_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Dhcp4"]["lease-database"] = json!({ "type": "memfile", "persist": false });
    v
}

fn parse(v: &Value) -> Config {
    config::parse(&v.to_string(), "test").unwrap()
}

/// The `high-availability` list of `v`.
fn ha_list(v: &mut Value) -> &mut Vec<Value> {
    let libs = v["Dhcp4"]["hooks-libraries"].as_array_mut().unwrap();
    let ha = libs.iter_mut().find(|l| l["library"].as_str().unwrap().contains("libdhcp_ha")).unwrap();
    ha["parameters"]["high-availability"].as_array_mut().unwrap()
}

/// A reconfiguration service over a core whose kernel-sync task (the real
/// one) writes into the returned list; the start-up's writes are cleared.
async fn service(v: &Value) -> (Reconfig, Core, Arc<HaRuntime>, Arc<Mutex<Vec<Seen>>>) {
    let cfg = parse(v);
    let (store, _) = LeaseStore::open(glue::store_config(&cfg)).unwrap();
    let (sync, rx) = KernelSync::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let core = Core::new(glue::compile(&cfg), store, Some(sync));
    let maps = Recorder(Arc::clone(&seen));
    tokio::spawn(crate::kernel::run(maps, Vec::new(), core.lease_pages(), rx, Default::default()));
    let ha = Arc::new(HaRuntime::new(cfg.ha(), |_| Ok(None)).unwrap());
    core.set_scopes(Arc::clone(&ha) as Arc<dyn crate::core::ServingScopes>);
    core.rebuild_kernel().await;
    seen.lock().unwrap().clear();
    let r = Reconfig::new(core.clone(), Arc::clone(&ha), &cfg, None, Arc::new(EventLog::default()));
    (r, core, ha, seen)
}

fn same(a: &Arc<[Arc<crate::peer::Rel>]>, b: &Arc<[Arc<crate::peer::Rel>]>) -> Vec<bool> {
    a.iter().zip(b.iter()).map(|(x, y)| Arc::ptr_eq(x, y)).collect()
}

#[tokio::test]
async fn a_changed_relationship_restarts_from_waiting_the_other_keeps_running() {
    let v = hub();
    let (r, _, ha, _) = service(&v).await;
    let before = ha.rels();
    assert_eq!(before.len(), 2);
    let mut w = v.clone();
    ha_list(&mut w)[1]["heartbeat-delay"] = json!(4321);
    let done = r.apply(&parse(&w), None, "config-set").await.unwrap();
    let after = ha.rels();
    assert_eq!(same(&before, &after), [true, false], "only the second relationship is rebuilt");
    assert_eq!(after[1].machine().state(), State::Waiting);
    assert_eq!(after[1].config.heartbeat_delay().as_millis(), 4321);
    assert!(done.changes.iter().any(|c| c.contains(after[1].this_server())), "{:?}", done.changes);

    // The same config again changes no relationship.
    let again = ha.rels();
    r.apply(&parse(&w), None, "config-set").await.unwrap();
    assert_eq!(same(&again, &ha.rels()), [true, true]);
}

#[tokio::test]
async fn peers_urls_failover_and_basic_auth_are_changes_too() {
    let v = hub();
    let edits: [(&str, fn(&mut Value)); 4] = [
        ("peer url", |r| r["peers"][1]["url"] = json!("http://192.0.2.77:8001/")),
        // (A hub runs hot-standby only; the lab test changes a pair's mode.)
        ("auto-failover", |r| r["peers"][1]["auto-failover"] = json!(false)),
        ("basic auth", |r| {
            r["peers"][1]["basic-auth-user"] = json!("kea");
            r["peers"][1]["basic-auth-password"] = json!("s3cret");
        }),
        ("max-response-delay", |r| r["max-response-delay"] = json!(9000)),
    ];
    for (what, edit) in edits {
        let (r, _, ha, _) = service(&v).await;
        let before = ha.rels();
        let mut w = v.clone();
        edit(&mut ha_list(&mut w)[0]);
        r.apply(&parse(&w), None, "config-set").await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(same(&before, &ha.rels()), [false, true], "{what}: only the first relationship restarts");
    }
}

#[tokio::test]
async fn ha_is_added_and_removed_live() {
    let v = hub();
    let mut plain = v.clone();
    plain["Dhcp4"]["hooks-libraries"].as_array_mut().unwrap().retain(|l| !l["library"].as_str().unwrap().contains("libdhcp_ha"));
    let (r, _, ha, _) = service(&plain).await;
    assert!(!ha.is_active());
    r.apply(&parse(&v), None, "config-set").await.unwrap();
    assert_eq!(ha.rels().len(), 2);
    assert!(ha.rels().iter().all(|r| r.machine().state() == State::Waiting));
    // One relationship removed: the other keeps running.
    let kept = ha.rels()[0].clone();
    let mut one = v.clone();
    ha_list(&mut one).truncate(1);
    for s in one["Dhcp4"]["subnet4"].as_array_mut().unwrap() {
        s["user-context"] = json!({ "ha-server-name": "zaldua1zerb1-zaldua1" });
    }
    let done = r.apply(&parse(&one), None, "config-set").await.unwrap();
    assert_eq!(ha.rels().len(), 1);
    assert!(Arc::ptr_eq(&ha.rels()[0], &kept), "{:?}", done.changes);
    r.apply(&parse(&plain), None, "config-set").await.unwrap();
    assert!(!ha.is_active());
}

#[tokio::test]
async fn settings_fixed_at_start_are_refused_by_name_and_nothing_changes() {
    let v = hub();
    let (r, core, ha, _) = service(&v).await;
    let (policy, rels) = (core.policy(), ha.rels());
    let cases: [(&str, fn(&mut Value)); 3] = [
        ("Dhcp4.interfaces-config.interfaces", |w| w["Dhcp4"]["interfaces-config"]["interfaces"] = json!(["eth9"])),
        ("Dhcp4.lease-database.persist", |w| {
            w["Dhcp4"]["lease-database"] = json!({ "type": "memfile", "name": "/tmp/x.csv" })
        }),
        ("Dhcp4.lease-database.lfc-interval", |w| w["Dhcp4"]["lease-database"]["lfc-interval"] = json!(60)),
    ];
    for (key, edit) in cases {
        let mut w = v.clone();
        edit(&mut w);
        // Changes that could apply live ride along: they must not apply either.
        w["Dhcp4"]["valid-lifetime"] = json!(600);
        ha_list(&mut w)[0]["heartbeat-delay"] = json!(4321);
        let e = r.apply(&parse(&w), Some(json!({})), "config-set").await.unwrap_err();
        assert!(matches!(&e, Refused::NeedsRestart { key: k, .. } if *k == key), "{key}: {e}");
        assert!(e.to_string().contains(key) && e.to_string().contains("Nothing was changed"), "{e}");
        assert!(Arc::ptr_eq(&policy, &core.policy()), "{key}: the policy changed");
        assert_eq!(same(&rels, &ha.rels()), [true, true], "{key}: HA changed");
        assert!(r.applied().lock().unwrap().json.is_none(), "{key}: config-get changed");
    }
}

#[tokio::test]
async fn a_logger_that_cannot_open_refuses_the_whole_config() {
    let v = hub();
    let (r, core, ha, _) = service(&v).await;
    let (policy, rels) = (core.policy(), ha.rels());
    let mut w = v.clone();
    w["Dhcp4"]["valid-lifetime"] = json!(600);
    ha_list(&mut w)[0]["heartbeat-delay"] = json!(4321);
    w["Dhcp4"]["loggers"] = json!([{ "name": "kea-dhcp4", "severity": "INFO",
        "output_options": [{ "output": "/nonexistent-xdhcp-dir/kea.log" }] }]);
    let cfg = parse(&w);
    let e = r.test(&cfg).await.unwrap_err();
    assert!(matches!(e, Refused::Loggers(_)), "{e}");
    let e = r.apply(&cfg, None, "config-set").await.unwrap_err();
    assert!(e.to_string().starts_with("Dhcp4.loggers: ") && e.to_string().contains("nonexistent-xdhcp-dir"), "{e}");
    assert!(Arc::ptr_eq(&policy, &core.policy()));
    assert_eq!(same(&rels, &ha.rels()), [true, true]);
}

#[tokio::test]
async fn config_test_builds_everything_and_applies_nothing() {
    let v = hub();
    let (r, core, ha, seen) = service(&v).await;
    let (policy, rels) = (core.policy(), ha.rels());
    let mut w = v.clone();
    ha_list(&mut w)[0]["heartbeat-delay"] = json!(4321);
    assert_eq!(r.test(&parse(&w)).await.unwrap(), policy.subnets.len());
    assert!(Arc::ptr_eq(&policy, &core.policy()));
    assert_eq!(same(&rels, &ha.rels()), [true, true]);
    core.rescope_kernel().await;
    assert_eq!(*seen.lock().unwrap(), [Seen::Serving(vec![])], "the kernel was told more");
}

#[tokio::test]
async fn a_changed_relationship_is_held_off_in_the_kernel_before_the_switch() {
    let v = hub();
    let (r, core, _, seen) = service(&v).await;
    let all: Vec<u32> = core.policy().subnets.iter().map(|s| s.id).collect();
    let mut w = v.clone();
    ha_list(&mut w)[0]["heartbeat-delay"] = json!(4321);
    r.apply(&parse(&w), None, "config-set").await.unwrap();
    // Held (nothing served) before the switch, through the templates'
    // install, and released after; the relationships are in waiting, so
    // HA still serves nothing. No lease entry is rewritten.
    assert!(!all.is_empty());
    assert_eq!(*seen.lock().unwrap(), [Seen::Serving(vec![]), Seen::Serving(vec![]), Seen::Install(vec![]), Seen::Serving(vec![])]);
}

/// Without HA the kernel serves every subnet: an option changed in one
/// holds that one only, from before the daemon's switch until the new
/// templates are in; a pool changed also rewrites its leases' entries
/// (the others' are not touched) before the kernel answers there again.
#[tokio::test]
async fn only_the_changed_subnet_is_held_and_only_its_leases_relinked() {
    let mut v = json!({ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
        "lease-database": { "type": "memfile", "persist": false },
        "subnet4": [
            { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.200" } ] },
            { "id": 2, "subnet": "198.51.100.0/24", "pools": [ { "pool": "198.51.100.10-198.51.100.200" } ] } ] } });
    let (r, core, _, seen) = service(&v).await;
    let a = std::net::Ipv4Addr::new(192, 0, 2, 50);
    let b = std::net::Ipv4Addr::new(198, 51, 100, 50);
    for (addr, subnet) in [(a, 1), (b, 2)] {
        let hw = crate::leases::HwAddr::ethernet([2, 0, 0, 0, 0, subnet as u8]);
        let _ = core.write(|tx| tx.upsert(Lease::new(addr, Some(hw), None, subnet, crate::clock::unix_now(), 3600)));
    }
    core.rescope_kernel().await;
    seen.lock().unwrap().clear();

    v["Dhcp4"]["subnet4"][1]["option-data"] = json!([{ "name": "domain-name", "data": "x.example" }]);
    r.apply(&parse(&v), None, "config-set").await.unwrap();
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [Seen::Serving(vec![1]), Seen::Serving(vec![1]), Seen::Install(vec![1]), Seen::Serving(vec![1, 2])]
    );

    v["Dhcp4"]["subnet4"][0]["pools"][0]["pool"] = json!("192.0.2.10-192.0.2.20");
    r.apply(&parse(&v), None, "config-set").await.unwrap();
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [Seen::Serving(vec![2]), Seen::Serving(vec![2]), Seen::Install(vec![2]), Seen::Lease(a), Seen::Serving(vec![1, 2])]
    );
}

/// The security warnings follow the configuration in force: credentials
/// added to one HA listener clear its warning on the next apply; a refused
/// configuration leaves them as they were.
#[tokio::test]
async fn security_warnings_are_those_of_the_configuration_in_force() {
    let v = hub();
    let (r, _, _, _) = service(&v).await;
    let warned = |r: &Reconfig| r.applied().lock().unwrap().security_warnings.clone();
    let at_start = warned(&r);
    assert_eq!(at_start.len(), 2, "{at_start:?}");
    assert!(at_start[0].contains("192.168.42.4:8001") && at_start[1].contains("192.168.4.4:8002"), "{at_start:?}");

    let mut w = v.clone();
    ha_list(&mut w)[0]["peers"][0]["basic-auth-user"] = json!("kea");
    ha_list(&mut w)[0]["peers"][0]["basic-auth-password"] = json!("s3cret");
    let mut refused = w.clone();
    refused["Dhcp4"]["interfaces-config"]["interfaces"] = json!(["eth9"]);
    r.apply(&parse(&refused), None, "config-set").await.unwrap_err();
    assert_eq!(warned(&r), at_start);
    r.apply(&parse(&w), None, "config-set").await.unwrap();
    assert_eq!(warned(&r), at_start[1..]);
    r.apply(&parse(&v), None, "config-set").await.unwrap();
    assert_eq!(warned(&r), at_start);
}

#[test]
fn comments_are_stripped_outside_strings() {
    let v = plain_json("{ # c\n \"a\": \"x#y//z\", // c\n /* b */ \"b\": 1 }").unwrap();
    assert_eq!(v, json!({"a": "x#y//z", "b": 1}));
    assert!(plain_json("<?include \"x\"?>").is_none());
}

/// `multi-threading` applies live, as in Kea: the pool is turned on,
/// resized and off by `config-set`; a refused config leaves it alone.
#[tokio::test]
async fn multi_threading_is_switched_live_and_not_by_a_refused_config() {
    let v = hub();
    let (r, core, ha, _) = service(&v).await;
    let workers = crate::workers::Workers::start(
        core.clone(),
        Some(Arc::clone(&ha)),
        tokio_util::sync::CancellationToken::new(),
        parse(&v).multi_threading(),
    );
    r.set_workers(Arc::clone(&workers));
    let pool = |w: &crate::workers::Workers| w.status().map(|s| (s.threads, s.queue_size));
    assert_eq!(pool(&workers), None);

    let mut on = v.clone();
    on["Dhcp4"]["multi-threading"] = json!({ "enable-multi-threading": true, "thread-pool-size": 3, "packet-queue-size": 16 });
    let done = r.apply(&parse(&on), None, "config-set").await.unwrap();
    assert_eq!(pool(&workers), Some((3, 16)));
    assert!(done.changes.iter().any(|c| c.contains("multi-threading")), "{:?}", done.changes);

    let mut refused = on.clone();
    refused["Dhcp4"]["multi-threading"]["thread-pool-size"] = json!(1);
    refused["Dhcp4"]["interfaces-config"]["interfaces"] = json!(["eth9"]);
    r.apply(&parse(&refused), None, "config-set").await.unwrap_err();
    assert_eq!(pool(&workers), Some((3, 16)), "refused: nothing changed");

    r.apply(&parse(&v), None, "config-set").await.unwrap();
    assert_eq!(pool(&workers), None, "off again");
}

//! The importer must never panic: random bytes, and valid files mutated.
use proptest::prelude::*;

use super::{ImportOptions, convert, leases, syntax};

const CONF: &str = include_str!("../../tests/data/dhcpd/venus-subnets.conf");
const PRIMARY: &str = include_str!("../../tests/data/dhcpd/lobezno-dhcpd.conf");
const LEASES: &str = include_str!("../../tests/data/dhcpd/lobezno-dhcpd.leases");

fn run_all(text: &str) {
    let mut inc = |n: &str| -> Result<(String, String), String> {
        if n.ends_with("venus-subnets.conf") {
            Ok((n.to_owned(), CONF.to_owned()))
        } else {
            Err("no".into())
        }
    };
    let opts = ImportOptions {
        server_name: None,
        peer_name: None,
        ha_port: 8000,
        interfaces: vec![],
        fallback_name: "f".into(),
    };
    if let Ok(stmts) = syntax::parse(text, "f", &mut inc) {
        let imported = convert::convert(&stmts, &opts);
        let _ = imported.report.render();
        let l = leases::import(&stmts, &imported.subnets);
        let _ = leases::to_csv(&l.leases);
    }
}

fn mutate(base: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut b = base.as_bytes().to_vec();
    for &(pos, op, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = pos % b.len();
        match op % 3 {
            0 => b[i] = byte,
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, byte),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        run_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_tokens(toks in proptest::collection::vec(prop::sample::select(vec![
        "{", "}", ";", ",", "\"", "\"x\"", "#c\n", "subnet", "10.0.0.0", "netmask", "255.255.255.0", "pool", "range",
        "10.0.0.5", "host", "hardware", "ethernet", "02:00:00:00:00:01", "fixed-address", "failover", "peer", "split",
        "255", "option", "routers", "lease", "binding", "state", "active", "ends", "never", "include", "\\", "\n",
    ]), 0..80)) {
        run_all(&toks.join(" "));
    }

    #[test]
    fn mutated_valid_files(which in 0usize..3, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), prop::sample::select(b"{};,\"#\\ \n0.:a".to_vec())), 1..12)) {
        let base = [CONF, PRIMARY, LEASES][which];
        run_all(&mutate(base, &edits));
    }
}

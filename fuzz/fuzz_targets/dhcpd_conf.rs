//! An ISC dhcpd.conf → the importer (`import::import_conf`: syntax, then
//! conversion to Kea JSON and the report), the result through xdhcpd's own
//! config parser, and the same bytes as a dhcpd.leases file against the
//! imported subnets. Includes are refused (no file of this machine is
//! read).
#![no_main]

use dhcp_user::import::{self, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = ImportOptions {
        server_name: None,
        peer_name: None,
        ha_port: import::DEFAULT_HA_PORT,
        interfaces: vec![],
        fallback_name: "fuzz".into(),
    };
    let mut no_includes = |name: &str| Err(format!("include {name:?} refused while fuzzing"));
    let Ok(imported) = import::import_conf(&text, "fuzz-dhcpd.conf", &mut no_includes, &opts) else { return };
    let _ = imported.report.render();
    let json = serde_json::to_string_pretty(&imported.config).expect("the imported config serialises");
    if !json.contains("<?include") {
        let _ = dhcp_user::config::parse(&json, "fuzz.json");
    }
    if let Ok(leases) = import::import_leases(&text, "fuzz-dhcpd.leases", &imported) {
        let _ = leases.render();
        // What the importer writes, the daemon's loader reads back whole.
        let csv = import::leases::to_csv(&leases.leases);
        let (_, report) = dhcp_user::leases::file::replay_bytes(csv.as_bytes(), std::path::Path::new("imported.csv"))
            .expect("the imported lease file has a header");
        assert_eq!(report.skipped.len(), 0, "imported rows refused: {:?}\n{csv}", report.skipped);
    }
});

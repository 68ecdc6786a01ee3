//! Kea configuration text (`Dhcp4` JSON with Kea's comments and includes
//! refused) → `config::parse` → the policy the daemon runs (`glue::compile`).
//! Any text is either refused with an error naming the source, or becomes
//! a policy; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains("<?include") {
        return; // would read files of this machine (the lease_csv and control_api targets stay in a temp dir)
    }
    match dhcp_user::config::parse(text, "fuzz.json") {
        Ok(cfg) => {
            let policy = dhcp_user::glue::compile(&cfg);
            let _ = dhcp_user::glue::store_config(&cfg);
            for s in &policy.subnets {
                assert!(s.prefix_len <= 32);
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty(), "an empty error");
        }
    }
});

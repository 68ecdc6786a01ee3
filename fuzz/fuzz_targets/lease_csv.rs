//! A Kea memfile lease file's bytes → the loader the daemon runs at
//! start-up (`leases::file::replay_bytes`, the row loop of
//! `LeaseStore::open`). Every lease it keeps must survive being written
//! back: `format_row` either refuses it with a reason or writes a row that
//! reads back as the same lease (what the daemon writes, it and Kea can
//! read again after a restart).
#![no_main]

use std::path::Path;

use dhcp_user::leases::{csv, file::replay_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((leases, report)) = replay_bytes(data, Path::new("fuzz-leases4.csv")) else { return };
    assert_eq!(report.leases, leases.len());
    let _ = report.to_string();
    for lease in leases {
        let mut row = String::new();
        if csv::format_row(&lease, &mut row).is_err() {
            continue;
        }
        let line = row.strip_suffix('\n').unwrap_or_else(|| panic!("row without a newline: {row:?}"));
        assert!(!line.contains('\n'), "a row spans lines: {row:?}");
        let back = csv::Schema::CURRENT.parse_row(line).unwrap_or_else(|e| panic!("{e}: our own row {line:?}"));
        assert_eq!(back, lease, "row {line:?}");
    }
});

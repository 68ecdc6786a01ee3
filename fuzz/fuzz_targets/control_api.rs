//! The HTTP control API: any body POSTed to `/` of the control listener
//! (axum's body handling, Kea's request framing, every command's argument
//! parsing and handling) on a daemon without HA, then the status page, its
//! JSON and the metrics rendered over whatever the command changed.
//! Every answer must be JSON with an integer `result` (see `Api::post`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let api = xdhcp_fuzz::Api::new(&xdhcp_fuzz::contained(xdhcp_fuzz::RELAY));
    api.post(data.to_vec());
    api.render_all();
});

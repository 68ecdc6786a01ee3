//! Reading the request's options: a `bpf_loop` callback records in scratch
//! what the answer depends on, and both paths query that record. Apart
//! because the verifier checks the callback on its own, once.

use dhcp_common::fastpath::{MAX_CLIENT_ID, SubnetReply};

use super::bounds::at;
use crate::maps::{SCRATCH, Scratch, XDHCP_SCRATCH};

/// Options we look at before giving up (a REQUEST carries about ten).
pub(super) const MAX_SCANNED_OPTIONS: usize = 48;
/// Longest parameter request list we check.
const MAX_PRL: usize = 64;

pub(super) const SCAN_RUNNING: u32 = 0;
pub(super) const SCAN_END: u32 = 1;
const SCAN_GAVE_UP: u32 = 2;

/// One option per call, driven by `bpf_loop` so the verifier checks the
/// body once instead of once per iteration and per path. State lives in
/// the per-CPU scratch value.
pub(super) extern "C" fn scan_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(s) = XDHCP_SCRATCH.get_ptr_mut(0) else { return 1 };
    let s = unsafe { &mut *s };
    let i = s.pos as usize;
    let n = s.n as usize;
    if i >= n || i >= SCRATCH {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    let code = at(&s.req, i);
    if code == 0 {
        s.pos += 1;
        return 0;
    }
    if code == 255 {
        s.state = SCAN_END;
        return 1;
    }
    if i + 1 >= n {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    let len = at(&s.req, i + 1) as usize;
    if i + 2 + len > n {
        s.state = SCAN_GAVE_UP;
        return 1;
    }
    // A length the daemon refuses, a structured option only its parser can
    // check, or a second copy of an option read here
    // (the daemon's parser joins or replaces repeats, RFC 3396): the
    // daemon decides, so both answer the same way.
    let read_bit = match code {
        12 => 1,
        50 => 2,
        53 => 4,
        54 => 8,
        55 => 16,
        61 => 32,
        _ => 0,
    };
    if !dhcp_common::dhcp::option_len_ok(code, len as u8)
        || matches!(dhcp_common::dhcp::option_shape(code), dhcp_common::dhcp::Shape::Parsed)
        || s.seen & read_bit != 0
    {
        s.needs_daemon = 1;
    }
    s.seen |= read_bit;
    match code {
        53 => s.msg_type = at(&s.req, i + 2) as u32,
        50 | 54 if len != 4 => s.needs_daemon = 1,
        50 => {
            s.has_req_ip = 1;
            s.req_ip = [at(&s.req, i + 2), at(&s.req, i + 3), at(&s.req, i + 4), at(&s.req, i + 5)];
        }
        54 => {
            s.has_server_id = 1;
            s.server_id = [at(&s.req, i + 2), at(&s.req, i + 3), at(&s.req, i + 4), at(&s.req, i + 5)];
        }
        // Lease time and overload change the answer; relay agent
        // information and subnet selection are echoed (and may select
        // another subnet), and a client FQDN is answered with a sanitised,
        // qualified name, which only the daemon does.
        51 | 52 | 81 | 82 | 118 => s.needs_daemon = 1,
        12 => s.has_hostname = 1,
        61 => {
            s.cid_off = (i + 2) as u32;
            s.cid_len = len as u32;
        }
        55 => {
            s.prl_off = (i + 2) as u32;
            s.prl_len = len as u32;
        }
        _ => {}
    }
    s.pos = (i + 2 + len) as u32;
    0
}

/// Whether the request's client-id (in scratch) equals `id[..len]`.
#[allow(clippy::needless_range_loop)] // a constant trip count the verifier bounds
#[inline(always)]
pub(super) fn same_cid(scratch: &Scratch, id: &[u8; MAX_CLIENT_ID], len: usize) -> bool {
    let off = scratch.cid_off as usize;
    for i in 0..MAX_CLIENT_ID {
        if i >= len {
            break;
        }
        if id[i] != at(&scratch.req, off + i) {
            return false;
        }
    }
    true
}

/// Whether the parameter request list asks for an option the daemon would
/// add to the template.
#[inline(always)]
pub(super) fn asks_for_more(scratch: &Scratch, t: &SubnetReply) -> bool {
    let (off, len) = (scratch.prl_off as usize, scratch.prl_len as usize);
    if len > MAX_PRL {
        return true;
    }
    for i in 0..MAX_PRL {
        if i >= len {
            break;
        }
        let code = at(&scratch.req, off + i);
        if t.prl_pass[(code >> 3) as usize] & (1 << (code & 7)) != 0 {
            return true;
        }
    }
    false
}

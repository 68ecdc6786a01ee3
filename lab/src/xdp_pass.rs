//! An XDP program that passes every frame, attached to each bridge-side
//! veth. A server answering with XDP_TX hands the frame to its veth peer's
//! NAPI ring; without NAPI on that peer the frame is dropped (counted only
//! in the server veth's `rx_queue_N_xdp_tx_errors`). GRO on the peer sets
//! NAPI up, yet is not enough: `veth_xdp_flush` schedules the peer's NAPI
//! only when the peer has an XDP program, so with GRO alone the frames wait
//! in its ring (kernel 6.18; `dhcp-user/tests/lab_xdp_delivery.rs` measures
//! both). [`crate::BridgePorts`] leaves it off for tests of such ports.
//!
//! The program is two instructions, loaded with the bpf(2) syscall, so the
//! lab needs no compiler or object file. It is attached by id with
//! `bpftool net attach` inside the switch namespace (a netlink attachment:
//! it lives until the veth is deleted with its namespace); the loader's
//! descriptor is closed once every port has it.

use std::{ffi::CString, os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd}};

use anyhow::Context as _;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_TYPE_XDP: u32 = 6;
const XDP_PASS: u8 = 2;

/// `r0 = XDP_PASS; exit`.
fn instructions() -> [u8; 16] {
    [0xb7, 0, 0, 0, XDP_PASS, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
}

/// bpf(2) with a 128-byte `bpf_attr` (the lab's raw programs use it).
pub(crate) fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<i32> {
    // SAFETY: `attr` is a zero-initialised bpf_attr-sized buffer whose
    // pointers (set by the callers) outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r as i32) }
}

/// The loaded pass program: its descriptor (kept until every port has it
/// attached) and its kernel id.
pub struct PassProgram {
    _fd: OwnedFd,
    id: u32,
}

impl PassProgram {
    /// Loads the program.
    pub fn load() -> anyhow::Result<Self> {
        let insns = instructions();
        let license = CString::new("GPL").expect("no NUL");
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
        attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        attr[48..57].copy_from_slice(b"xlab_pass");
        let raw = bpf(BPF_PROG_LOAD, &mut attr).context("bpf(BPF_PROG_LOAD) of the lab's XDP_PASS program")?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // struct bpf_prog_info starts with u32 type, u32 id.
        let mut info = [0u8; 256];
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).context("bpf(BPF_OBJ_GET_INFO_BY_FD)")?;
        let id = u32::from_ne_bytes(info[4..8].try_into().expect("4 bytes"));
        Ok(Self { _fd: fd, id })
    }

    /// Attaches it to `iface` in namespace `ns`, native mode (veth has it).
    pub fn attach(&self, ns: &str, iface: &str) -> anyhow::Result<()> {
        let id = self.id.to_string();
        crate::netns::exec(ns, &["bpftool", "net", "attach", "xdpdrv", "id", &id, "dev", iface])
            .with_context(|| format!("attaching XDP_PASS to {iface} in {ns}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_mov_r0_pass_then_exit() {
        let i = instructions();
        // BPF_ALU64 | BPF_MOV | BPF_K into r0, imm 2; then BPF_JMP | BPF_EXIT.
        assert_eq!((i[0], i[1], i[4]), (0xb7, 0, 2));
        assert_eq!(i[8], 0x95);
    }
}

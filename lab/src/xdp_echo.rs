//! The ceiling of the XDP path: a bare echo that sends every UDP frame to
//! port 67 straight back (XDP_TX) with Ethernet and IP addresses and UDP
//! ports swapped, and nothing else — no parsing past the headers, no map
//! lookup, no rewrite. Attached in place of xdhcpd on the server's veth,
//! it answers the load generator's renewals with its own requests, which
//! [`crate::loadgen`] counts as echoes: what xdhcpd's kernel path achieves
//! against this is the share of the path it spends on DHCP.
//!
//! Swapping fields keeps both checksums valid (the one's-complement sums
//! are order-independent). Like [`crate::xdp_pass`], the program is raw
//! instructions loaded with bpf(2), so the lab needs no compiler, and it
//! is attached with `bpftool net attach xdpdrv` inside the host's
//! namespace (native mode only: generic XDP would measure another path).

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, bail};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// XDP verdicts.
pub const XDP_PASS: u32 = 2;
/// XDP verdicts.
pub const XDP_TX: u32 = 3;

/// One eBPF instruction, or a jump to the `pass` exit resolved by
/// [`assemble`].
#[derive(Clone, Copy, Debug)]
enum Insn {
    /// `dst = *(size *)(src + off)`, size 4/2/1.
    Ldx(u8, u8, u8, i16),
    /// `*(size *)(dst + off) = src`.
    Stx(u8, u8, u8, i16),
    /// `dst = src` (64-bit).
    MovReg(u8, u8),
    /// `dst = imm`.
    MovImm(u8, i32),
    /// `dst += imm`.
    AddImm(u8, i32),
    /// `if dst > src goto pass` (unsigned).
    JgtRegPass(u8, u8),
    /// `if dst != imm goto pass`.
    JneImmPass(u8, i32),
    /// `exit`.
    Exit,
    /// Where the `*Pass` jumps land.
    PassLabel,
}

fn size_bits(size: u8) -> u8 {
    match size {
        4 => 0x00,
        2 => 0x08,
        _ => 0x10,
    }
}

/// Encodes the program (`struct bpf_insn`, little-endian, 8 bytes each).
fn assemble(program: &[Insn]) -> Vec<u8> {
    let real: Vec<&Insn> = program.iter().filter(|i| !matches!(i, Insn::PassLabel)).collect();
    let pass = program.iter().position(|i| matches!(i, Insn::PassLabel)).expect("program has a pass label");
    let mut out = Vec::with_capacity(real.len() * 8);
    for (pc, insn) in real.iter().enumerate() {
        let jump = || i16::try_from(pass as i64 - pc as i64 - 1).expect("short jump");
        let (code, dst, src, off, imm) = match **insn {
            Insn::Ldx(size, dst, src, off) => (0x61 | size_bits(size), dst, src, off, 0),
            Insn::Stx(size, dst, src, off) => (0x63 | size_bits(size), dst, src, off, 0),
            Insn::MovReg(dst, src) => (0xbf, dst, src, 0, 0),
            Insn::MovImm(dst, imm) => (0xb7, dst, 0, 0, imm),
            Insn::AddImm(dst, imm) => (0x07, dst, 0, 0, imm),
            Insn::JgtRegPass(dst, src) => (0x2d, dst, src, jump(), 0),
            Insn::JneImmPass(dst, imm) => (0x55, dst, 0, jump(), imm),
            Insn::Exit => (0x95, 0, 0, 0, 0),
            Insn::PassLabel => unreachable!("filtered out"),
        };
        out.push(code);
        out.push(dst | (src << 4));
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&imm.to_le_bytes());
    }
    out
}

/// The echo, in instructions. Registers: r1 = ctx, r2 = data, r3 =
/// data_end, r5/r6 scratch. Fields are read as little-endian words, so
/// ethertype 0x0800 reads as 0x0008 and port 67 as 0x4300.
fn program() -> Vec<Insn> {
    use Insn::*;
    let mut p = vec![
        Ldx(4, 2, 1, 0), // data
        Ldx(4, 3, 1, 4), // data_end
        MovReg(4, 2),
        AddImm(4, 42), // Ethernet + IPv4 without options + UDP
        JgtRegPass(4, 3),
        Ldx(2, 5, 2, 12),
        JneImmPass(5, 0x0008), // IPv4
        Ldx(1, 5, 2, 14),
        JneImmPass(5, 0x45), // no IP options: UDP at 34
        Ldx(1, 5, 2, 23),
        JneImmPass(5, 17), // UDP
        Ldx(2, 5, 2, 36),
        JneImmPass(5, 0x4300), // to port 67
    ];
    // (size, a, b): swap the `size` bytes at a with those at b.
    for (size, a, b) in [(4, 0, 6), (2, 4, 10), (4, 26, 30), (2, 34, 36)] {
        p.extend([Ldx(size, 5, 2, a), Ldx(size, 6, 2, b), Stx(size, 2, 6, a), Stx(size, 2, 5, b)]);
    }
    p.extend([MovImm(0, XDP_TX as i32), Exit, PassLabel, MovImm(0, XDP_PASS as i32), Exit]);
    p
}

use crate::xdp_pass::bpf;

/// The loaded echo program.
pub struct EchoProgram {
    fd: OwnedFd,
    id: u32,
}

impl EchoProgram {
    /// Loads it (needs CAP_BPF/root). On a verifier error the message
    /// carries the verifier's log.
    pub fn load() -> anyhow::Result<Self> {
        let insns = assemble(&program());
        let license = CString::new("GPL").expect("no NUL");
        let mut log = vec![0u8; 64 * 1024];
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
        attr[4..8].copy_from_slice(&((insns.len() / 8) as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
        attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
        attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
        attr[48..57].copy_from_slice(b"xlab_echo");
        let raw = bpf(BPF_PROG_LOAD, &mut attr).with_context(|| {
            let text = String::from_utf8_lossy(&log);
            format!("bpf(BPF_PROG_LOAD) of the XDP echo; verifier says:\n{}", text.trim_end_matches('\0'))
        })?;
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
        Ok(Self { fd, id })
    }

    /// Its kernel id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN`: the
    /// verdict and the frame as it left.
    pub fn test_run(&self, frame: &[u8]) -> anyhow::Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(self.fd.as_raw_fd() as u32).to_ne_bytes());
        attr[8..12].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        attr[12..16].copy_from_slice(&(out.len() as u32).to_ne_bytes());
        attr[16..24].copy_from_slice(&(frame.as_ptr() as u64).to_ne_bytes());
        attr[24..32].copy_from_slice(&(out.as_mut_ptr() as u64).to_ne_bytes());
        attr[32..36].copy_from_slice(&1u32.to_ne_bytes());
        bpf(BPF_PROG_TEST_RUN, &mut attr).context("bpf(BPF_PROG_TEST_RUN) of the XDP echo")?;
        let retval = u32::from_ne_bytes(attr[4..8].try_into().expect("4 bytes"));
        let len = u32::from_ne_bytes(attr[12..16].try_into().expect("4 bytes")) as usize;
        out.truncate(len);
        Ok((retval, out))
    }

    /// Attaches it natively to `iface` in namespace `ns` until the
    /// returned guard is dropped. Fails if something else is attached.
    pub fn attach(&self, ns: &str, iface: &str) -> anyhow::Result<Attached> {
        let id = self.id.to_string();
        crate::netns::exec(ns, &["bpftool", "net", "attach", "xdpdrv", "id", &id, "dev", iface])
            .with_context(|| format!("attaching the XDP echo to {iface} in {ns}"))?;
        let out = crate::netns::exec(ns, &["ip", "-d", "link", "show", "dev", iface])?;
        if !out.stdout.contains(&format!("prog/xdp id {id}")) {
            bail!("the XDP echo is not attached natively to {iface}:\n{}", out.stdout);
        }
        Ok(Attached { ns: ns.to_owned(), iface: iface.to_owned() })
    }
}

/// The echo attached to an interface; detached on drop (deleting the
/// namespace detaches it too).
#[derive(Debug)]
pub struct Attached {
    ns: String,
    iface: String,
}

impl Drop for Attached {
    fn drop(&mut self) {
        if crate::netns::exists(&self.ns)
            && let Err(e) = crate::netns::exec(&self.ns, &["bpftool", "net", "detach", "xdpdrv", "dev", &self.iface])
        {
            eprintln!("detaching the XDP echo from {} in {}: {e:#}", self.iface, self.ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_loads_stores_and_jumps() {
        let code = assemble(&[
            Insn::Ldx(4, 2, 1, 0),
            Insn::Ldx(2, 5, 2, 12),
            Insn::JneImmPass(5, 0x0008),
            Insn::Stx(1, 2, 6, 34),
            Insn::Exit,
            Insn::PassLabel,
            Insn::MovImm(0, 2),
            Insn::Exit,
        ]);
        let insn = |i: usize| &code[i * 8..i * 8 + 8];
        assert_eq!(insn(0), [0x61, 0x12, 0, 0, 0, 0, 0, 0], "ldxw r2, [r1+0]");
        assert_eq!(insn(1), [0x69, 0x25, 12, 0, 0, 0, 0, 0], "ldxh r5, [r2+12]");
        assert_eq!(insn(2), [0x55, 0x05, 2, 0, 8, 0, 0, 0], "jne r5, 8, +2 (to the pass label)");
        assert_eq!(insn(3), [0x73, 0x62, 34, 0, 0, 0, 0, 0], "stxb [r2+34], r6");
        assert_eq!(insn(5), [0xb7, 0, 0, 0, 2, 0, 0, 0], "mov r0, XDP_PASS");
        assert_eq!(code.len(), 7 * 8);
    }

    #[test]
    fn every_path_ends_in_a_verdict() {
        let p = program();
        let code = assemble(&p);
        let n = code.len() / 8;
        assert_eq!(&code[(n - 1) * 8..], &[0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&code[(n - 3) * 8..(n - 2) * 8], &[0x95, 0, 0, 0, 0, 0, 0, 0], "XDP_TX path exits");
        assert_eq!(code[(n - 4) * 8 + 4], XDP_TX as u8);
        // Every jump lands on `mov r0, XDP_PASS`.
        for pc in 0..n {
            if matches!(code[pc * 8], 0x2d | 0x55) {
                let off = i16::from_le_bytes([code[pc * 8 + 2], code[pc * 8 + 3]]);
                assert_eq!(pc as i64 + 1 + i64::from(off), n as i64 - 2, "jump at {pc}");
            }
        }
    }
}

//! One load run: the pacing, the sending and receiving threads and what
//! they count; the shell around the pure frame and reply code.

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{
    Client, ETH_P_IP, FRAME_LEN, Server,
    frame::{renew_frame, set_xid},
    reply::{Parsed, Verdict, judge, parse_reply},
    socket::{open_sockets, sockaddr_ll, socket_drops},
};

/// Frames per `sendmmsg` / `recvmmsg`.
const BATCH: usize = 64;

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Open loop: this many requests per second, whatever comes back.
    Rate(u64),
    /// Closed loop: at most this many requests unanswered at a time.
    Window(u64),
}

/// One load run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Network namespace to send from (`ip netns` name of a lab host).
    pub netns: String,
    /// Interface in it.
    pub iface: String,
    /// Where the requests go.
    pub server: Server,
    /// Pacing.
    pub pace: Pace,
    /// Stop sending after this many requests…
    pub max_packets: u64,
    /// …or after this long, whichever comes first.
    pub max_time: Duration,
    /// How long to keep receiving after the last send (ends early once
    /// every request is answered).
    pub drain: Duration,
    /// With [`Pace::Window`], how long without any reply before the
    /// outstanding requests are written off as lost.
    pub stall: Duration,
}

impl Options {
    /// Closed loop with a window of `window`, bounded by `max_packets` and
    /// `max_time`; 200 ms drain, 20 ms stall.
    pub fn window(netns: &str, iface: &str, server: Server, window: u64, max_packets: u64, max_time: Duration) -> Self {
        Options {
            netns: netns.to_owned(),
            iface: iface.to_owned(),
            server,
            pace: Pace::Window(window.max(1)),
            max_packets,
            max_time,
            drain: Duration::from_millis(200),
            stall: Duration::from_millis(20),
        }
    }
}

/// What a run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Valid ACKs, each for a different request.
    pub acked: u64,
    /// NAKs for sent requests.
    pub naks: u64,
    /// Requests echoed back (bare echo program).
    pub echoed: u64,
    /// Frames from port 67 to 68 that answer nothing sent or have wrong
    /// contents.
    pub invalid: u64,
    /// Second and later answers to the same request.
    pub duplicates: u64,
    /// `sendmmsg` failures (the frames of that call not sent).
    pub send_errors: u64,
    /// Frames the receiving socket dropped for lack of buffer (the kernel's
    /// `PACKET_STATISTICS`): answers that came but were not counted.
    pub rx_dropped: u64,
    /// Times the window was reset after a stall (closed loop only).
    pub stalls: u64,
    /// Time spent sending: first send to last.
    pub sending: Duration,
}

impl Stats {
    /// Valid ACKs per second of sending.
    pub fn acks_per_s(&self) -> f64 {
        per_s(self.acked, self.sending)
    }

    /// Echoes per second of sending.
    pub fn echoes_per_s(&self) -> f64 {
        per_s(self.echoed, self.sending)
    }

    /// Requests sent per second.
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent, self.sending)
    }

    /// Requests that got no answer at all.
    pub fn unanswered(&self) -> u64 {
        self.sent.saturating_sub(self.acked + self.naks + self.echoed)
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() }
}

/// Counters shared by the sender and the receiver.
struct Shared {
    /// Requests whose xid may be on the wire (published before the send,
    /// since the answer can arrive before `sendmmsg` returns).
    issued: AtomicU64,
    /// Requests answered (ACK, NAK or echo), for the window.
    answered: AtomicU64,
    /// Set when sending stopped.
    done: AtomicBool,
}

/// Sends renewals for `clients` (request `seq` for client
/// `seq % clients.len()`) and counts the answers, from inside namespace
/// `opts.netns`. Needs root.
pub fn run(clients: &[Client], opts: &Options) -> anyhow::Result<Stats> {
    if clients.is_empty() {
        bail!("no clients to renew");
    }
    // A random base keeps a late answer to an earlier run from matching.
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let templates: Vec<Vec<u8>> = clients.iter().map(|c| renew_frame(c, &opts.server, 0)).collect();
    let (tx, rx, ifindex) = open_sockets(&opts.netns, &opts.iface)?;
    let shared = Shared { issued: AtomicU64::new(0), answered: AtomicU64::new(0), done: AtomicBool::new(false) };
    std::thread::scope(|s| {
        let receiver = s.spawn(|| receive(&rx, base, clients, opts, &shared));
        let sent = send(&tx, ifindex, base, &templates, opts, &shared);
        shared.done.store(true, Ordering::Release);
        let received = receiver.join().map_err(|_| anyhow::anyhow!("loadgen receiver panicked"))??;
        let (sent, send_errors, stalls, sending) = sent?;
        Ok(Stats { sent, send_errors, stalls, sending, ..received })
    })
}

/// The sending loop: returns (sent, send errors, stalls, time spent).
fn send(
    fd: &OwnedFd,
    ifindex: i32,
    base: u32,
    templates: &[Vec<u8>],
    opts: &Options,
    shared: &Shared,
) -> anyhow::Result<(u64, u64, u64, Duration)> {
    let mut to = sockaddr_ll(ETH_P_IP, ifindex);
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&opts.server.mac);
    let mut frames = vec![[0u8; FRAME_LEN]; BATCH];
    let mut iov: Vec<libc::iovec> =
        frames.iter_mut().map(|f| libc::iovec { iov_base: f.as_mut_ptr().cast(), iov_len: FRAME_LEN }).collect();
    // SAFETY: zeroed mmsghdrs are valid; the pointers set below (to `to`
    // and `iov`, which point into `frames`) stay valid for the whole loop:
    // none of them is moved or resized.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_ll).cast();
        m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let (mut sent, mut errors, mut stalls, mut written_off) = (0u64, 0u64, 0u64, 0u64);
    let (mut last_answered, mut last_progress) = (0u64, Instant::now());
    let start = Instant::now();
    let deadline = start + opts.max_time;
    while sent < opts.max_packets {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let room = match opts.pace {
            Pace::Rate(pps) => {
                let due = (now - start).as_secs_f64() * pps as f64;
                (due as u64).saturating_sub(sent)
            }
            Pace::Window(window) => {
                let answered = shared.answered.load(Ordering::Acquire);
                if answered != last_answered {
                    (last_answered, last_progress) = (answered, now);
                }
                let outstanding = sent.saturating_sub(answered + written_off);
                if outstanding >= window && now - last_progress >= opts.stall {
                    // Nothing came back for a while: those are lost.
                    written_off = sent - answered;
                    stalls += 1;
                    last_progress = now;
                    window
                } else {
                    window.saturating_sub(outstanding)
                }
            }
        };
        let n = room.min(BATCH as u64).min(opts.max_packets - sent) as usize;
        if n == 0 {
            // Open loop between slots or window full: let the receiver and
            // the kernel run (two shared cores).
            std::thread::yield_now();
            continue;
        }
        for (i, v) in iov.iter().take(n).enumerate() {
            let seq = sent + i as u64;
            // Through the iovec: `frames` itself is borrowed by `iov`.
            // SAFETY: iov[i] points at frames[i], FRAME_LEN bytes.
            let frame = unsafe { std::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), FRAME_LEN) };
            frame.copy_from_slice(&templates[(seq % templates.len() as u64) as usize]);
            set_xid(frame, base.wrapping_add(seq as u32));
        }
        shared.issued.store(sent + n as u64, Ordering::Release);
        // SAFETY: `msgs` holds BATCH >= n initialised headers.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                    errors += 1;
                    std::thread::yield_now();
                }
                _ => return Err(e).context("sendmmsg"),
            }
            // Unsent xids are never reused: a later answer to one is invalid.
            sent += n as u64;
            written_off += n as u64;
            continue;
        }
        let done = r as u64;
        if done < n as u64 {
            errors += 1;
            written_off += n as u64 - done;
        }
        sent += n as u64;
    }
    Ok((sent, errors, stalls, start.elapsed()))
}

/// The receiving loop: counts answers until sending is done and the
/// drain time has passed (or everything is answered).
fn receive(fd: &OwnedFd, base: u32, clients: &[Client], opts: &Options, shared: &Shared) -> anyhow::Result<Stats> {
    let mut stats = Stats::default();
    let mut seen = vec![0u64; opts.max_packets.div_ceil(64) as usize];
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut drain_until: Option<Instant> = None;
    let mut iov: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
    // SAFETY: zeroed mmsghdrs are valid; the iovecs (into `bufs`) stay put
    // for the whole loop.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    loop {
        // SAFETY: BATCH initialised headers; SO_RCVTIMEO bounds the wait.
        let r = unsafe {
            libc::recvmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                return Err(e).context("recvmmsg");
            }
        }
        let issued = shared.issued.load(Ordering::Acquire);
        let mut answered = 0;
        for (m, v) in msgs.iter().zip(&iov).take(r.max(0) as usize) {
            let len = (m.msg_len as usize).min(v.iov_len);
            // SAFETY: the kernel wrote `len` bytes into this iovec's buffer.
            let frame = unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), len) };
            let verdict = match parse_reply(frame) {
                Parsed::NotReply => continue,
                Parsed::Malformed => Verdict::Invalid,
                Parsed::Reply(reply) => judge(&reply, base, issued, clients),
            };
            let seq = match verdict {
                Verdict::Ack(seq) | Verdict::Nak(seq) | Verdict::Echo(seq) => seq,
                Verdict::Invalid => {
                    stats.invalid += 1;
                    continue;
                }
            };
            let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
            if seen[word] & bit != 0 {
                stats.duplicates += 1;
                continue;
            }
            seen[word] |= bit;
            answered += 1;
            match verdict {
                Verdict::Ack(_) => stats.acked += 1,
                Verdict::Nak(_) => stats.naks += 1,
                _ => stats.echoed += 1,
            }
        }
        if answered > 0 {
            shared.answered.fetch_add(answered, Ordering::AcqRel);
        }
        if shared.done.load(Ordering::Acquire) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + opts.drain);
            let all = shared.answered.load(Ordering::Acquire) >= shared.issued.load(Ordering::Acquire);
            if all || Instant::now() >= until {
                break;
            }
        }
    }
    stats.rx_dropped = socket_drops(fd)?;
    Ok(stats)
}

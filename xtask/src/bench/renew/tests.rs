//! Unit tests of the pure parts: log and /proc/stat parsing, and how a
//! target's runs are rated.

use std::time::Duration;

use super::*;
use super::results::{rates, ratio};
use super::run::{answered_acks, parse_cpu_times};

#[test]
fn reads_answered_acks_from_the_shutdown_line() {
    let log =
        "INFO serving\nINFO XDP counters counters=[(NotDhcp, 4), (AnsweredAck, 123456), (PassedNoLease, 0)]\n";
    assert_eq!(answered_acks(log), Some(123_456));
    assert_eq!(answered_acks("INFO serving\n"), None);
}

#[test]
fn busy_is_everything_but_idle_and_iowait() {
    let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
    assert_eq!(parse_cpu_times(stat), Some((160, 1000)));
    assert_eq!(parse_cpu_times("intr 1\n"), None);
}

fn run(rep: u32, acked: u64, echoed: u64) -> Run {
    Run {
        rep,
        stats: Stats { sent: acked + echoed, acked, echoed, sending: Duration::from_secs(1), ..Stats::default() },
        server_cpu_s: None,
        loadgen_cpu_s: 0.5,
        machine_busy: 0.9,
        kernel_acks: None,
        load_before: "1 1 1".into(),
    }
}

#[test]
fn echo_is_rated_by_echoes_and_servers_by_acks() {
    assert_eq!(rates(Target::Echo, &[run(1, 5, 100), run(2, 0, 300), run(3, 0, 200)]), (100.0, 200.0, 300.0));
    assert_eq!(rates(Target::Kea, &[run(1, 10, 100), run(2, 30, 0)]), (10.0, 20.0, 30.0));
    assert_eq!(ratio(1.0, 0.0), 0.0);
}

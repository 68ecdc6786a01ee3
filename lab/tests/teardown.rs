//! Teardown always happens: after a server is SIGKILLed mid-test, after a
//! panic, when a lab-owning process gets SIGTERM or SIGINT, and (through
//! the stale sweep) even when that process itself is SIGKILLed.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{dead, leftovers, proc_state, wait_dead};
use lab::{Kea, Lab, cleanup_stale, venus};

#[test]
fn server_sigkilled_mid_test_then_lab_dropped_leaves_nothing() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (id, links) = (lab.id().to_owned(), lab.switch_links());
    assert!(common::root_links(&links).is_empty(), "lab links in the root namespace");

    let mut kea = Kea::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap()).unwrap();
    let kea_pid = kea.process().pid();
    let status = kea.process().kill().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(dead(kea_pid));

    // A daemon that forked away from us (like dhclient does), and a child
    // still running: both must die with the lab.
    let out = lab.run("mutante1", &["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"]).unwrap();
    let orphan: u32 = out.stdout.trim().parse().unwrap();
    let mut standby = Kea::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap()).unwrap();
    let standby_pid = standby.process().pid();
    assert!(!dead(orphan) && !dead(standby_pid));
    assert!(!leftovers(&id, &links).is_empty());

    drop(lab);
    assert_eq!(leftovers(&id, &links), Vec::<String>::new());
    assert!(dead(orphan), "forked daemon survived teardown");
    assert!(dead(standby_pid), "server survived teardown");
    // Dropping the handle afterwards is harmless.
    assert!(!standby.process().is_running());
}

#[test]
fn panic_in_a_test_body_still_tears_down() {
    let (tx, rx) = mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
        let sleeper = lab.spawn("tormenta", "sleeper", &["sleep", "60"]).unwrap();
        tx.send((lab.id().to_owned(), lab.switch_links(), sleeper.pid())).unwrap();
        std::mem::forget(sleeper); // only the lab may clean this up
        panic!("a test body failing half-way");
    });
    assert!(result.is_err());
    let (id, links, sleeper) = rx.recv().unwrap();
    assert_eq!(leftovers(&id, &links), Vec::<String>::new());
    assert!(dead(sleeper));
}

/// A running `lab-hold` and what it said it made.
struct Holder {
    child: Child,
    id: String,
    namespaces: Vec<String>,
    links: Vec<String>,
    sleeper: u32,
}

fn start_holder() -> Holder {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab-hold"))
        .args(["--seconds", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut namespaces, mut links, mut sleeper) = (Vec::new(), Vec::new(), 0);
    loop {
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("lab-hold did not report ready: {e}");
            }
        };
        let (key, value) = line.split_once(' ').unwrap();
        match key {
            "ns" => namespaces.push(value.to_owned()),
            "link" => links.push(value.to_owned()),
            "pid" => sleeper = value.parse().unwrap(),
            "ready" => return Holder { child, id: value.to_owned(), namespaces, links, sleeper },
            _ => panic!("unexpected line {line:?}"),
        }
    }
}

fn exits_within(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    lab::wait_until("lab-hold to exit", timeout, || Ok(child.try_wait()?)).unwrap()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

fn signal_handler_tears_down_on(sig: i32) {
    let mut h = start_holder();
    assert_eq!(h.namespaces.len(), 7, "5 hosts + 2 switches");
    assert!(h.namespaces.iter().all(|ns| std::path::Path::new("/run/netns").join(ns).exists()));
    assert!(!dead(h.sleeper));

    signal(h.child.id(), sig);
    let status = exits_within(&mut h.child, Duration::from_secs(15));
    assert_eq!(status.signal(), Some(sig), "lab-hold should die of the signal after tearing down: {status}");
    assert_eq!(leftovers(&h.id, &h.links), Vec::<String>::new());
    assert!(wait_dead(h.sleeper, Duration::from_secs(2)));
}

#[test]
fn sigterm_to_a_lab_owner_tears_its_lab_down() {
    signal_handler_tears_down_on(libc::SIGTERM);
}

#[test]
fn sigint_to_a_lab_owner_tears_its_lab_down() {
    signal_handler_tears_down_on(libc::SIGINT);
}

#[test]
fn sigkilled_lab_owner_is_swept_by_cleanup_stale() {
    let mut h = start_holder();
    signal(h.child.id(), libc::SIGKILL);
    // Until we reap it the owner is a zombie with a live parent, which the
    // sweep treats as alive: its leftovers must still all be there.
    lab::wait_until("holder to die", Duration::from_secs(10), || {
        Ok((proc_state(h.child.id()) == Some('Z')).then_some(()))
    })
    .unwrap();
    let left = leftovers(&h.id, &h.links);
    assert_eq!(left.iter().filter(|l| l.starts_with("netns ")).count(), 7, "{left:?}");
    assert!(!dead(h.sleeper), "the sleeper should outlive its SIGKILLed owner");
    cleanup_stale().unwrap();
    assert_eq!(leftovers(&h.id, &h.links).len(), left.len(), "swept a lab whose owner was not reaped");

    h.child.wait().unwrap();
    let swept = cleanup_stale().unwrap();
    assert_eq!(leftovers(&h.id, &h.links), Vec::<String>::new());
    // Another test's Lab::up may have swept first; if this sweep did it,
    // it took all seven.
    let ours = swept.iter().filter(|ns| ns.starts_with(&format!("{}-", h.id))).count();
    assert!(ours == 0 || ours == 7, "swept {swept:?}");
    assert!(wait_dead(h.sleeper, Duration::from_secs(2)), "cleanup_stale left a process in a stale namespace");
}

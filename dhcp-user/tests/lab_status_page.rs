//! The status page as a person sees it: xdhcpd in the `venus` lab's
//! lobezno, a real dhclient lease, then Debian's Chromium (headless, in a
//! client's namespace, over the lab LAN) renders `/` after its script ran.
//! The DOM must show what `status.json` says; the screenshot and the DOM
//! are kept under `target/lab-artifacts/` for people to look at.
//!
//! Root, the lab's tools and `/usr/bin/chromium` are required (`cargo
//! xtask setup` installs them); a missing browser fails the test.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

mod common;

use common::Xdhcpd;
use lab::{Lab, venus};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);
const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 1000;

/// `target/lab-artifacts/`, next to the test binary's profile directory
/// (`target/<profile>/deps/<binary>`), so CARGO_TARGET_DIR is honoured.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()));
    let dir = target.join("lab-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: this test renders the status page in Debian's Chromium; \
         run `cargo xtask setup` (it installs the `chromium` package)"
    );
}

/// Runs headless Chromium in `host` with the flags this machine needs
/// (no sandbox as root, no background connections on a closed network,
/// a fresh profile) plus `extra`; returns stdout.
fn chromium(lab: &Lab, host: &str, profile: &Path, extra: &[&str]) -> String {
    let profile = format!("--user-data-dir={}", profile.display());
    let size = format!("--window-size={WIDTH},{HEIGHT}");
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        // Virtual time runs the page's script (and its status.json fetch)
        // to completion before the dump or screenshot.
        "--virtual-time-budget=5000",
        &profile,
        &size,
    ];
    args.extend_from_slice(extra);
    let out = lab
        .cmd(host, CHROMIUM)
        .args(&args)
        .timeout(Duration::from_secs(90))
        .run()
        .unwrap_or_else(|e| panic!("chromium {args:?}: {e:#}"));
    out.stdout
}

/// Text of each cell of the page's subnet rows (tags stripped).
fn subnet_rows(dom: &str) -> Vec<Vec<String>> {
    dom.split(r#"<tr class="subnet">"#)
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').map_or(0, |i| i + 1)..];
                    let cell = &cell[..cell.find("</td>").unwrap_or(cell.len())];
                    strip_tags(cell)
                })
                .collect()
        })
        .collect()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn status_page_renders_in_chromium() {
    require_chromium();
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let control = format!("{}:8000", venus::PRIMARY_LAN);
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    let mut xdhcpd = Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &["--control-addr", &control]);
    let server = &mut xdhcpd.process;

    // A real lease, so the page has something to count (and the client
    // an address to browse from).
    let client = venus::client(1);
    let m1 = lab.dhclient(&client).unwrap();
    m1.obtain(T)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));

    let base = format!("http://{control}/");
    let status = lab
        .run(
            &client,
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                &format!("{base}status.json"),
            ],
        )
        .unwrap_or_else(|e| panic!("curl status.json: {e:#}"))
        .stdout;
    let status: Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));

    let profile = lab.host_dir(&client).unwrap().join("chromium-profile");
    let dom = chromium(&lab, &client, &profile, &["--dump-dom", &base]);
    let artifacts = artifacts_dir();
    std::fs::write(artifacts.join("status-page.html"), &dom).unwrap();
    // What the script wrote, without the script's own source (which
    // holds every template string).
    let dom = &dom[..dom.find("<script>").expect("the page's script")];

    assert!(
        dom.contains(r#"data-rendered="yes""#),
        "the page's script did not finish a refresh:\n{dom}"
    );
    assert!(
        dom.contains(r#"<span id="err"></span>"#),
        "the page reports an error:\n{dom}"
    );
    let host = status["host"].as_str().unwrap();
    assert!(!host.is_empty(), "{status}");
    assert!(
        dom.contains(&format!(r#"<span id="host">{host}</span>"#)),
        "server name {host:?} not shown:\n{dom}"
    );
    assert!(
        dom.contains(&format!(
            r#"<b id="mode">{}</b>"#,
            status["attach-mode"].as_str().unwrap()
        )),
        "{dom}"
    );
    assert!(dom.contains(r#"<span class="on">serving</span>"#), "{dom}");
    assert!(
        dom.contains("HA: not configured"),
        "no HA in this config, and the page must say so:\n{dom}"
    );

    // Every subnet of status.json is a row with the same numbers.
    let rows = subnet_rows(dom);
    let subnets = status["subnets"].as_array().unwrap();
    assert_eq!(rows.len(), subnets.len(), "{rows:?}\n{status}");
    for s in subnets {
        let prefix = s["prefix"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r.get(1).map(String::as_str) == Some(prefix))
            .unwrap_or_else(|| panic!("no row for {prefix}: {rows:?}"));
        // id, prefix, pool bar, active, expired, declined, total
        assert_eq!(row.len(), 7, "{row:?}");
        for (i, key) in [
            (0, "id"),
            (3, "active"),
            (4, "expired"),
            (5, "declined"),
            (6, "total"),
        ] {
            assert_eq!(row[i], s[key].to_string(), "{prefix} {key}: {row:?}");
        }
    }
    let lan = rows
        .iter()
        .find(|r| r[1] == venus::LAN_SUBNET.to_string())
        .unwrap_or_else(|| panic!("{} not on the page: {rows:?}", venus::LAN_SUBNET));
    assert_eq!(lan[3], "1", "dhclient's lease counted as active: {lan:?}");

    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &lab,
        &client,
        &profile,
        &[&format!("--screenshot={}", shot.display()), &base],
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert_eq!(png_size(&png), (WIDTH, HEIGHT));
    // A blank page compresses to almost nothing; a rendered one does not.
    assert!(png.len() > 20_000, "screenshot only {} bytes", png.len());
    eprintln!("status page screenshot: {}", shot.display());

    server.stop(T).unwrap();
}

#[test]
fn subnet_row_parser() {
    let dom = r#"<table><tbody id="subnets"><tr class="subnet"><td>1</td><td>192.168.50.0/24</td><td><div class="bar" title="1.0%"><span class="a" style="width: 1%;"></span></div></td><td>1</td><td>0</td><td>0</td><td>100</td></tr></tbody></table>"#;
    assert_eq!(
        subnet_rows(dom),
        vec![vec!["1", "192.168.50.0/24", "", "1", "0", "0", "100"]]
    );
}

/// lobezno with its HA relationship and tormenta not started: the page
/// must show the relationship, this server's state as `status-get` says
/// it, and the partner as unreachable (red), and `/metrics` the same state.
#[test]
fn ha_section_renders_in_chromium() {
    require_chromium();
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let cfg = venus::kea_config(venus::PRIMARY).unwrap();
    let me = cfg.this_server().unwrap();
    let control = format!("{}:8000", venus::PRIMARY_LAN);
    let mut xdhcpd = Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &["--control-addr", &control]);
    let server = &mut xdhcpd.process;
    // Past max-response-delay (3 s in venus), so the partner is known to
    // be out of touch rather than not yet asked.
    std::thread::sleep(Duration::from_secs(5));

    let base = format!("http://{control}/");
    let curl = |url: &str| {
        lab.run(venus::PRIMARY, &["curl", "-sS", "--max-time", "5", url])
            .unwrap_or_else(|e| panic!("curl {url}: {e:#}\n{}", server.log()))
            .stdout
    };
    let status: Value = serde_json::from_str(&curl(&format!("{base}status.json"))).unwrap();
    let rel = &status["high-availability"][0];
    let local = &rel["ha-servers"]["local"];
    assert_eq!(local["server-name"], me.as_str(), "{status}");
    let state = local["state"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"));
    let remote = &rel["ha-servers"]["remote"];
    assert_eq!(
        remote["communication-interrupted"], true,
        "tormenta is not running: {status}"
    );

    let profile = dir.join("chromium-profile");
    let dom = chromium(&lab, venus::PRIMARY, &profile, &["--dump-dom", &base]);
    let artifacts = artifacts_dir();
    std::fs::write(artifacts.join("status-page-ha.html"), &dom).unwrap();
    let dom = &dom[..dom.find("<script>").expect("the page's script")];
    assert!(dom.contains(r#"data-rendered="yes""#), "{dom}");
    assert!(!dom.contains("HA: not configured"), "{dom}");
    assert!(
        dom.contains(&format!(r#"<div class="rel" data-relationship="{me}">"#)),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(r#"">{state}</span>"#)),
        "local state {state} not shown:\n{dom}"
    );
    assert!(
        dom.contains(r#"<span class="badge red">unreachable</span>"#),
        "partner not shown as unreachable:\n{dom}"
    );
    assert!(dom.contains(r#"<div class="verdict red">"#), "{dom}");

    let metrics = curl(&format!("{base}metrics"));
    assert!(
        metrics.contains(&format!(
            r#"xdhcp_ha_state{{relationship="{me}",state="{state}"}} 1"#
        )),
        "{metrics}"
    );

    let shot = artifacts.join("status-page-ha.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &lab,
        venus::PRIMARY,
        &profile,
        &[&format!("--screenshot={}", shot.display()), &base],
    );
    assert_eq!(png_size(&std::fs::read(&shot).unwrap()), (WIDTH, HEIGHT));
    server.stop(T).unwrap();
}

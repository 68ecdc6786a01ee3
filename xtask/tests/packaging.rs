//! The Debian package and what it ships, without the lab: the systemd unit passes
//! `systemd-analyze verify`, the Prometheus rules pass `promtool` (syntax and unit tests), the
//! package built by `cargo xtask package` has the files, fields and conffiles it should, dpkg
//! unpacks it into a throw-away root where the binary runs and checks the example config, and
//! its maintainer scripts and start wrapper behave on a copy of this machine's /etc (a private
//! mount namespace, so the host is untouched). Needs root for the last one, as every test here.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("packaging")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// A tool the test cannot do without: missing, it fails saying how to get it.
fn require(tool: &str, package: &str) {
    let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: `cargo xtask setup` installs it (Debian package {package})");
}

/// `systemd-analyze verify` on `unit` (a file named xdhcpd.service): its exit status and what it
/// printed, since it only warns (exit 0) about unknown keys.
fn verify(unit: &Path, man: bool, manpath: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify");
    if !man {
        cmd.arg("--man=no");
    }
    if let Some(p) = manpath {
        cmd.env("MANPATH", p);
    }
    let out = cmd.arg(unit).output().expect("systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// The unit with its start command pointed at `start` (the wrapper is installed elsewhere).
fn unit_with_start(dir: &Path, start: &Path) -> PathBuf {
    let text = fs::read_to_string(packaging().join("xdhcpd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/libexec/xdhcp/xdhcpd-start\n"), "the unit's ExecStart changed");
    let unit = dir.join("xdhcpd.service");
    fs::write(&unit, text.replace("/usr/libexec/xdhcp/xdhcpd-start", start.to_str().unwrap())).unwrap();
    unit
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    require("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_start(dir.path(), &packaging().join("xdhcpd-start"));
    let (ok, said) = verify(&unit, false, None);
    assert!(ok && said.trim().is_empty(), "systemd-analyze verify {}:\n{said}", unit.display());
    // The same check refuses a unit whose command is not there, and reports an unknown key.
    let (ok, said) = verify(&unit_with_start(dir.path(), &dir.path().join("missing")), false, None);
    assert!(!ok && said.contains("missing"), "{said}");
    let unit = unit_with_start(dir.path(), &packaging().join("xdhcpd-start"));
    let text = fs::read_to_string(&unit).unwrap().replace("[Service]\n", "[Service]\nProtectEverything=yes\n");
    fs::write(&unit, text).unwrap();
    let (_, said) = verify(&unit, false, None);
    assert!(said.contains("Unknown key 'ProtectEverything'"), "{said}");
}

#[test]
fn the_alert_rules_pass_promtool() {
    require("promtool", "prometheus");
    let dir = packaging().join("prometheus");
    let check = stdout(Command::new("promtool").current_dir(&dir).args(["check", "rules", "xdhcp-alerts.yml"]));
    assert!(check.contains("SUCCESS"), "{check}");
    // Each alert the issue asks for is there.
    let rules = fs::read_to_string(dir.join("xdhcp-alerts.yml")).unwrap();
    for alert in [
        "XdhcpHaPairNotHealthy",
        "XdhcpHaPartnerDown",
        "XdhcpPoolAbove80Percent",
        "XdhcpPoolAbove90Percent",
        "XdhcpHaUnsentUpdatesGrowing",
        "XdhcpXdpNotAttached",
        "XdhcpXdpOff",
        "XdhcpXdpFellBack",
    ] {
        assert!(rules.contains(&format!("- alert: {alert}\n")), "{alert} missing");
    }
    // Partner down and the pool thresholds fire when they should and not before.
    let test = stdout(Command::new("promtool").current_dir(&dir).args(["test", "rules", "xdhcp-alerts.test.yml"]));
    assert!(test.contains("SUCCESS"), "{test}");
}

/// The package to check: `$XDHCP_DEB` if set, else the one `cargo xtask package` left in
/// `<target>/package/` (`cargo xtask test` packages before it runs the tests), else one built now
/// through the xtask binary cargo built for this test. A package older than `packaging/` fails
/// the comparisons below, which say to run `cargo xtask package`.
fn package() -> PathBuf {
    if let Some(deb) = std::env::var_os("XDHCP_DEB") {
        return PathBuf::from(deb);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let built = fs::read_dir(root.join(&target).join("package"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb") && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    if let Some(deb) = built {
        eprintln!("checking {} (from cargo xtask package)", deb.display());
        return deb;
    }
    let out = stdout(Command::new(env!("CARGO_BIN_EXE_xtask")).arg("package"));
    let line = out.lines().rev().find_map(|l| l.strip_prefix("package: ")).unwrap_or_else(|| panic!("no package line in\n{out}"));
    PathBuf::from(line)
}

/// Whether the packaged copy of `packaging/<file>` is the current one.
fn assert_current(unpacked: &Path, installed: &str, file: &str) {
    let shipped = fs::read(unpacked.join(installed)).unwrap_or_else(|e| panic!("{installed}: {e}"));
    let source = fs::read(packaging().join(file)).unwrap();
    assert!(shipped == source, "the package's {installed} differs from packaging/{file}: run `cargo xtask package`");
}

/// The `dpkg-deb -c` listing: path (without the leading `.`) → permissions.
fn listing(deb: &Path) -> BTreeMap<String, String> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f[1], "root/root", "{l}");
            (f[5].trim_start_matches('.').trim_end_matches('/').to_owned(), f[0].to_owned())
        })
        .collect()
}

#[test]
fn the_package_has_its_files_and_installs_into_a_throwaway_root() {
    let deb = package();
    let files = listing(&deb);
    for (path, mode) in [
        ("/usr/sbin/xdhcpd", "-rwxr-xr-x"),
        ("/usr/lib/systemd/system/xdhcpd.service", "-rw-r--r--"),
        ("/usr/libexec/xdhcp/xdhcpd-start", "-rwxr-xr-x"),
        ("/etc/xdhcp/xdhcpd.json", "-rw-r--r--"),
        ("/etc/default/xdhcpd", "-rw-r--r--"),
        ("/usr/share/xdhcp/grafana/xdhcp-dashboard.json", "-rw-r--r--"),
        ("/usr/share/xdhcp/prometheus/xdhcp-alerts.yml", "-rw-r--r--"),
        ("/usr/share/man/man8/xdhcpd.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/xdhcpd-run.8.gz", "-rw-r--r--"),
        ("/usr/share/bash-completion/completions/xdhcpd", "-rw-r--r--"),
        ("/usr/share/zsh/vendor-completions/_xdhcpd", "-rw-r--r--"),
        ("/usr/share/fish/vendor_completions.d/xdhcpd.fish", "-rw-r--r--"),
        ("/usr/share/doc/xdhcpd/copyright", "-rw-r--r--"),
    ] {
        assert_eq!(files.get(path).map(String::as_str), Some(mode), "{path} in\n{files:#?}");
    }
    for (path, mode) in &files {
        if mode.starts_with('d') {
            assert_eq!(mode, "drwxr-xr-x", "{path}");
        }
    }

    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&deb));
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in\n{info}"))
            .to_owned()
    };
    assert_eq!(field("Package"), "xdhcpd");
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(field("Architecture"), arch.trim());
    let depends = field("Depends");
    assert!(depends.contains("libc6 (>= ") && depends.contains("adduser"), "{depends}");
    for script in ["postinst", "prerm", "postrm", "conffiles", "md5sums"] {
        assert!(info.lines().any(|l| l.split_whitespace().any(|w| w == script)), "{script} missing:\n{info}");
    }

    // dpkg unpacks it into an empty root (no maintainer script runs on --unpack, and it has no
    // preinst) and records both configuration files as conffiles.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    run(Command::new("dpkg").arg("--root").arg(r).args(["--force-not-root", "--unpack"]).arg(&deb));
    let status = fs::read_to_string(r.join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains("Package: xdhcpd\n") && status.contains("Status: install ok unpacked"), "{status}");
    let conffiles = status.split("Conffiles:\n").nth(1).unwrap_or_else(|| panic!("no Conffiles in\n{status}"));
    for f in ["/etc/xdhcp/xdhcpd.json", "/etc/default/xdhcpd"] {
        assert!(conffiles.lines().take(2).any(|l| l.trim_start().starts_with(&format!("{f} "))), "{f}:\n{status}");
    }
    for (installed, file) in [
        ("usr/lib/systemd/system/xdhcpd.service", "xdhcpd.service"),
        ("usr/libexec/xdhcp/xdhcpd-start", "xdhcpd-start"),
        // Conffiles wait as .dpkg-new until the package is configured.
        ("etc/xdhcp/xdhcpd.json.dpkg-new", "xdhcpd.json"),
        ("usr/share/xdhcp/prometheus/xdhcp-alerts.yml", "prometheus/xdhcp-alerts.yml"),
        ("usr/share/xdhcp/grafana/xdhcp-dashboard.json", "grafana/xdhcp-dashboard.json"),
    ] {
        assert_current(r, installed, file);
    }
    for (path, mode) in &files {
        let conffile = ["/etc/xdhcp/xdhcpd.json", "/etc/default/xdhcpd"].contains(&path.as_str());
        let on_disk = r.join(format!("{}{}", path.trim_start_matches('/'), if conffile { ".dpkg-new" } else { "" }));
        assert!(on_disk.exists(), "{path} did not land");
        if mode.starts_with('-') {
            assert!(on_disk.is_file(), "{path}");
        }
    }

    // The installed binary runs, and the example configuration it ships passes its own check.
    let bin = r.join("usr/sbin/xdhcpd");
    let version = stdout(Command::new(&bin).arg("-v"));
    assert_eq!(version.trim(), field("Version"));
    let checked = stdout(Command::new(&bin).arg("-t").arg(r.join("etc/xdhcp/xdhcpd.json.dpkg-new")));
    assert!(checked.contains("OK (1 subnets)"), "{checked}");

    // The installed unit verifies with its real wrapper, man pages included: systemd-analyze
    // looks up each man: entry of Documentation= in MANPATH.
    let unit = unit_with_start(root.path(), &r.join("usr/libexec/xdhcp/xdhcpd-start"));
    let (ok, said) = verify(&unit, true, Some(&r.join("usr/share/man")));
    assert!(ok && said.trim().is_empty(), "{said}");
    // Every man page renders without a groff warning.
    for page in files.keys().filter(|p| p.starts_with("/usr/share/man/man8/")) {
        let out = run(Command::new("man").env("MANWIDTH", "100").args(["--warnings", "-l"]).arg(r.join(&page[1..])));
        assert!(out.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("xdhcpd"), "{page}");
    }
}

/// Runs `script` with bash in a private mount namespace where /etc is a copy of this machine's
/// (and /usr/sbin a copy holding the packaged xdhcpd; /run and /var/log empty), so adduser and the wrapper act for real
/// without touching the host. `$ROOT` is the unpacked package.
fn in_private_etc(root: &Path, script: &str) -> Output {
    let work = tempfile::tempdir().unwrap();
    let prologue = r#"set -eu
mount --make-rprivate /
cp -a /etc "$WORK/etc" && mount --bind "$WORK/etc" /etc
cp -a /usr/sbin "$WORK/sbin" && cp "$ROOT/usr/sbin/xdhcpd" "$WORK/sbin/" && mount --bind "$WORK/sbin" /usr/sbin
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log
"#;
    Command::new("unshare")
        .args(["--mount", "bash", "-c"])
        .arg(format!("{prologue}{script}"))
        .env("WORK", work.path())
        .env("ROOT", root)
        .output()
        .expect("unshare")
}

#[test]
fn maintainer_scripts_are_idempotent_and_the_wrapper_picks_the_config() {
    let deb = package();
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(root.path().join("DEBIAN")));
    for script in ["postinst", "prerm", "postrm"] {
        assert_current(root.path(), &format!("DEBIAN/{script}"), &format!("debian/{script}"));
    }
    assert_current(root.path(), "usr/libexec/xdhcp/xdhcpd-start", "xdhcpd-start");
    let host_passwd = fs::read(Path::new("/etc/passwd")).unwrap();
    let kea_group = Command::new("getent").args(["group", "_kea"]).output().unwrap().status.success();
    // postinst twice (an install, then a reconfigure): the second changes nothing.
    let out = in_private_etc(
        root.path(),
        r#"sh "$ROOT/DEBIAN/postinst" configure ""
cp /etc/passwd /etc/group "$WORK/"
sh "$ROOT/DEBIAN/postinst" configure 0.1.0
cmp /etc/passwd "$WORK/passwd" && cmp /etc/group "$WORK/group"
echo "passwd: $(getent passwd _xdhcp)"
echo "groups: $(id -nG _xdhcp)"
sh "$ROOT/DEBIAN/prerm" remove
sh "$ROOT/DEBIAN/postrm" remove
"#,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let passwd = text.lines().find_map(|l| l.strip_prefix("passwd: ")).unwrap();
    let f: Vec<&str> = passwd.split(':').collect();
    assert_eq!(f.len(), 7, "{passwd}");
    assert_eq!((f[0], f[5], f[6]), ("_xdhcp", "/var/lib/xdhcp", "/usr/sbin/nologin"), "{passwd}");
    assert!(f[2].parse::<u32>().unwrap() < 1000, "a system uid: {passwd}");
    let groups: Vec<&str> = text.lines().find_map(|l| l.strip_prefix("groups: ")).unwrap().split(' ').collect();
    assert!(groups.contains(&"_xdhcp"), "{groups:?}");
    assert_eq!(groups.contains(&"_kea"), kea_group, "in _kea exactly when Kea's group exists: {groups:?}");
    assert_eq!(fs::read(Path::new("/etc/passwd")).unwrap(), host_passwd, "the host's /etc/passwd changed");

    // The wrapper: $XDHCPD_CONFIG first, then Kea's file, then ours. Each config here is refused
    // (an unknown key) before xdhcpd touches anything, and the refusal names the file it read.
    let out = in_private_etc(
        root.path(),
        r#"mkdir -p /etc/kea /etc/xdhcp
for f in /etc/kea/kea-dhcp4.conf /etc/xdhcp/xdhcpd.json "$WORK/mine.json"; do
    echo '{ "Dhcp4": { "not-a-kea-key": 1 } }' > "$f"
done
start="$ROOT/usr/libexec/xdhcp/xdhcpd-start"
echo "== 1"; XDHCPD_CONFIG="$WORK/mine.json" "$start" 2>&1 || true
echo "== 2"; "$start" 2>&1 || true
rm /etc/kea/kea-dhcp4.conf
echo "== 3"; "$start" 2>&1 || true
"#,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let case = |n: usize| text.split("== ").nth(n).unwrap_or_else(|| panic!("case {n} in\n{text}")).to_owned();
    for (n, file) in [(1, "mine.json"), (2, "/etc/kea/kea-dhcp4.conf"), (3, "/etc/xdhcp/xdhcpd.json")] {
        let c = case(n);
        assert!(c.contains(file) && c.contains("not-a-kea-key"), "case {n} should read {file}:\n{c}");
    }
}

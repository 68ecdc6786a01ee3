//! `cargo xtask package`: the Debian package `xdhcpd_<version>_<arch>.deb`.
//!
//! The tree is staged here and packed with `dpkg-deb --build` (what `cargo deb` would do, without
//! a crate to install or anything to fetch at package time); `dpkg-shlibdeps` computes the shared
//! library dependencies from the binary itself. The files the package ships live in `packaging/`
//! (unit, start wrapper, example config, maintainer scripts, Grafana dashboard, Prometheus alert
//! rules); man pages and shell completions are generated from xdhcpd's clap definitions.
//!
//! | installed at | from |
//! |---|---|
//! | `/usr/sbin/xdhcpd` | the release build, stripped |
//! | `/usr/lib/systemd/system/xdhcpd.service` | `packaging/xdhcpd.service` |
//! | `/usr/libexec/xdhcp/xdhcpd-start` | `packaging/xdhcpd-start` (picks the config) |
//! | `/etc/xdhcp/xdhcpd.json`, `/etc/default/xdhcpd` | `packaging/xdhcpd.json`, `packaging/default` (conffiles) |
//! | `/usr/share/xdhcp/grafana/`, `/usr/share/xdhcp/prometheus/` | `packaging/grafana/`, `packaging/prometheus/` |
//! | `/usr/share/man/man8/xdhcpd*.8.gz`, completions | generated |
//!
//! The last line printed is `package: PATH`, which tests read.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{build, run_cmd, target_dir, workspace_root};

/// The package's name, also the service's and the binary's.
pub const NAME: &str = "xdhcpd";

/// Builds the release binary and the package; returns the `.deb`'s path.
pub fn run() -> anyhow::Result<PathBuf> {
    let bin = build::release()?;
    let version = version_of(&bin)?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let out_dir = target_dir().join("package");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Per process, so two packagings running at once (tests) never share a tree.
    let stage = out_dir.join(format!("stage.{}", std::process::id()));
    let _cleanup = RemoveOnDrop(stage.clone());
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    stage_tree(&stage, &bin)?;
    docs(&out_dir, &stage)?;
    let depends = depends(&out_dir, &stage.join("usr/sbin/xdhcpd"))?;
    control(&stage, &version, &arch, &depends)?;
    let deb = out_dir.join(format!("{NAME}_{version}_{arch}.deb"));
    let partial = out_dir.join(format!(".{NAME}.{}.deb", std::process::id()));
    run_cmd(Command::new("dpkg-deb").args(["--root-owner-group", "-Zxz", "--build"]).arg(&stage).arg(&partial))
        .context("dpkg-deb --build")?;
    fs::rename(&partial, &deb).with_context(|| format!("moving the package to {}", deb.display()))?;
    println!("package: {}", deb.display());
    Ok(deb)
}

/// Removes a staging tree however packaging ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `xdhcpd -v` prints `0.1.0`, as `kea-dhcp4 -v` prints its version: the package carries the
/// version the binary reports.
fn version_of(bin: &Path) -> anyhow::Result<String> {
    let text = output(Command::new(bin).arg("-v"))?;
    let version = text.lines().next().filter(|v| !v.is_empty()).with_context(|| format!("{} -v printed {text:?}", bin.display()))?;
    anyhow::ensure!(
        version.chars().all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c)),
        "{version:?} is not a Debian version"
    );
    Ok(version.to_owned())
}

/// Runs a command and returns its trimmed stdout, failing with its stderr.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout).with_context(|| format!("{cmd:?} printed non-UTF-8"))?.trim().to_owned())
}

/// Copies `from` (relative to `packaging/` unless absolute) to `stage/to` with `mode`.
fn install(stage: &Path, from: &Path, to: &str, mode: u32) -> anyhow::Result<()> {
    let from = workspace_root().join("packaging").join(from);
    let dest = stage.join(to);
    fs::create_dir_all(dest.parent().expect("destinations are files under the stage"))?;
    fs::copy(&from, &dest).with_context(|| format!("copying {} to {}", from.display(), dest.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Files as installed: (source in `packaging/`, destination, mode).
const FILES: &[(&str, &str, u32)] = &[
    ("xdhcpd.service", "usr/lib/systemd/system/xdhcpd.service", 0o644),
    ("xdhcpd-start", "usr/libexec/xdhcp/xdhcpd-start", 0o755),
    ("xdhcpd.json", "etc/xdhcp/xdhcpd.json", 0o644),
    ("default", "etc/default/xdhcpd", 0o644),
    ("grafana/xdhcp-dashboard.json", "usr/share/xdhcp/grafana/xdhcp-dashboard.json", 0o644),
    ("prometheus/xdhcp-alerts.yml", "usr/share/xdhcp/prometheus/xdhcp-alerts.yml", 0o644),
    ("copyright", "usr/share/doc/xdhcpd/copyright", 0o644),
    ("debian/postinst", "DEBIAN/postinst", 0o755),
    ("debian/prerm", "DEBIAN/prerm", 0o755),
    ("debian/postrm", "DEBIAN/postrm", 0o755),
];

/// Configuration files dpkg must not overwrite once the operator edited them.
pub const CONFFILES: &[&str] = &["/etc/xdhcp/xdhcpd.json", "/etc/default/xdhcpd"];

fn stage_tree(stage: &Path, bin: &Path) -> anyhow::Result<()> {
    let sbin = stage.join("usr/sbin");
    fs::create_dir_all(&sbin)?;
    // Debian ships binaries without debug symbols; the embedded eBPF object is data and stays.
    run_cmd(Command::new("strip").args(["--strip-debug", "-o"]).arg(sbin.join("xdhcpd")).arg(bin))?;
    for (from, to, mode) in FILES {
        install(stage, Path::new(from), to, *mode)?;
    }
    fs::write(stage.join("DEBIAN/conffiles"), CONFFILES.iter().map(|f| format!("{f}\n")).collect::<String>())?;
    // Directories 0755 whatever the umask; files keep the modes set above.
    for dir in walk(stage)?.into_iter().filter(|p| p.is_dir()) {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    }
    fs::set_permissions(stage, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Man pages (gzipped, as Debian installs them) and completions, generated by `xtask-docs` from
/// xdhcpd's clap definitions. Built in release like the binary just built, so the library is
/// already compiled.
fn docs(out_dir: &Path, stage: &Path) -> anyhow::Result<()> {
    let gen_dir = out_dir.join(format!("docs.{}", std::process::id()));
    let _cleanup = RemoveOnDrop(gen_dir.clone());
    run_cmd(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["run", "--quiet", "--release", "-p", "xtask-docs", "--"])
            .arg(&gen_dir),
    )
    .context("generating man pages and completions")?;
    let man8 = stage.join("usr/share/man/man8");
    fs::create_dir_all(&man8)?;
    let mut pages = 0;
    for page in fs::read_dir(gen_dir.join("man8"))? {
        let page = page?.path();
        let name = page.file_name().and_then(|n| n.to_str()).context("man page name")?.to_owned();
        let gz = fs::File::create(man8.join(format!("{name}.gz")))?;
        // -n: no name or time stamp inside, so the same page packs the same bytes.
        run_cmd(Command::new("gzip").args(["-9n", "-c"]).arg(&page).stdout(gz))?;
        fs::set_permissions(man8.join(format!("{name}.gz")), fs::Permissions::from_mode(0o644))?;
        pages += 1;
    }
    anyhow::ensure!(pages > 1, "xtask-docs wrote {pages} man pages");
    let completions = gen_dir.join("completions");
    for (from, to) in [
        ("xdhcpd.bash", "usr/share/bash-completion/completions/xdhcpd"),
        ("_xdhcpd", "usr/share/zsh/vendor-completions/_xdhcpd"),
        ("xdhcpd.fish", "usr/share/fish/vendor_completions.d/xdhcpd.fish"),
    ] {
        install(stage, &completions.join(from), to, 0o644)?;
    }
    Ok(())
}

/// Every path under `dir`, sorted (directories before their contents).
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            all.push(p);
        }
    }
    all.sort();
    Ok(all)
}

/// `Depends:` from the binary's shared libraries (`dpkg-shlibdeps`, which needs a
/// `debian/control` to run in), plus `adduser` for the postinst.
fn depends(out_dir: &Path, binary: &Path) -> anyhow::Result<String> {
    let work = out_dir.join(format!("shlibdeps.{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    fs::create_dir_all(work.join("debian"))?;
    fs::write(work.join("debian/control"), format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"))?;
    let line = output(Command::new("dpkg-shlibdeps").current_dir(&work).arg("-O").arg(format!("-e{}", binary.display())))
        .context("dpkg-shlibdeps (Debian package dpkg-dev; cargo xtask setup installs it)")?;
    let libs = line.strip_prefix("shlibs:Depends=").with_context(|| format!("dpkg-shlibdeps printed {line:?}"))?;
    Ok(format!("{libs}, adduser"))
}

fn control(stage: &Path, version: &str, arch: &str, depends: &str) -> anyhow::Result<()> {
    let md5sums = output(
        Command::new("sh")
            .current_dir(stage)
            .args(["-c", "find etc usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum"]),
    )?;
    fs::write(stage.join("DEBIAN/md5sums"), format!("{md5sums}\n"))?;
    let bytes: u64 = walk(stage)?
        .iter()
        .filter(|p| !p.starts_with(stage.join("DEBIAN")))
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .map(|m| if m.is_file() { m.len() } else { 0 })
        .sum();
    let text = format!(
        "Package: {NAME}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: xdhcp developers <xdhcp@invalid>\n\
         Installed-Size: {kib}\n\
         Depends: {depends}\n\
         Suggests: kea-ctrl-agent, prometheus\n\
         Section: net\n\
         Priority: optional\n\
         Description: high-availability DHCPv4 server reading Kea's configuration, with an XDP fast path\n \
         xdhcpd reads ISC Kea's Dhcp4 configuration as it is, keeps leases in Kea's memfile CSV\n \
         format and speaks Kea's HA protocol (with another xdhcpd or with Kea). Renewals of known\n \
         leases and requests from reserved clients are answered in the kernel by an XDP program.\n \
         .\n \
         The package installs the daemon, a hardened systemd unit running it as the _xdhcp user\n \
         with only the capabilities it needs, an example configuration, man pages, shell\n \
         completions, a Grafana dashboard and Prometheus alert rules.\n",
        kib = bytes.div_ceil(1024),
    );
    fs::write(stage.join("DEBIAN/control"), text)?;
    Ok(())
}

//! The importer's I/O shell: reads the files, writes the results.
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{DEFAULT_HA_PORT, ImportOptions};

/// Arguments of `xdhcpd import-dhcpd`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// This server's dhcpd.conf (`include "file";` is read relative to it,
    /// then to the working directory).
    #[arg(long, value_name = "FILE")]
    pub conf: PathBuf,
    /// This server's dhcpd.leases: active leases go to DIR/<name>-leases4.csv.
    #[arg(long, value_name = "FILE")]
    pub leases: Option<PathBuf>,
    /// Where to write <name>.json, <name>-import-report.txt and <name>-leases4.csv.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// This server's HA peer name and output name (default: <failover
    /// peer>-primary or -secondary by its dhcpd role, else the file stem).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// The failover partner's HA peer name (default: <failover peer>-primary
    /// or -secondary). Give the same pair of names to both imports.
    #[arg(long, value_name = "NAME")]
    pub peer_name: Option<String>,
    /// Port of the HA HTTP listeners in the peer URLs (http://<failover
    /// address>:PORT/); dhcpd's failover port speaks another protocol.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_HA_PORT)]
    pub ha_port: u16,
    /// Interface to serve (repeatable; dhcpd takes them on its command
    /// line). Default: "*".
    #[arg(long, value_name = "IFACE")]
    pub interface: Vec<String>,
}

/// Reads `name` as `include` does: relative to the including file's
/// directory first, then as given.
fn read_include(base: &Path, name: &str) -> Result<(String, String), String> {
    let candidates = [base.join(name), PathBuf::from(name)];
    let mut last = String::new();
    for c in candidates {
        match std::fs::read(&c) {
            Ok(bytes) => {
                return Ok((
                    c.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
            Err(e) => last = format!("{}: {e}", c.display()),
        }
    }
    Err(last)
}

/// Paths written by [`run`].
#[derive(Debug, Clone)]
pub struct Written {
    /// The Kea configuration.
    pub config: PathBuf,
    /// The report.
    pub report: PathBuf,
    /// The lease CSV, when leases were given.
    pub leases: Option<PathBuf>,
}

/// Imports and writes the files; returns what was written and the report.
pub fn import(args: &Args) -> anyhow::Result<(Written, String)> {
    let conf_name = args.conf.display().to_string();
    let bytes = std::fs::read(&args.conf).with_context(|| format!("{conf_name}: cannot read"))?;
    let text = String::from_utf8_lossy(&bytes);
    let base = args
        .conf
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let opts = ImportOptions {
        server_name: args.server_name.clone(),
        peer_name: args.peer_name.clone(),
        ha_port: args.ha_port,
        interfaces: args.interface.clone(),
        fallback_name: args
            .conf
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("dhcpd")
            .to_owned(),
    };
    let imported = super::import_conf(
        &text,
        &conf_name,
        &mut |n: &str| read_include(&base, n),
        &opts,
    )?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("{}: cannot create", args.out_dir.display()))?;
    let name = &imported.name;
    let config_path = args.out_dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(&imported.config)? + "\n";
    std::fs::write(&config_path, json)
        .with_context(|| format!("{}: cannot write", config_path.display()))?;

    let mut report = format!(
        "# xdhcpd import-dhcpd {conf_name} -> {}\n",
        config_path.display()
    );
    report.push_str(&imported.report.render());
    let mut leases_path = None;
    if let Some(lp) = &args.leases {
        let lname = lp.display().to_string();
        let ltext = std::fs::read(lp).with_context(|| format!("{lname}: cannot read"))?;
        let li = super::import_leases(&String::from_utf8_lossy(&ltext), &lname, &imported)?;
        let out = args.out_dir.join(format!("{name}-leases4.csv"));
        std::fs::write(&out, super::leases::to_csv(&li.leases))
            .with_context(|| format!("{}: cannot write", out.display()))?;
        report.push_str(&li.render());
        report.push_str(&format!(
            "leases: written to {}; copy it to /var/lib/kea/{name}-leases4.csv (lease-database.name) before starting\n",
            out.display()
        ));
        leases_path = Some(out);
    }
    // The output must load; say so in the report either way.
    let check = crate::config::load(&config_path);
    match &check {
        Ok(_) => report.push_str(&format!(
            "config: {} loads in xdhcpd\n",
            config_path.display()
        )),
        Err(e) => report.push_str(&format!(
            "config: {} does NOT load in xdhcpd: {e}\n",
            config_path.display()
        )),
    }
    let report_path = args.out_dir.join(format!("{name}-import-report.txt"));
    std::fs::write(&report_path, &report)
        .with_context(|| format!("{}: cannot write", report_path.display()))?;
    check.with_context(|| {
        format!(
            "{}: the imported configuration does not load",
            config_path.display()
        )
    })?;
    Ok((
        Written {
            config: config_path,
            report: report_path,
            leases: leases_path,
        },
        report,
    ))
}

/// `xdhcpd import-dhcpd`: imports and prints the report.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (_, report) = import(args)?;
    print!("{report}");
    Ok(())
}

//! `xtask-docs OUT_DIR`: writes xdhcpd's man pages (`man8/xdhcpd.8`, one `xdhcpd-<command>.8`
//! per subcommand) and its bash, zsh and fish completions under OUT_DIR, from the clap
//! definitions the binary parses its arguments with ([`dhcp_user::cli`]), so they cannot drift
//! from it. `cargo xtask package` runs it and installs the results.

use std::{fs, path::Path};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os().nth(1).context("usage: xtask-docs OUT_DIR")?;
    let out = Path::new(&out);
    let cmd = dhcp_user::cli::Cli::command();
    man_pages(&cmd, &out.join("man8"))?;
    let completions = out.join("completions");
    fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd.clone(), "xdhcpd", &completions)
            .with_context(|| format!("{shell} completions"))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The top page, then one page per subcommand named `xdhcpd-<name>` as git and cargo do.
fn man_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The version xdhcpd reports (`-v`), in each page's footer.
    let version = dhcp_user::cli::version();
    let cmd = cmd.clone().disable_help_subcommand(true).version(version);
    write_page(&clap_mangen::Man::new(cmd.clone()).section("8"), &dir.join("xdhcpd.8"))?;
    // clap's names are `&'static str` (without its `string` feature, which would rebuild the
    // library for this one program): leak the few this short-lived process makes.
    for sub in cmd.get_subcommands() {
        let name = leak(format!("xdhcpd-{}", sub.get_name()));
        let page = sub.clone().name(name).bin_name(format!("xdhcpd {}", sub.get_name())).version(version);
        write_page(&clap_mangen::Man::new(page).section("8"), &dir.join(format!("{name}.8")))?;
    }
    Ok(())
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn write_page(man: &clap_mangen::Man, path: &Path) -> anyhow::Result<()> {
    let mut text = Vec::new();
    man.render(&mut text)?;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

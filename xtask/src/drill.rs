//! `cargo xtask drill [--runs N] [--filter NAME]`: the HA drills
//! (`dhcp-user/tests/lab_ha*.rs`, real dhclient clients in the venus lab)
//! run N times each under cargo-nextest, one test at a time. Each drill
//! appends a JSON line to `$XDHCP_DRILL_REPORT` (see
//! `dhcp-user/tests/common/drill.rs`); this collects them with nextest's
//! verdicts into DRILLS.md (min/median/max of time to serve, outage and
//! rejoin; lost ACKed leases, duplicates, reservation kept; passes and
//! failures) and every line into `bench/drills.json`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::bench::{Machine, commit, spread};
use crate::{run_cmd, setup, workspace_root};

/// Test binaries holding drills, run if present.
const SUITES: [&str; 4] = ["lab_ha", "lab_ha_kea", "lab_ha_hub", "lab_ha_handover"];

/// `cargo xtask drill` options.
#[derive(clap::Args)]
pub struct Args {
    /// Runs of every drill.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Only tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
}

/// Sets up, builds once, runs the drills, writes DRILLS.md.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    setup::run()?;
    let filters: Vec<String> = args.filter.iter().cloned().collect();
    let Collected { reports, verdicts, lines } = collect(&filters, args.runs)?;
    let root = workspace_root();
    let md = markdown(&reports, &verdicts, args, started.elapsed().as_secs_f64());
    std::fs::write(root.join("DRILLS.md"), md).context("writing DRILLS.md")?;
    std::fs::create_dir_all(root.join("bench")).context("creating bench/")?;
    std::fs::write(root.join("bench/drills.json"), format!("[\n{}\n]\n", lines.join(",\n")))
        .context("writing bench/drills.json")?;
    let failed: usize = verdicts.values().flatten().filter(|p| !**p).count();
    println!("[drill] wrote DRILLS.md and bench/drills.json ({} reports, {failed} failed runs)", reports.len());
    anyhow::ensure!(failed == 0, "{failed} drill runs failed (see DRILLS.md)");
    Ok(())
}

/// What the drill runs left: every report, and nextest's verdicts.
pub struct Collected {
    /// The drills' report lines, parsed.
    pub reports: Vec<Json>,
    /// `<suite> <test>` → pass/fail per run.
    pub verdicts: BTreeMap<String, Vec<bool>>,
    /// The report lines as written (for the JSON files).
    pub lines: Vec<String>,
}

/// Builds the drill suites once, then runs the tests matching `filters`
/// (every drill when empty) `runs` times, one test at a time, and
/// collects their reports. Failing runs are recorded, not fatal: the
/// caller decides.
pub fn collect(filters: &[String], runs: u32) -> anyhow::Result<Collected> {
    let root = workspace_root();
    let suites: Vec<&str> =
        SUITES.iter().copied().filter(|s| root.join("dhcp-user/tests").join(format!("{s}.rs")).exists()).collect();
    let mut base = vec!["nextest".to_owned(), "run".into(), "-p".into(), "dhcp-user".into()];
    for s in &suites {
        base.extend(["--test".into(), (*s).into()]);
    }
    println!("[drill] building {} once", suites.join(", "));
    run_cmd(Command::new(env!("CARGO")).current_dir(&root).args(&base).arg("--no-run"))?;

    let dir = root.join("target").join("drill");
    std::fs::create_dir_all(&dir).context("creating target/drill")?;
    let report = dir.join("reports.jsonl");
    let _ = std::fs::remove_file(&report);
    // test → verdict per run.
    let mut verdicts: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for run in 1..=runs.max(1) {
        println!("[drill] run {run}/{}", runs.max(1));
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&root)
            .args(&base)
            .args(["--no-fail-fast", "--test-threads", "1", "--cargo-quiet"])
            .env("XDHCP_DRILL_REPORT", &report)
            .env("XDHCP_DRILL_RUN", run.to_string())
            .args(filters)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting cargo nextest")?;
        // nextest writes its status lines to stderr; keep stdout drained.
        let out = child.stdout.take().context("no stdout")?;
        let drain = std::thread::spawn(move || BufReader::new(out).lines().count());
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for line in BufReader::new(child.stderr.take().context("no stderr")?).lines() {
            let line = line?;
            if let Some((test, pass)) = status_line(&line) {
                if !seen.contains_key(&test) {
                    println!("    {line}");
                }
                seen.insert(test, pass);
            } else if line.starts_with("drill report:") || line.contains("Summary [") {
                println!("    {}", line.trim());
            }
        }
        let _ = child.wait();
        let _ = drain.join();
        for (test, pass) in seen {
            verdicts.entry(test).or_default().push(pass);
        }
    }
    if verdicts.is_empty() {
        bail!("no test ran (filters {filters:?})");
    }
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    let reports = lines.iter().map(|l| Json::parse(l)).collect::<Result<_, _>>()?;
    Ok(Collected { reports, verdicts, lines })
}

/// `PASS [  9.7s] (1/6) dhcp-user::lab_ha name` → (`lab_ha name`, true);
/// FAIL, TIMEOUT, SIGKILL… → false.
fn status_line(line: &str) -> Option<(String, bool)> {
    let t = line.trim_start();
    let (status, rest) = t.split_once(' ')?;
    if !matches!(status, "PASS" | "FAIL" | "TIMEOUT" | "SIGKILL" | "SIGSEGV" | "SIGABRT" | "ABORT" | "LEAK-FAIL") {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('[')?.split_once(']')?.1.trim();
    let rest = if rest.starts_with('(') { rest.split_once(") ")?.1 } else { rest };
    let (binary, test) = rest.split_once(' ')?;
    let suite = binary.rsplit("::").next()?;
    Some((format!("{suite} {}", test.trim()), status == "PASS"))
}

fn markdown(reports: &[Json], verdicts: &BTreeMap<String, Vec<bool>>, args: &Args, secs: f64) -> String {
    let m = Machine::probe();
    let mut md = String::from("# HA drills\n\n");
    md.push_str(
        "Generated by `cargo xtask drill` (do not edit by hand). Each drill is a test in \
         `dhcp-user/tests/lab_ha*.rs`: two HA servers and real ISC dhclient clients in the venus lab, \
         background probers re-obtaining their leases (INIT-REBOOT, one attempt at most every 300 ms, \
         1 s to answer) while a server is killed, frozen, stopped or cut off. A stop (SIGTERM, as \
         `systemctl stop` sends) is a planned handover: the stopping xdhcpd asks its partner (xdhcpd or Kea 2.2) \
         to take over with `ha-maintenance-start` before it exits (the `planned-handover*` drills). Per failure:\n\n\
         - **time to serve**: from the failure to the first answer carrying the survivor's server identifier;\n\
         - **outage**: the longest gap between answers any client got, from the last one before the failure to the survivor's first \
           (answers from a frozen server's kernel program count: clients saw them);\n\
         - **rejoin**: from the failed server's return to its first answer;\n\
         - **lost**: ACKed leases (every lease in the clients' dhclient script events) missing from the \
           survivor's lease file at the end, or stored with another client, a non-default state or an expiry \
           more than 2 s earlier than the client was told;\n\
         - **duplicates**: addresses held by two clients; **mutante3**: runs in which it only ever held 192.168.50.33.\n\n\
         A drill's time is the slowest of its failures. Times in seconds, min / median / max over runs.\n\n",
    );
    let _ = writeln!(
        md,
        "| drill | test | runs passed | time to serve | outage | rejoin | lost ACKed leases | duplicates | mutante3 kept .33 |"
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut by_drill: BTreeMap<(String, String), Vec<&Json>> = BTreeMap::new();
    for r in reports {
        by_drill.entry((r.str("test").to_owned(), r.str("drill").to_owned())).or_default().push(r);
    }
    let cell = |rs: &[&Json], key: &str| {
        let v: Vec<f64> = rs.iter().filter_map(|r| r.num(key)).collect();
        if v.is_empty() {
            return "–".to_owned();
        }
        let (lo, med, hi) = spread(&v);
        format!("{lo:.1} / **{med:.1}** / {hi:.1}")
    };
    let mut listed = Vec::new();
    for ((test, drill), rs) in &by_drill {
        let key = verdicts.keys().find(|k| k.ends_with(&format!(" {test}"))).cloned().unwrap_or_else(|| test.clone());
        let v = verdicts.get(&key).cloned().unwrap_or_default();
        listed.push(key.clone());
        let sum = |k: &str| rs.iter().filter_map(|r| r.num(k)).sum::<f64>();
        let kept = rs.iter().filter(|r| r.get("reserved_kept") == Some(&Json::Bool(true))).count();
        let took_part = rs.iter().filter(|r| matches!(r.get("reserved_kept"), Some(Json::Bool(_)))).count();
        let _ = writeln!(
            md,
            "| {drill} | `{key}` | {}/{} | {} | {} | {} | {} | {} | {} |",
            v.iter().filter(|p| **p).count(),
            v.len(),
            cell(rs, "time_to_serve_s"),
            cell(rs, "outage_s"),
            cell(rs, "rejoin_s"),
            sum("lost"),
            sum("duplicates"),
            if took_part == 0 { "–".to_owned() } else { format!("{kept}/{took_part}") }
        );
    }
    for (key, v) in verdicts.iter().filter(|(k, _)| !listed.contains(k)) {
        let _ = writeln!(
            md,
            "| (no report) | `{key}` | {}/{} | – | – | – | – | – | – |",
            v.iter().filter(|p| **p).count(),
            v.len()
        );
    }
    md.push_str("\n## Per failure (medians over runs)\n\n| drill | failure | survivor | time to serve | outage |\n|---|---|---|---:|---:|\n");
    for ((_, drill), rs) in &by_drill {
        let mut per: BTreeMap<(usize, String, String), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for r in rs {
            for (i, f) in r.get("faults").and_then(Json::array).unwrap_or(&[]).iter().enumerate() {
                let e = per.entry((i, f.str("what").to_owned(), f.str("survivor").to_owned())).or_default();
                e.0.extend(f.num("time_to_serve_s"));
                e.1.extend(f.num("outage_s"));
            }
        }
        for ((_, what, survivor), (serve, outage)) in per {
            let med = |v: &[f64]| if v.is_empty() { "–".to_owned() } else { format!("{:.2}", spread(v).1) };
            let _ = writeln!(md, "| {drill} | {what} | {survivor} | {} | {} |", med(&serve), med(&outage));
        }
    }
    let _ = write!(
        md,
        "\n- Runs: {} per drill{}, one test at a time (`cargo nextest run --test-threads 1`); whole run {:.1} min\n\
         - Machine: {} cores ({}), kernel {}; load average after: {}\n\
         - Commit: {}\n\
         - Every report line: `bench/drills.json`\n",
        args.runs,
        args.filter.as_ref().map(|f| format!(", tests matching `{f}`")).unwrap_or_default(),
        secs / 60.0,
        m.cores,
        m.cpu,
        m.kernel,
        crate::bench::load_average(),
        commit()
    );
    md
}

/// Just enough JSON for the drill reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(text: &str) -> anyhow::Result<Json> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value().with_context(|| format!("parsing {text:?}"))?;
        p.ws();
        anyhow::ensure!(p.i == p.s.len(), "trailing bytes in {text:?}");
        Ok(v)
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }

    pub fn num(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Json::Str(s)) => s,
            _ => "",
        }
    }

    pub fn array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> anyhow::Result<()> {
        self.ws();
        anyhow::ensure!(self.s.get(self.i) == Some(&c), "expected {:?} at {}", c as char, self.i);
        self.i += 1;
        Ok(())
    }

    fn value(&mut self) -> anyhow::Result<Json> {
        self.ws();
        let rest = &self.s[self.i..];
        for (word, v) in [("null", Json::Null), ("true", Json::Bool(true)), ("false", Json::Bool(false))] {
            if rest.starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(v);
            }
        }
        match rest.first().context("unexpected end")? {
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                    } else {
                        self.eat(b']')?;
                        return Ok(Json::Arr(a));
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.insert(k, self.value()?);
                    self.ws();
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                    } else {
                        self.eat(b'}')?;
                        return Ok(Json::Obj(m));
                    }
                }
            }
            _ => {
                let end = rest.iter().position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'));
                let n = &rest[..end.unwrap_or(rest.len())];
                self.i += n.len();
                Ok(Json::Num(std::str::from_utf8(n)?.parse().with_context(|| format!("number at {}", self.i))?))
            }
        }
    }

    fn string(&mut self) -> anyhow::Result<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.i).context("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *self.s.get(self.i).context("bad escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4).context("bad \\u")?)?;
                            self.i += 4;
                            out.push(char::from_u32(u32::from_str_radix(hex, 16)?).unwrap_or('?'));
                        }
                        other => out.push(other as char),
                    }
                }
                _ => {
                    // Copy the whole UTF-8 sequence.
                    let start = self.i - 1;
                    while self.s.get(self.i).is_some_and(|b| b & 0xC0 == 0x80) {
                        self.i += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.i])?);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_drill_report_and_nextest_lines() {
        let j = Json::parse(r#"{"drill":"kill-primary","faults":[{"what":"a → b","time_to_serve_s":4.381}],"lost":0,"rejoin_s":null,"reserved_kept":true,"x":-1.5e1}"#).unwrap();
        assert_eq!(j.str("drill"), "kill-primary");
        assert_eq!(j.num("lost"), Some(0.0));
        assert_eq!(j.num("x"), Some(-15.0));
        assert_eq!(j.get("rejoin_s"), Some(&Json::Null));
        let f = &j.get("faults").unwrap().array().unwrap()[0];
        assert_eq!((f.str("what"), f.num("time_to_serve_s")), ("a → b", Some(4.381)));
        assert!(Json::parse("{\"a\":1").is_err());
        assert_eq!(
            status_line("        PASS [   9.744s] (1/6) dhcp-user::lab_ha both_servers_restarted_from_disk"),
            Some(("lab_ha both_servers_restarted_from_disk".into(), true))
        );
        assert_eq!(status_line("        FAIL [   4.539s] dhcp-user::lab_ha x").map(|s| s.1), Some(false));
        assert_eq!(status_line("    test x ... FAILED"), None);
    }
}

//! Unit tests on a small made-up baseline: outcomes, selections, partial
//! runs, the report's tables and the comparison with Kea.

use super::*;
use crate::drill::Json;

const BASE: &str = "outcome\tseconds\ttest\tmessage\n\
    passed\t3.7\ttests/a/test_x.py::test_one\t\n\
    passed\t1.0\ttests/a/test_x.py::test_two[memfile]\t\n\
    failed\t0.8\ttests/a/test_x.py::test_three\tAssertionError: Server operation: start failed!\n\
    passed\t2.0\ttests/b/test_y.py::test_four\t\n";

fn base() -> BTreeMap<String, Row> {
    parse_outcomes(BASE).unwrap().into_iter().map(|r| (r.id.clone(), r)).collect()
}

fn run(date: &str, sel: &[&str]) -> Run {
    Run {
        date: date.into(),
        commit: "abc1234".into(),
        server: "xdhcpd run".into(),
        selection: sel.iter().map(|s| (*s).to_owned()).collect(),
        forge_commit: "189a7a1".into(),
        wall_time_s: 120.0,
    }
}

fn row(o: Outcome, id: &str, msg: &str) -> Row {
    Row { outcome: o, seconds: 1.0, id: id.into(), message: msg.into() }
}

#[test]
fn parses_outcomes() {
    let rows = parse_outcomes(BASE).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1].id, "tests/a/test_x.py::test_two[memfile]");
    assert_eq!(rows[2].outcome, Outcome::Failed);
    assert_eq!(rows[2].message, "AssertionError: Server operation: start failed!");
    assert_eq!(rows[0].message, "");
    assert!(parse_outcomes("outcome\tseconds\ttest\tmessage\nweird\t1\tx\t\n").is_err());
    assert!(parse_outcomes("passed\t1.0\n").is_err());
    assert_eq!(file_of("tests/a/test_x.py::test_one"), "tests/a/test_x.py");
}

#[test]
fn selection_items_cover_their_tests() {
    assert!(covers("tests/a", "tests/a/test_x.py::test_one"));
    assert!(covers("tests/a/", "tests/a/test_x.py::test_one"));
    assert!(!covers("tests/a", "tests/ab/test_x.py::test_one"));
    assert!(covers("tests/a/test_x.py", "tests/a/test_x.py::test_two[memfile]"));
    assert!(covers("tests/a/test_x.py::test_two", "tests/a/test_x.py::test_two[memfile]"));
    assert!(!covers("tests/a/test_x.py::test_t", "tests/a/test_x.py::test_two"));
    assert!(!covers("-k", "tests/a/test_x.py::test_two"));
}

#[test]
fn partial_runs_build_up_one_picture() {
    let mut p = Picture::default();
    p.merge(
        run("2026-11-25T10:00:00Z", &[]),
        &[
            row(Outcome::Failed, "tests/a/test_x.py::test_one", "no reply"),
            row(Outcome::Failed, "tests/a/test_x.py::test_gone", "x"),
            row(Outcome::Passed, "tests/b/test_y.py::test_four", ""),
        ],
    );
    // a later run of tests/a only: test_gone vanished, tests/b keeps run A
    p.merge(
        run("2026-11-26T10:00:00Z", &["tests/a"]),
        &[
            row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
            row(Outcome::Failed, "tests/a/test_x.py::test_two[memfile]", "AssertionError: x | y\nmore"),
        ],
    );
    assert_eq!(p.runs.len(), 2);
    assert!(!p.tests.contains_key("tests/a/test_x.py::test_gone"));
    assert_eq!(p.tests["tests/b/test_y.py::test_four"].run, "2026-11-25T10:00:00Z");
    assert_eq!(p.tests["tests/a/test_x.py::test_one"].run, "2026-11-26T10:00:00Z");
    // a full run replaces everything, and the old runs go
    let mut full = p.clone();
    full.merge(run("2026-11-27T10:00:00Z", &[]), &[row(Outcome::Passed, "tests/b/test_y.py::test_four", "")]);
    assert_eq!(full.runs.len(), 1);
    assert_eq!(full.tests.len(), 1);

    // JSON round trip
    let b = base();
    let reasons = Reasons::default();
    let rep = Report { baseline: &b, picture: &p, reasons: &reasons, baseline_info: "Kea 2.2.0" };
    let back = Picture::from_json(&Json::parse(&rep.json()).unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn report_counts_lists_and_reasons() {
    let b = base();
    let mut p = Picture::default();
    p.merge(
        run("2026-11-25T10:00:00Z", &["tests/a"]),
        &[
            row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
            row(Outcome::Failed, "tests/a/test_x.py::test_two[memfile]", "AssertionError: x | y"),
            row(Outcome::Passed, "tests/a/test_x.py::test_three", ""),
        ],
    );
    let reasons =
        Reasons::parse("# comment\ntests/a/test_x.py::test_two\tneeds `option-def` (#16)\nstale\tgone\n").unwrap();
    let rep = Report { baseline: &b, picture: &p, reasons: &reasons, baseline_info: "Kea 2.2.0" };
    let (files, all) = rep.counts();
    let a = &files["tests/a/test_x.py"];
    assert_eq!(
        (a.total, a.kea_passed, a.run, a.xdhcpd_passed, a.regressions, a.explained, a.gains),
        (3, 2, 3, 2, 1, 1, 1)
    );
    assert_eq!((all.total, all.run), (4, 3));
    let md = rep.markdown();
    assert!(md.contains("| `tests/a/test_x.py` | 2 | 2 | 3 | A |"), "{md}");
    assert!(md.contains("| `tests/b/test_y.py` | 1 | not run | 1 | – |"), "{md}");
    assert!(
        md.contains("| `test_two[memfile]` | A | `AssertionError: x \\| y` | needs 'option-def' (#16) |"),
        "{md}"
    );
    assert!(
        md.contains("| `tests/a/test_x.py::test_three` | A | `AssertionError: Server operation: start failed!` |"),
        "{md}"
    );
    assert!(md.contains("- `stale`"), "{md}");
    assert!(
        rep.summary().contains("xdhcpd passes **1** and fails **1** (1 with a reason, 0 not yet analysed)"),
        "{}",
        rep.summary()
    );
    assert!(rep.summary().contains("1 not run on xdhcpd yet"));

    // without a reason the failure is still listed, as not yet analysed
    let none = Reasons::default();
    let rep = Report { baseline: &b, picture: &p, reasons: &none, baseline_info: "Kea 2.2.0" };
    assert!(rep.markdown().contains("| `test_two[memfile]` | A | `AssertionError: x \\| y` | not yet analysed |"));
    assert!(rep.json().contains("\"reason\": \"not yet analysed\""));
}

#[test]
fn reasons_most_specific_wins_and_are_checked() {
    let r = Reasons::parse("tests/a\tarea\ntests/a/test_x.py::test_two\tspecific\n").unwrap();
    assert_eq!(r.find("tests/a/test_x.py::test_two[memfile]"), Some(("tests/a/test_x.py::test_two", "specific")));
    assert_eq!(r.find("tests/a/test_x.py::test_one"), Some(("tests/a", "area")));
    assert_eq!(r.find("tests/b/test_y.py::test_four"), None);
    // a leading part of test names covers every test named so
    let r = Reasons::parse("tests/a/test_x.py::test_t\tthe t tests\n").unwrap();
    assert_eq!(r.find("tests/a/test_x.py::test_two[memfile]").map(|f| f.1), Some("the t tests"));
    assert_eq!(r.find("tests/a/test_x.py::test_one"), None);
    assert!(Reasons::parse("no tab here\n").is_err());
    assert!(Reasons::parse("tests/a\t \n").is_err());
}

#[test]
fn compare_holds_xdhcpd_to_kea_passes() {
    let b = base();
    let rows = vec![
        row(Outcome::Passed, "tests/a/test_x.py::test_one", ""),
        row(Outcome::Failed, "tests/a/test_x.py::test_three", "x"),
    ];
    let bad = compare(&b, &rows, &["tests/a/test_x.py"]);
    assert_eq!(bad, vec!["tests/a/test_x.py::test_two[memfile]: not run (Kea passes it)".to_owned()]);
    assert_eq!(compare(&b, &rows, &["tests/a/test_x.py::test_one"]), Vec::<String>::new());
    assert_eq!(compare(&b, &rows, &["tests/a/test_x.py::test_three"]).len(), 1, "Kea fails it: a bad CI pick");
    assert!(differences(&b, &rows).is_empty(), "same outcomes as the baseline");
    let r = vec![row(Outcome::Failed, "tests/a/test_x.py::test_one", "no reply")];
    assert_eq!(
        differences(&b, &r),
        vec!["tests/a/test_x.py::test_one: baseline passed, now failed no reply".to_owned()]
    );
}

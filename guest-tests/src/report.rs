//! A run's verdict in the formats CI systems read: one combined KTAP document (`--ktap`) and
//! JUnit XML (`--junit`, what GitLab, Jenkins and GitHub's test reporters show per test).
//!
//! Both carry every suite as it printed its KTAP (nested results flattened to `parent/child` in
//! JUnit), the suites the host skipped with their reason, and what the host found beyond the
//! tests: kernel WARN/BUG lines and nouveau error lines (failures), known issues (`KNOWN`,
//! never a pass: skipped with the reason) and problems of the run itself (a hang, a crash).
//! Expected failures (`# TODO`, `# XFAIL`) are skipped tests whose message starts with `TODO`.
//!
//! JUnit's shape follows the Jenkins xunit plugin's junit-10 schema (the one Jenkins validates
//! against, and a superset of what GitLab reads): `testsuites` > `testsuite` (`name`, `tests`
//! required) > `testcase` (`name` required) > `failure` / `error` / `skipped` / `system-out`.
//! guest-tests/testdata/junit.xsd states those constraints and a test validates against it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::console::Verdict;
use crate::ktap::{Document, Outcome, TestCase};

/// The combined KTAP: one top-level test per suite document, its own results nested under it,
/// then one test for the host's findings (kernel warnings, errors, problems) if there were any.
pub fn ktap(v: &Verdict) -> String {
    let mut s = String::from("KTAP version 1\n");
    let host = host_findings(v);
    let n = v.documents.len() + usize::from(!host.is_empty());
    let _ = writeln!(s, "1..{n}");
    for (i, d) in v.documents.iter().enumerate() {
        let name = d.suite.clone().unwrap_or_else(|| format!("ktap-{}", i + 1));
        let _ = writeln!(s, "    KTAP version 1");
        let _ = writeln!(s, "    # Subtest: {name}");
        let _ = writeln!(s, "    1..{}", d.tests.len());
        for t in &d.tests {
            case_ktap(&mut s, t, 1);
        }
        for p in &d.problems {
            let _ = writeln!(s, "    # problem: {}", one_line(p));
        }
        if let Some(b) = &d.bail_out {
            let _ = writeln!(s, "    # bailed out: {}", one_line(b));
        }
        let ok = document_ok(d);
        let _ = writeln!(s, "{} {} {name}", if ok { "ok" } else { "not ok" }, i + 1);
    }
    if !host.is_empty() {
        let failed = host.iter().any(|f| f.kind.fails());
        for f in &host {
            let _ = writeln!(s, "# {}: {}", f.kind.label(), one_line(&f.text));
        }
        let _ = writeln!(
            s,
            "{} {n} gp100emu-host{}",
            if failed { "not ok" } else { "ok" },
            if failed {
                ""
            } else {
                " # SKIP known kernel issues only (see the diagnostics)"
            }
        );
    }
    s
}

fn case_ktap(s: &mut String, t: &TestCase, depth: usize) {
    let pad = "    ".repeat(depth);
    for d in &t.diagnostics {
        let _ = writeln!(s, "{pad}# {}", one_line(d));
    }
    if !t.subtests.is_empty() {
        let inner = "    ".repeat(depth + 1);
        let _ = writeln!(s, "{inner}KTAP version 1");
        let _ = writeln!(s, "{inner}# Subtest: {}", t.name);
        let _ = writeln!(s, "{inner}1..{}", t.subtests.len());
        for c in &t.subtests {
            case_ktap(s, c, depth + 1);
        }
    }
    let ok = !matches!(t.outcome, Outcome::Fail);
    let directive = match (&t.directive, t.outcome) {
        (Some(d), Outcome::Skip | Outcome::Todo) => format!(" # {d}"),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "{pad}{} {} {}{directive}",
        if ok || t.outcome == Outcome::Todo {
            "ok"
        } else {
            "not ok"
        },
        t.number,
        t.name
    );
}

fn document_ok(d: &Document) -> bool {
    fn ok(t: &TestCase) -> bool {
        t.outcome != Outcome::Fail && t.subtests.iter().all(ok)
    }
    d.problems.is_empty() && d.bail_out.is_none() && d.tests.iter().all(ok)
}

/// What the host found outside the suites' own results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    /// A kernel WARN/BUG/oops line.
    Warning,
    /// A nouveau error-level log line.
    Error,
    /// A warning or error explained by guest-tests/known-issues.txt.
    Known,
    /// The run itself went wrong (hang, crash, a suite that never ran).
    Problem,
}

impl HostKind {
    fn fails(self) -> bool {
        !matches!(self, HostKind::Known)
    }
    fn label(self) -> &'static str {
        match self {
            HostKind::Warning => "kernel warning",
            HostKind::Error => "kernel error",
            HostKind::Known => "KNOWN",
            HostKind::Problem => "problem",
        }
    }
}

struct HostFinding {
    kind: HostKind,
    text: String,
    why: Option<String>,
}

fn host_findings(v: &Verdict) -> Vec<HostFinding> {
    let mut f = Vec::new();
    let mut add = |kind, text: &String, why: Option<&String>| {
        f.push(HostFinding {
            kind,
            text: text.clone(),
            why: why.cloned(),
        })
    };
    for o in &v.oopses {
        add(HostKind::Warning, o, None);
    }
    for e in &v.errors {
        add(HostKind::Error, e, None);
    }
    for p in &v.problems {
        add(HostKind::Problem, p, None);
    }
    for (line, why) in v.known.iter().chain(&v.known_findings) {
        add(HostKind::Known, line, Some(why));
    }
    f
}

/// Text on one line (KTAP diagnostics are line-based).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// XML-escapes text for an attribute or element; drops characters XML 1.0 forbids (a console
/// can carry any byte).
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => o.push(c),
        }
    }
    o
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A leaf test for JUnit: its path, outcome, message and duration.
struct Leaf<'a> {
    name: String,
    case: &'a TestCase,
    time: Option<Duration>,
}

fn leaves<'a>(prefix: &str, t: &'a TestCase, out: &mut Vec<Leaf<'a>>) {
    let name = if prefix.is_empty() {
        t.name.clone()
    } else {
        format!("{prefix}/{}", t.name)
    };
    if t.subtests.is_empty() {
        out.push(Leaf {
            name,
            case: t,
            time: None,
        });
        return;
    }
    let before = out.len();
    for c in &t.subtests {
        leaves(&name, c, out);
    }
    // A parent that failed though none of its children did is a failure of its own.
    if t.outcome == Outcome::Fail
        && out[before..]
            .iter()
            .all(|l| l.case.outcome != Outcome::Fail)
    {
        out.push(Leaf {
            name,
            case: t,
            time: None,
        });
    }
}

/// JUnit XML for the verdict: one `testsuite` per suite document (named after the suite), one
/// for the suites the host skipped, one `gp100emu-host` for the host's findings. `total` is the
/// run's wall time, for the root element.
pub fn junit(v: &Verdict, total: Duration) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut suites = String::new();
    let (mut all_tests, mut all_failures, mut all_errors, mut all_skipped) = (0, 0, 0, 0);
    for (i, d) in v.documents.iter().enumerate() {
        let name = d.suite.clone().unwrap_or_else(|| format!("ktap-{}", i + 1));
        let mut ls = Vec::new();
        for t in &d.tests {
            leaves("", t, &mut ls);
        }
        // Durations: from the previous result line (or the document's header) to this one.
        let mut prev = d.started;
        for l in &mut ls {
            if let (Some(p), Some(at)) = (prev, l.case.at) {
                l.time = Some(at.saturating_sub(p));
            }
            if l.case.at.is_some() {
                prev = l.case.at;
            }
        }
        let mut body = String::new();
        let (mut failures, mut skipped) = (0, 0);
        let mut time = Duration::ZERO;
        for l in &ls {
            time += l.time.unwrap_or_default();
            let _ = write!(
                body,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&name),
                xml(&l.name)
            );
            if let Some(t) = l.time {
                let _ = write!(body, " time=\"{}\"", secs(t));
            }
            body.push('>');
            let directive = l.case.directive.as_deref().unwrap_or("");
            match l.case.outcome {
                Outcome::Pass => {}
                Outcome::Fail => {
                    failures += 1;
                    let _ = write!(
                        body,
                        "<failure type=\"not ok\" message=\"{}\"/>",
                        xml(&format!("not ok {}", l.case.name))
                    );
                }
                Outcome::Skip => {
                    skipped += 1;
                    let _ = write!(body, "<skipped message=\"{}\"/>", xml(directive));
                }
                Outcome::Todo => {
                    skipped += 1;
                    let _ = write!(
                        body,
                        "<skipped type=\"TODO\" message=\"{}\"/>",
                        xml(&format!(
                            "TODO (expected failure): {}",
                            directive
                                .trim_start_matches("TODO")
                                .trim_start_matches("XFAIL")
                                .trim()
                        ))
                    );
                }
            }
            if !l.case.diagnostics.is_empty() {
                let _ = write!(
                    body,
                    "<system-out>{}</system-out>",
                    xml(&l.case.diagnostics.join("\n"))
                );
            }
            body.push_str("</testcase>\n");
        }
        let mut errors = 0;
        for p in d.problems.iter().chain(d.bail_out.iter()) {
            errors += 1;
            let _ = writeln!(
                body,
                "    <testcase classname=\"{}\" name=\"ktap\"><error type=\"ktap\" message=\"{}\"/></testcase>",
                xml(&name),
                xml(p)
            );
        }
        let tests = ls.len() + errors;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\">\n{body}  </testsuite>",
            xml(&name),
            secs(time)
        );
        all_tests += tests;
        all_failures += failures;
        all_errors += errors;
        all_skipped += skipped;
    }
    let host = host_findings(v);
    if !host.is_empty() {
        let mut body = String::new();
        let (mut failures, mut errors, mut skipped) = (0, 0, 0);
        for (i, f) in host.iter().enumerate() {
            let _ = write!(
                body,
                "    <testcase classname=\"gp100emu-host\" name=\"{} {}\">",
                f.kind.label(),
                i + 1
            );
            match f.kind {
                HostKind::Warning | HostKind::Error => {
                    failures += 1;
                    let _ = write!(
                        body,
                        "<failure type=\"{}\" message=\"{}\"/>",
                        f.kind.label(),
                        xml(&f.text)
                    );
                }
                HostKind::Problem => {
                    errors += 1;
                    let _ = write!(
                        body,
                        "<error type=\"problem\" message=\"{}\"/>",
                        xml(&f.text)
                    );
                }
                HostKind::Known => {
                    skipped += 1;
                    let _ = write!(
                        body,
                        "<skipped type=\"KNOWN\" message=\"{}\"/><system-out>{}</system-out>",
                        xml(&format!(
                            "KNOWN: {}",
                            f.why.as_deref().unwrap_or("see known-issues.txt")
                        )),
                        xml(&f.text)
                    );
                }
            }
            body.push_str("</testcase>\n");
        }
        let _ = writeln!(
            suites,
            "  <testsuite name=\"gp100emu-host\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"0.000\">\n{body}  </testsuite>",
            host.len()
        );
        all_tests += host.len();
        all_failures += failures;
        all_errors += errors;
        all_skipped += skipped;
    }
    let _ = write!(
        s,
        "<testsuites name=\"gp100emu\" tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"{all_errors}\" skipped=\"{all_skipped}\" time=\"{}\">\n{suites}</testsuites>\n",
        secs(total)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::{ConsoleMonitor, KnownIssue, RunEnd};

    fn verdict() -> Verdict {
        let known = vec![KnownIssue {
            warning: "gp100_vmm_mthd".into(),
            after: None,
            why: "cancel asks a halted FECS".into(),
        }];
        let mut m = ConsoleMonitor::with_known_issues(&["svm".to_string()], known);
        let lines = [
            "gp100emu: init reached at 1.0 s",
            "# gp100emu-suite: svm begins",
            "KTAP version 1",
            "1..4",
            "# reading <anon> & \"more\"",
            "ok 1 anon_read",
            "not ok 2 munmap_then_gpu",
            "ok 3 pd0_hazard # TODO nouveau clears only bit 0",
            "    KTAP version 1",
            "    1..2",
            "    ok 1 child_a",
            "    ok 2 child_b # SKIP no THP",
            "ok 4 nested",
            "[ 5.0] WARNING: CPU: 0 PID: 1 at x.c:1 gp100_vmm_mthd+0x1",
            "[ 5.1] WARNING: CPU: 0 PID: 1 at y.c:2 other_function+0x1",
            "# gp100emu-suite: svm ends rc=1",
            "gp100emu-kmsg-err: 3 nouveau 0000:00:02.0: svm[1]: failed to idle channel 2",
            "gp100emu: suite done",
        ];
        for (i, l) in lines.iter().enumerate() {
            m.set_now(Duration::from_millis(100 * i as u64));
            m.feed_line(l);
        }
        let mut v = m.finish(RunEnd::Exited);
        v.skip_suite("hmm", "hmm-tests does not build against this kernel: <why>");
        v
    }

    #[test]
    fn ktap_nests_every_suite_and_reports_the_host() {
        let v = verdict();
        let k = ktap(&v);
        let docs = crate::ktap::parse(&k);
        assert_eq!(docs.len(), 1, "{k}");
        let tally = crate::ktap::tally(&docs);
        // anon_read, child_a pass; munmap fails, the host's findings fail; TODO, SKIP, hmm skip.
        assert_eq!(tally.passed, 2, "{k}");
        assert_eq!(tally.skipped, 3, "{k}");
        assert!(
            tally.failures.iter().any(|f| f.contains("munmap_then_gpu")),
            "{k}"
        );
        assert!(
            tally.failures.iter().any(|f| f.contains("gp100emu-host")),
            "{k}"
        );
        assert!(k.contains("# TODO nouveau clears only bit 0"), "{k}");
        assert!(k.contains("# KNOWN: "), "{k}");
        assert!(k.contains("failed to idle channel 2"), "{k}");
        assert!(k.contains("# SKIP hmm-tests does not build"), "{k}");
    }

    #[test]
    fn junit_marks_known_and_todo_and_has_durations() {
        let v = verdict();
        let j = junit(&v, Duration::from_secs(3));
        assert!(
            j.contains(
                "<testsuite name=\"svm\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"2\""
            ),
            "{j}"
        );
        assert!(j.contains("name=\"nested/child_b\""), "{j}");
        assert!(
            j.contains(
                "type=\"TODO\" message=\"TODO (expected failure): nouveau clears only bit 0\""
            ),
            "{j}"
        );
        assert!(
            j.contains("type=\"KNOWN\" message=\"KNOWN: cancel asks a halted FECS\""),
            "{j}"
        );
        assert!(j.contains("failed to idle channel 2"), "{j}");
        assert!(
            j.contains("&lt;anon&gt; &amp; &quot;more&quot;"),
            "escaped: {j}"
        );
        // anon_read's result arrived 300 ms after the header (lines 2 and 5, 100 ms apart each).
        assert!(j.contains("name=\"anon_read\" time=\"0.300\""), "{j}");
        assert!(j.contains("<testsuite name=\"hmm\""), "{j}");
    }

    /// Validates against guest-tests/testdata/junit.xsd with xmllint (libxml2-utils, which
    /// qemu-glue/scripts/host-deps.sh installs). A missing xmllint fails, saying so.
    #[test]
    fn junit_validates_against_the_schema() {
        let dir = std::env::temp_dir().join(format!("gp100emu-junit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("report.xml");
        std::fs::write(&file, junit(&verdict(), Duration::from_secs(3))).unwrap();
        let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/junit.xsd");
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--schema", xsd])
            .arg(&file)
            .output()
            .expect(
                "xmllint is missing: apt-get install libxml2-utils \
                 (qemu-glue/scripts/host-deps.sh installs it)",
            );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn xml_drops_what_xml_cannot_carry() {
        assert_eq!(xml("a\u{1}b\u{1b}[0mc\td"), "ab[0mc\td");
    }
}

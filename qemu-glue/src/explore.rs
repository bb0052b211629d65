//! The host side of the `explore` suite (issue 17): its `run` flags, the findings it prints,
//! and minimisation of a failing operation list by delta debugging.
//!
//! The suite (guest-tests/suites/explore.c) reads its parameters from the kernel command
//! line (`gp100emu.explore.*`); every operation is a 64-bit token whose effect depends only
//! on the token and the state, so any subset of a failing list is a valid run. A finding is
//! printed as `# EXPLORE FINDING op=I token=T kind=K: ...` followed by
//! `# EXPLORE REPRODUCE --ops T,T,...` (the tokens up to the failing one).

use guest_tests::console::{KnownIssue, Verdict};

use crate::run::RunOptions;

/// The explorer's `gp100emu run` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExploreArgs {
    /// explore suite: the seed of the operation stream (default 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// explore suite: replay exactly these operation tokens (hex, comma separated), as a
    /// finding's reproducer line prints them.
    #[arg(long)]
    pub ops: Option<String>,
    /// explore suite: at most this many operations (default 400).
    #[arg(long)]
    pub explore_ops: Option<u32>,
    /// explore suite: at most this many seconds of operations (default 60).
    #[arg(long)]
    pub explore_secs: Option<u32>,
    /// explore suite: make the shadow model deliberately wrong (a run must then fail; the
    /// host test that the explorer can fail).
    #[arg(long, hide = true)]
    pub wrong_shadow: bool,
    /// explore suite: print one line per operation and GPU slot (what a reproducer does).
    #[arg(long)]
    pub explore_verbose: bool,
    /// The replayable fault buffer's size in entries (16..=1024; default 1024). A small
    /// buffer lets one GPU batch overflow it. Not recorded in traces: cannot go with --trace.
    #[arg(long)]
    pub fault_buffer_entries: Option<u32>,
    /// When the explore suite reports a finding, minimise its operation list by delta
    /// debugging (re-running subsets in fresh guests, at most this many runs) and print the
    /// minimal reproducer.
    #[arg(long, value_name = "RUNS")]
    pub minimise: Option<u32>,
}

impl ExploreArgs {
    /// The kernel command-line arguments these flags become.
    pub fn append(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(s) = self.seed {
            v.push(format!("gp100emu.explore.seed={s}"));
        }
        if let Some(o) = &self.ops {
            v.push(format!("gp100emu.explore.ops={}", o.replace(' ', "")));
        }
        if let Some(n) = self.explore_ops {
            v.push(format!("gp100emu.explore.budget_ops={n}"));
        }
        if let Some(n) = self.explore_secs {
            v.push(format!("gp100emu.explore.budget_secs={n}"));
        }
        if self.wrong_shadow {
            v.push("gp100emu.explore.wrong_shadow=1".into());
        }
        if self.explore_verbose {
            v.push("gp100emu.explore.verbose=1".into());
        }
        v
    }

    /// Checks the flags; Err says what to change.
    pub fn validate(&self, tracing: bool) -> Result<(), String> {
        if let Some(o) = &self.ops {
            parse_tokens(o)?;
            if o.len() > MAX_OPS_CHARS {
                return Err(format!(
                    "--ops is {} characters; the kernel command line holds about {MAX_OPS_CHARS} (minimise it first)",
                    o.len()
                ));
            }
        }
        if self.fault_buffer_entries.is_some() && tracing {
            return Err(
                "--fault-buffer-entries cannot go with --trace: the trace header does not record the buffer size, so the trace would not replay".into(),
            );
        }
        Ok(())
    }
}

/// Longest `--ops` value that fits the x86 kernel command line (2048 bytes) beside the rest.
pub const MAX_OPS_CHARS: usize = 1700;

/// Parses a token list `T,T,...` (hex, optional 0x).
pub fn parse_tokens(s: &str) -> Result<Vec<u64>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            u64::from_str_radix(t.trim_start_matches("0x"), 16)
                .map_err(|e| format!("--ops token '{t}' is not hex: {e}"))
        })
        .collect()
}

/// Formats tokens as `--ops` takes them.
pub fn format_tokens(t: &[u64]) -> String {
    t.iter()
        .map(|x| format!("{x:x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One finding the suite printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Operation index.
    pub op: u64,
    /// Its kind (`gpu-data`, `pte-check`, ...).
    pub kind: String,
    /// The whole line.
    pub line: String,
    /// The operation tokens up to it.
    pub reproducer: Vec<u64>,
    /// The suite that printed it.
    pub suite: Option<String>,
}

/// The findings in a run's KTAP diagnostics (every suite's documents).
pub fn findings(v: &Verdict) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in &v.documents {
        let lines = d.tests.iter().flat_map(|t| t.diagnostics.iter());
        for mut f in findings_in(lines.map(String::as_str)) {
            f.suite = d.suite.clone();
            out.push(f);
        }
    }
    out
}

/// The operation tokens a run executed: its `# EXPLORE RAN --ops` line, or when the explorer
/// died before printing it (an oops ends the process, or with `oops=panic` the guest), the
/// `# EXPLORE OP T` line it prints before each operation, in order.
pub fn ran_ops(v: &Verdict) -> Option<Vec<u64>> {
    let lines = || {
        v.documents.iter().flat_map(|d| {
            d.tests
                .iter()
                .flat_map(|t| t.diagnostics.iter())
                .chain(d.trailing.iter())
                .map(|l| l.trim_start_matches('#').trim())
        })
    };
    if let Some(t) = lines().find_map(|l| parse_tokens(l.strip_prefix("EXPLORE RAN --ops ")?).ok())
    {
        return Some(t);
    }
    let t: Vec<u64> = lines()
        .filter_map(|l| l.strip_prefix("EXPLORE OP "))
        .filter_map(|t| u64::from_str_radix(t.trim(), 16).ok())
        .collect();
    (!t.is_empty()).then_some(t)
}

/// The kernel report a run ended in, if any: an unexplained oops, or one known-issues.txt
/// explains (a known kernel bug is still the finding to minimise). Warnings are not: the
/// known cancel timeouts come with every explorer run.
fn kernel_report(v: &Verdict) -> Option<String> {
    let report = |l: &str| !l.starts_with("WARNING");
    v.oopses
        .iter()
        .find(|l| report(l))
        .or_else(|| v.known.iter().map(|(l, _)| l).find(|l| report(l)))
        .map(|l| {
            // The function its RIP line named identifies it across runs (addresses may not).
            match l.split_once("[RIP ") {
                Some((_, f)) => f.split('+').next().unwrap_or(f).to_string(),
                None => l.clone(),
            }
        })
}

/// What the minimiser keeps reproducing: an explorer finding of one kind, or a kernel oops
/// (which the explorer cannot see itself: it may come at process exit).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Finding(String),
    Oops(String),
}

impl Target {
    fn seen(&self, v: &Verdict) -> bool {
        match self {
            Target::Finding(kind) => findings(v).iter().any(|f| &f.kind == kind),
            Target::Oops(key) => v
                .oopses
                .iter()
                .chain(v.known.iter().map(|(l, _)| l))
                .any(|o| o.contains(key.as_str())),
        }
    }
}

/// The known issue (guest-tests/known-issues.txt) that names a finding: an entry
/// `EXPLORE word...` whose every word is a word of the finding's line (words split at
/// whitespace; a trailing `:`, `;` or `,` does not count). Such a finding is KNOWN, reported
/// with the analysis, and still not a pass.
pub fn known<'a>(f: &Finding, issues: &'a [KnownIssue]) -> Option<&'a KnownIssue> {
    let words: Vec<&str> = f
        .line
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ';', ',']))
        .collect();
    issues.iter().find(|k| {
        k.is_finding()
            && k.warning
                .split_whitespace()
                .skip(1)
                .all(|w| words.contains(&w))
            && k.warning.split_whitespace().nth(1).is_some()
    })
}

/// The explore suites' tests that fail exactly when the explorer found something.
const FINDING_TESTS: [&str; 2] = ["explore_no_findings", "explore_no_pte_check_violations"];

/// Marks what known kernel bugs explain: in each explore document whose findings are all
/// KNOWN (known-issues.txt names each), the failed tests that only say "there were findings"
/// become expected failures (`# TODO KNOWN ...`, skipped tests in the counts and in JUnit,
/// never passes), and each finding is listed in the verdict's `known_findings` with its
/// analysis. One unknown finding leaves its document as it is: FAIL.
pub fn mark_known(v: &mut Verdict, issues: &[KnownIssue]) {
    let mut changed = false;
    let mut known_lines = Vec::new();
    for d in &mut v.documents {
        if !d.suite.as_deref().is_some_and(|s| s.starts_with("explore")) {
            continue;
        }
        let found = findings_in(
            d.tests
                .iter()
                .flat_map(|t| t.diagnostics.iter())
                .map(String::as_str),
        );
        let explained: Vec<(&Finding, &KnownIssue)> = found
            .iter()
            .filter_map(|f| known(f, issues).map(|k| (f, k)))
            .collect();
        if found.is_empty() || explained.len() != found.len() {
            continue;
        }
        let why = explained[0].1.why.clone();
        for t in d.tests.iter_mut().filter(|t| {
            t.outcome == guest_tests::ktap::Outcome::Fail
                && FINDING_TESTS.contains(&t.name.as_str())
        }) {
            t.outcome = guest_tests::ktap::Outcome::Todo;
            t.directive = Some(format!("TODO KNOWN: {why}"));
            changed = true;
        }
        for (f, k) in explained {
            known_lines.push((f.line.clone(), k.why.clone()));
            if !v.matched_known.contains(&k.warning) {
                v.matched_known.push(k.warning.clone());
            }
        }
    }
    v.known_findings.extend(known_lines);
    if changed {
        v.tally = guest_tests::ktap::tally(&v.documents);
    }
}

/// After a run: lists the explorer's findings (KNOWN ones with their analysis), and with
/// `minimise` = Some(runs) minimises the first one's operation list by re-running subsets in
/// fresh guests (at most `runs` boots) and prints the minimal reproducer.
pub fn report(o: &RunOptions, v: &Verdict, minimise: Option<u32>) {
    let found = findings(v);
    let oops = kernel_report(v);
    if found.is_empty() && (oops.is_none() || ran_ops(v).is_none()) {
        return;
    }
    let issues = crate::run::known_issues(o);
    println!("=== explorer findings ({})", found.len());
    for f in &found {
        match known(f, &issues) {
            Some(k) => println!("KNOWN {} ({})", f.line, k.why),
            None => println!("FINDING {}", f.line),
        }
    }
    // A kernel report with everything that ran (it ended the run), else the first finding
    // with its reproducer.
    let first = match (&oops, ran_ops(v)) {
        (Some(_), Some(_)) => None,
        _ => found.iter().find(|f| !f.reproducer.is_empty()),
    };
    let (target, tokens, suite) = match first {
        Some(f) => (
            Target::Finding(f.kind.clone()),
            f.reproducer.clone(),
            f.suite.clone(),
        ),
        None => match (oops, ran_ops(v)) {
            (Some(o), Some(t)) => {
                println!("kernel report: {o} (after {} operations)", t.len());
                (Target::Oops(o), t, None)
            }
            _ => return,
        },
    };
    let suite = suite
        .or_else(|| o.suites.iter().find(|s| s.starts_with("explore")).cloned())
        .unwrap_or_else(|| "explore".into());
    println!(
        "reproduce: gp100emu run --suite {suite} --ops \"{}\"",
        format_tokens(&tokens)
    );
    let Some(max_runs) = minimise else {
        println!("(add --minimise RUNS to minimise it by delta debugging)");
        return;
    };
    eprintln!(
        "[explore] minimising {} operations for {target:?} (at most {max_runs} guest runs)",
        tokens.len()
    );
    let mut n = 0;
    let (min, runs) = ddmin(&tokens, max_runs, |cand| {
        n += 1;
        let mut r = o.clone();
        r.suites = vec![suite.clone()];
        r.echo_console = false;
        let mut args: Vec<String> = o
            .append
            .iter()
            .flat_map(|a| a.split_whitespace().map(str::to_string))
            .filter(|a| !a.starts_with("gp100emu.explore.ops="))
            .collect();
        args.push(format!("gp100emu.explore.ops={}", format_tokens(cand)));
        r.append = Some(args.join(" "));
        // An oops at exit leaves the guest hanging until the timeout: keep it short.
        r.timeout = r.timeout.min(std::time::Duration::from_secs(240));
        let still = match crate::run::run(&r) {
            Ok((v, _)) => target.seen(&v),
            Err(e) => {
                eprintln!("[explore] minimise run {n} could not run: {e}");
                false
            }
        };
        eprintln!(
            "[explore] minimise run {n}: {} operations, finding {}",
            cand.len(),
            if still { "reproduced" } else { "gone" }
        );
        still
    });
    println!(
        "minimised ({runs} runs{}): gp100emu run --suite {suite} --ops \"{}\"",
        if runs >= max_runs {
            ", bound reached: maybe not minimal"
        } else {
            ""
        },
        format_tokens(&min)
    );
}

/// The findings in diagnostic lines (with or without their leading `# `).
pub fn findings_in<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for l in lines {
        let l = l.trim_start_matches('#').trim();
        if let Some(rest) = l.strip_prefix("EXPLORE FINDING ") {
            let field = |k: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .map(|v| v.trim_end_matches(':').to_string())
            };
            out.push(Finding {
                op: field("op=").and_then(|v| v.parse().ok()).unwrap_or(0),
                kind: field("kind=").unwrap_or_default(),
                line: l.to_string(),
                reproducer: Vec::new(),
                suite: None,
            });
        } else if let Some(ops) = l.strip_prefix("EXPLORE REPRODUCE --ops ") {
            if let (Some(f), Ok(t)) = (out.last_mut(), parse_tokens(ops)) {
                f.reproducer = t;
            }
        }
    }
    out
}

/// Delta debugging (Zeller's ddmin) of `tokens` under `fails` (true: the subset still shows
/// the failure), bounded to `max_runs` calls of `fails`. Returns the smallest failing list
/// found and the runs used; with the bound reached, the list is smaller but maybe not
/// 1-minimal. The last token (the failing operation) is always kept: a finding is reported
/// at an operation, and dropping it cannot reproduce that finding.
pub fn ddmin(
    tokens: &[u64],
    max_runs: u32,
    mut fails: impl FnMut(&[u64]) -> bool,
) -> (Vec<u64>, u32) {
    let Some((&last, rest)) = tokens.split_last() else {
        return (Vec::new(), 0);
    };
    let mut cur: Vec<u64> = rest.to_vec();
    let mut runs = 0;
    let with_last = |v: &[u64]| {
        let mut w = v.to_vec();
        w.push(last);
        w
    };
    let mut n = 2usize;
    while !cur.is_empty() && runs < max_runs {
        let chunk = cur.len().div_ceil(n);
        // Try each complement (drop one chunk); subsets alone are the complement at n = 2.
        let mut found = None;
        for i in 0..n {
            if runs >= max_runs {
                break;
            }
            let lo = (i * chunk).min(cur.len());
            let hi = ((i + 1) * chunk).min(cur.len());
            if lo == hi {
                continue;
            }
            let cand: Vec<u64> = cur[..lo].iter().chain(&cur[hi..]).copied().collect();
            runs += 1;
            if fails(&with_last(&cand)) {
                found = Some(cand);
                break;
            }
        }
        let reduced = found.is_some();
        if let Some(c) = found {
            cur = c;
            n = (n - 1).max(2);
        }
        if !reduced {
            if n >= cur.len() {
                break;
            }
            n = (2 * n).min(cur.len());
        }
    }
    (with_last(&cur), runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_tokens_that_matter() {
        let tokens: Vec<u64> = (1..=40).collect();
        // Fails when 7 and 23 are both there before the last (40).
        let (min, runs) = ddmin(&tokens, 200, |t| {
            t.contains(&7) && t.contains(&23) && t.last() == Some(&40)
        });
        assert_eq!(min, vec![7, 23, 40]);
        assert!(runs < 60, "{runs} runs");
    }

    #[test]
    fn ddmin_keeps_the_failing_operation_and_respects_its_bound() {
        let tokens: Vec<u64> = (1..=64).collect();
        let mut calls = 0;
        let (min, runs) = ddmin(&tokens, 3, |t| {
            calls += 1;
            t.contains(&5)
        });
        assert_eq!(runs, 3);
        assert_eq!(calls, 3);
        assert!(min.contains(&5) && min.last() == Some(&64));
        assert!(min.len() < 64, "three runs already halve it: {}", min.len());
        // Only the last token matters: everything else goes.
        let (min, _) = ddmin(&tokens, 500, |t| t.last() == Some(&64));
        assert_eq!(min, vec![64]);
        assert_eq!(ddmin(&[], 10, |_| true), (vec![], 0));
    }

    #[test]
    fn what_ran_and_the_kernel_report_are_found_when_the_explorer_died() {
        use guest_tests::ktap::{Document, Outcome, TestCase};
        let mut v = Verdict::default();
        v.documents.push(Document {
            suite: Some("explore".into()),
            tests: vec![TestCase {
                number: 1,
                name: "explore_setup".into(),
                outcome: Outcome::Pass,
                directive: None,
                diagnostics: vec!["explore: seed 1".into()],
                subtests: Vec::new(),
                at: None,
            }],
            trailing: vec![
                "EXPLORE OP 1f".into(),
                "op 1: slot 0: read".into(),
                "EXPLORE OP a0".into(),
            ],
            ..Document::default()
        });
        assert_eq!(ran_ops(&v), Some(vec![0x1f, 0xa0]));
        assert_eq!(kernel_report(&v), None);
        v.known.push((
            "WARNING: CPU: 0 PID: 9 at gf100.c:759 gf100_gr_fecs_ctrl_ctxsw+0xc9/0xe2".into(),
            "cancel".into(),
        ));
        assert_eq!(
            kernel_report(&v),
            None,
            "a known warning is not the run's end"
        );
        v.known.push((
            "BUG: kernel NULL pointer dereference, address: 0000000000000008 [RIP nvkm_vmm_unref_ptes+0x2d/0x1a0]".into(),
            "mixed page sizes".into(),
        ));
        let k = kernel_report(&v).unwrap();
        assert_eq!(k, "nvkm_vmm_unref_ptes");
        assert!(Target::Oops(k).seen(&v));
        // The RAN line, when printed, is what ran.
        v.documents[0]
            .trailing
            .push("EXPLORE RAN --ops 1f,a0,b1".into());
        assert_eq!(ran_ops(&v), Some(vec![0x1f, 0xa0, 0xb1]));
    }

    /// An explore document with one finding line per `lines` in its findings test, which
    /// failed; and a pte-check test that failed too.
    fn explore_doc(lines: &[&str]) -> Verdict {
        use guest_tests::ktap::{Document, Outcome, TestCase};
        let case = |n: u32, name: &str, diagnostics: Vec<String>| TestCase {
            number: n,
            name: name.into(),
            outcome: Outcome::Fail,
            directive: None,
            diagnostics,
            subtests: Vec::new(),
            at: None,
        };
        let mut v = Verdict::default();
        v.documents.push(Document {
            suite: Some("explore".into()),
            tests: vec![
                TestCase {
                    outcome: Outcome::Pass,
                    ..case(1, "explore_setup", Vec::new())
                },
                case(
                    2,
                    "explore_no_findings",
                    lines
                        .iter()
                        .map(|l| format!("EXPLORE FINDING {l}"))
                        .collect(),
                ),
                case(3, "explore_no_pte_check_violations", Vec::new()),
            ],
            ..Document::default()
        });
        v.tally = guest_tests::ktap::tally(&v.documents);
        v
    }

    fn issue(warning: &str) -> KnownIssue {
        KnownIssue {
            warning: warning.into(),
            after: None,
            why: format!("because of {warning}"),
        }
    }

    #[test]
    fn a_finding_is_known_when_every_word_of_an_entry_is_in_its_line() {
        let f = |line: &str| {
            findings_in([format!("EXPLORE FINDING {line}").as_str()].into_iter()).remove(0)
        };
        let issues = [
            issue("EXPLORE kind=pte-check reason=gpu-writable-cpu-read-only gpu-page=2m found=cpu-invalidate"),
            issue("gpu-page=2m"),
        ];
        let line = "op=29 token=7f kind=pte-check: 512 new PTE checker violation(s) (1024 reports); \
                    last new: reason=gpu-writable-cpu-read-only gpu-page=2m found=cpu-invalidate va=0x1";
        assert!(std::ptr::eq(known(&f(line), &issues).unwrap(), &issues[0]));
        // A word missing (another page size), or a word only part of a line's word: unknown.
        assert!(known(&f(&line.replace("gpu-page=2m", "gpu-page=4k")), &issues).is_none());
        assert!(known(
            &f(&line.replace("found=cpu-invalidate", "found=cpu-invalidate-x")),
            &issues
        )
        .is_none());
        // A console entry (no EXPLORE word) never names a finding, nor does a bare EXPLORE.
        assert!(known(&f("op=1 token=1 kind=cpu-data: gpu-page=2m"), &issues).is_none());
        assert!(known(&f("op=1 token=1 kind=cpu-data: x"), &[issue("EXPLORE")]).is_none());
    }

    #[test]
    fn the_shipped_entries_name_the_zero_page_atomic_livelock_and_nothing_beside_it() {
        let issues = guest_tests::console::builtin_known_issues();
        let f = |line: &str| {
            findings_in([format!("EXPLORE FINDING {line}").as_str()].into_iter()).remove(0)
        };
        // Measured: seed 1 on 6.12 with patches 0001-0006, op 65 (the finding line verbatim).
        let atomic = "op=65 token=90a939f010327553 kind=gpu-not-served: slot 4/25 atomic \
                      anon+0x38634 len 4: status 2 after 3 faults, 2 replays, stopped at byte 0 \
                      (page 0x38) region=anon fault=pte";
        let why = &known(&f(atomic), &issues).expect("named").why;
        assert!(why.contains("patches/0008"), "{why}");
        // A write left unserved there, or an atomic in mlock'd memory: not this bug.
        for other in [
            atomic.replace(" atomic ", " write "),
            atomic.replace("region=anon", "region=mlock"),
        ] {
            assert!(known(&f(&other), &issues).is_none(), "{other}");
        }
    }

    #[test]
    fn the_shipped_entries_name_the_prot_none_bind_and_not_other_forbidden_uses() {
        let issues = guest_tests::console::builtin_known_issues();
        let f = |line: &str| {
            findings_in([format!("EXPLORE FINDING {line}").as_str()].into_iter()).remove(0)
        };
        // Measured: seed 4 on 6.12 with patches 0001-0008, minimised to four operations.
        let bound = "op=3 token=afddd659b3932d6b kind=gpu-served-forbidden: slot 1/2 read \
                     anon-shared+0x19ffa len 32 completed over an unmapped or forbidden page \
                     bound=unreadable";
        let why = &known(&f(bound), &issues).expect("named").why;
        assert!(why.contains("patches/0010"), "{why}");
        // The same served read with no SVM_BIND over the page is another bug.
        let unbound = bound.replace("bound=unreadable", "bound=no");
        assert!(known(&f(&unbound), &issues).is_none(), "{unbound}");
    }

    #[test]
    fn known_findings_make_their_tests_expected_failures_and_one_unknown_keeps_the_fail() {
        use guest_tests::ktap::Outcome;
        let issues = [issue("EXPLORE kind=pte-check gpu-page=2m")];
        let known_line = "op=3 token=1 kind=pte-check: 1 new; last new: gpu-page=2m found=flush";
        let mut v = explore_doc(&[known_line, known_line]);
        assert_eq!(v.tally.failed, 2);
        mark_known(&mut v, &issues);
        let tests = &v.documents[0].tests;
        assert_eq!(tests[1].outcome, Outcome::Todo);
        assert_eq!(tests[2].outcome, Outcome::Todo);
        assert!(tests[1]
            .directive
            .as_deref()
            .unwrap()
            .starts_with("TODO KNOWN: because of"));
        assert_eq!((v.tally.passed, v.tally.failed), (1, 0), "never a pass");
        assert!(v.passed(), "{}", v.report());
        assert_eq!(v.known_findings.len(), 2);
        assert!(v
            .report()
            .contains("KNOWN explorer finding: EXPLORE FINDING op=3"));
        assert_eq!(v.matched_known, vec![issues[0].warning.clone()]);
        // A known warning is still not taken for the oops the run ended in.
        assert_eq!(kernel_report(&v), None);
        // One finding nothing explains: the document fails as before.
        let mut v = explore_doc(&[known_line, "op=4 token=2 kind=gpu-data: slot 0 read"]);
        mark_known(&mut v, &issues);
        assert_eq!(v.documents[0].tests[1].outcome, Outcome::Fail);
        assert_eq!(v.tally.failed, 2);
        assert!(v.known_findings.is_empty());
        // No finding at all (a failed test for another reason): nothing is excused.
        let mut v = explore_doc(&[]);
        mark_known(&mut v, &issues);
        assert_eq!(v.tally.failed, 2);
    }

    #[test]
    fn findings_and_reproducers_are_parsed_from_diagnostics() {
        let lines = [
            "# explore: seed 3",
            "# EXPLORE FINDING op=17 token=00000000000000ab kind=gpu-data: slot 2 read anon+0x10",
            "# EXPLORE REPRODUCE --ops 1f,2e,ab",
            "EXPLORE FINDING op=20 token=1 kind=pte-check: 1 new",
        ];
        let f = findings_in(lines.into_iter());
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].op, f[0].kind.as_str()), (17, "gpu-data"));
        assert_eq!(f[0].reproducer, vec![0x1f, 0x2e, 0xab]);
        assert_eq!(f[1].kind, "pte-check");
        assert!(f[1].reproducer.is_empty());
    }

    #[test]
    fn flags_become_kernel_arguments_and_bad_ones_are_refused() {
        let a = ExploreArgs {
            seed: Some(9),
            ops: Some("ab, 0xcd".into()),
            explore_ops: Some(50),
            explore_secs: Some(20),
            wrong_shadow: true,
            ..Default::default()
        };
        assert_eq!(
            a.append(),
            vec![
                "gp100emu.explore.seed=9",
                "gp100emu.explore.ops=ab,0xcd",
                "gp100emu.explore.budget_ops=50",
                "gp100emu.explore.budget_secs=20",
                "gp100emu.explore.wrong_shadow=1"
            ]
        );
        assert!(a.validate(false).is_ok());
        assert_eq!(parse_tokens("ab, 0xcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(format_tokens(&[0xab, 0xcd]), "ab,cd");
        let bad = ExploreArgs {
            ops: Some("xyz".into()),
            ..Default::default()
        };
        assert!(bad.validate(false).unwrap_err().contains("not hex"));
        let long = ExploreArgs {
            ops: Some(vec!["ffffffffffffffff"; 200].join(",")),
            ..Default::default()
        };
        assert!(long.validate(false).unwrap_err().contains("minimise"));
        let fb = ExploreArgs {
            fault_buffer_entries: Some(32),
            ..Default::default()
        };
        assert!(fb.validate(false).is_ok());
        assert!(fb.validate(true).unwrap_err().contains("--trace"));
    }
}

//! Reads the guest's serial console as it streams: the suite markers our `/init` prints,
//! the suites' KTAP, and kernel WARN/BUG/oops reports, which fail a run even when every
//! test said `ok`.

use std::time::Duration;

use crate::ktap::{self, Document, KtapParser, Tally};

/// `/init` prints this when it starts (guest-tests/init/init).
pub const INIT_MARKER: &str = "gp100emu: init reached";
/// `/init` prints this after the last suite, before powering off.
pub const DONE_MARKER: &str = "gp100emu: suite done";
const SUITE_MARKER: &str = "# gp100emu-suite: ";
/// `/bin/gp100emu-kmsg` (guest-tests/init/gp100emu-kmsg.c) prints each kernel log record of
/// level error or worse after this, as `<level> <message>`.
pub const KMSG_ERR_MARKER: &str = "gp100emu-kmsg-err: ";

/// Whether an error-level kernel record fails the run: nouveau's (its `nvkm_error` and
/// `dev_err` lines all name the driver or its PCI device's subdevs through "nouveau"; the
/// allocator's leak report, nvkm_mm_dump in nvkm/core/mm.c, says "nvkm: " instead).
fn is_failing_error(message: &str) -> bool {
    message.contains("nouveau") || message.starts_with("nvkm: ")
}

/// Kernel console lines that mean the kernel itself went wrong. Matched at the start of the
/// message (after the `[ seconds]` stamp), as the kernel prints them (lib/bug.c, kernel/panic.c,
/// arch/x86/mm/fault.c, mm/debug.c, lib/list_debug.c, kernel/hung_task.c, kernel/rcu/tree_stall.h).
const OOPS_PREFIXES: &[&str] = &[
    "WARNING: CPU:",
    "WARNING: at ",
    "BUG: ",
    "kernel BUG at ",
    "Oops: ",
    "Oops ",
    "general protection fault",
    "Kernel panic - not syncing",
    "UBSAN: ",
    "KASAN: ",
    "list_add corruption",
    "list_del corruption",
    "refcount_t: ",
    "page dumped because: ",
    "rcu: INFO: rcu_",
    "INFO: rcu_",
    "watchdog: BUG: ",
];

/// Strips a printk timestamp `[    1.234567] ` if present.
fn message_of(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let stamp = &rest[..end];
            if stamp
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
            {
                return rest[end + 1..].trim_start();
            }
        }
    }
    t
}

/// Whether a console line reports a kernel WARN, BUG, oops, panic or stall.
pub fn is_oops_line(line: &str) -> bool {
    let m = message_of(line);
    OOPS_PREFIXES.iter().any(|p| m.starts_with(p))
        || (m.starts_with("INFO: task ") && m.contains("blocked for more than"))
}

/// A kernel warning that is known and explained (guest-tests/known-issues.txt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownIssue {
    /// Substring of the WARN/BUG line.
    pub warning: String,
    /// Substrings earlier console lines must contain for the entry to apply (written
    /// `a && b` in the file: each must have occurred, on any line, in any order).
    pub after: Option<String>,
    /// Why it happens, with a reference.
    pub why: String,
}

impl KnownIssue {
    /// The first word of an entry that names an explorer finding instead of a console line.
    pub const FINDING: &'static str = "EXPLORE";

    /// Whether this entry names an explorer finding (`EXPLORE word...`): the host matches
    /// it against the finding lines of the explore suites, not against the console, and it
    /// is never judged stale (which findings a run shows depends on its seed).
    pub fn is_finding(&self) -> bool {
        self.warning.split_whitespace().next() == Some(Self::FINDING)
    }

    /// The substrings of the entry's context (`a && b`), each to be seen on some earlier line.
    pub fn after_parts(&self) -> impl Iterator<Item = &str> {
        self.after.iter().flat_map(|a| a.split("&&").map(str::trim))
    }

    /// The numbers of the project's patches its `why` names as the fix (`patches/0003`,
    /// `patches/7.3/0009`, `patches/0007, patches/7.3/0007`).
    pub fn fixed_by(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (i, _) in self.why.match_indices("patches/") {
            let rest = &self.why[i + "patches/".len()..];
            let rest = rest.strip_prefix("7.3/").unwrap_or(rest);
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if n.len() == 4 && !v.contains(&n) {
                v.push(n);
            }
        }
        v
    }
}

/// At most this many `&&` parts in one entry's context (a bit each).
const MAX_AFTER_PARTS: usize = 8;

/// Whether every part of `k`'s context is among `seen` (bit j: part j); true when it has none.
fn after_seen(k: &KnownIssue, seen: u8) -> bool {
    seen.count_ones() as usize == k.after_parts().count()
}

/// Parses the known-issues file format (see guest-tests/known-issues.txt).
pub fn parse_known_issues(text: &str) -> Result<Vec<KnownIssue>, String> {
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = l.splitn(3, '|').map(str::trim).collect();
        if parts.len() != 3 || parts[0].is_empty() || parts[2].is_empty() {
            return Err(format!(
                "known-issues line {}: want `warning | earlier line or empty | why`",
                n + 1
            ));
        }
        let k = KnownIssue {
            warning: parts[0].to_string(),
            after: (!parts[1].is_empty()).then(|| parts[1].to_string()),
            why: parts[2].to_string(),
        };
        let n_after = k.after_parts().count();
        if k.after_parts().any(str::is_empty) || n_after > MAX_AFTER_PARTS {
            return Err(format!(
                "known-issues line {}: the earlier line is `a && b && ...`, at most {MAX_AFTER_PARTS} \
                 parts, none empty",
                n + 1
            ));
        }
        v.push(k);
    }
    Ok(v)
}

/// The number of a patch file of the project's series (`NNNN-subject.patch` in a directory
/// `patches` or one below it, as guest-tests/kernel/patches/7.3/), or None for any other file.
pub fn series_number(patch: &std::path::Path) -> Option<String> {
    let name = patch.file_name()?.to_str()?;
    let n: String = name.chars().take_while(char::is_ascii_digit).collect();
    let in_series = patch
        .ancestors()
        .skip(1)
        .take(2)
        .any(|d| d.file_name().is_some_and(|f| f == "patches"));
    (n.len() == 4 && name[4..].starts_with('-') && in_series).then_some(n)
}

/// Leaves out the entries whose fix the run applied: a kernel with patches/0003 has not got
/// bug 3, so a finding that looks like it is something else and must fail, not be KNOWN.
/// Returns the entries that apply and, for each one left out, its warning and the patch.
pub fn without_fixed(
    issues: Vec<KnownIssue>,
    applied: &[std::path::PathBuf],
) -> (Vec<KnownIssue>, Vec<(String, String)>) {
    let numbers: Vec<String> = applied.iter().filter_map(|p| series_number(p)).collect();
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for k in issues {
        match k.fixed_by().into_iter().find(|n| numbers.contains(n)) {
            Some(n) => dropped.push((k.warning.clone(), n)),
            None => out.push(k),
        }
    }
    (out, dropped)
}

/// The known issues embedded from guest-tests/known-issues.txt.
pub fn builtin_known_issues() -> Vec<KnownIssue> {
    parse_known_issues(&String::from_utf8_lossy(crate::embedded::KNOWN_ISSUES))
        .expect("guest-tests/known-issues.txt is checked by a unit test")
}

/// A suite's begin/end as `/init` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRecord {
    /// Suite name.
    pub name: String,
    /// Its exit status, once it ended.
    pub rc: Option<i32>,
    /// `/init` said it has no such suite.
    pub missing: bool,
    /// When its begin marker arrived, on the monitor's clock ([`ConsoleMonitor::set_now`]).
    pub began: Option<Duration>,
    /// When its end marker arrived.
    pub ended: Option<Duration>,
}

/// How the guest run ended, as far as the monitor needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// QEMU exited (normally after `/init` powered off).
    Exited,
    /// The host gave up after this long.
    TimedOut(Duration),
    /// The user pressed Ctrl-C.
    Interrupted,
    /// The device process died; the text says how.
    DeviceDied(String),
}

/// The verdict of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Leaf counts and failed names.
    pub tally: Tally,
    /// Kernel WARN/BUG/oops lines seen.
    pub oopses: Vec<String>,
    /// Kernel warnings matched by a known issue: (line, why).
    pub known: Vec<(String, String)>,
    /// Explorer findings a known issue explains (`EXPLORE` entries): (finding line, why).
    /// Set by the host after the run (qemu-glue's explore::mark_known).
    pub known_findings: Vec<(String, String)>,
    /// Known issues whose earlier line occurred (or that need none) but whose warning did not
    /// (candidates for removal). An entry whose context never occurred is not judged.
    pub stale_known: Vec<String>,
    /// Known issues that matched a warning in this run.
    pub matched_known: Vec<String>,
    /// Error-level kernel log lines that fail the run (nouveau's), with the suite they came
    /// with (`boot` before the first).
    pub errors: Vec<String>,
    /// Other error-level kernel log lines (informational, not failures).
    pub other_errors: Vec<String>,
    /// Suites the host skipped without booting them: (suite, why).
    pub host_skips: Vec<(String, String)>,
    /// Why the run is incomplete or broken beyond test results.
    pub problems: Vec<String>,
    /// Suites as `/init` ran them.
    pub suites: Vec<SuiteRecord>,
    /// All KTAP documents.
    pub documents: Vec<Document>,
}

impl Verdict {
    /// Adds the verdict of another boot of the same run. A known issue is stale if some boot
    /// gave it its context without the warning, and no boot matched it.
    pub fn merge(&mut self, o: Verdict) {
        self.tally.passed += o.tally.passed;
        self.tally.failed += o.tally.failed;
        self.tally.skipped += o.tally.skipped;
        self.tally.failures.extend(o.tally.failures);
        self.oopses.extend(o.oopses);
        self.known.extend(o.known);
        self.known_findings.extend(o.known_findings);
        for k in o.stale_known {
            if !self.stale_known.contains(&k) {
                self.stale_known.push(k);
            }
        }
        for k in o.matched_known {
            if !self.matched_known.contains(&k) {
                self.matched_known.push(k);
            }
        }
        let matched = &self.matched_known;
        self.stale_known.retain(|k| !matched.contains(k));
        self.errors.extend(o.errors);
        self.other_errors.extend(o.other_errors);
        self.host_skips.extend(o.host_skips);
        self.problems.extend(o.problems);
        self.suites.extend(o.suites);
        self.documents.extend(o.documents);
    }

    /// `N passed, N failed, N skipped` (failed counts failed tests, oopses and problems).
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.tally.passed,
            self.failed(),
            self.tally.skipped
        )
    }

    /// Failures of every kind.
    pub fn failed(&self) -> u32 {
        self.tally.failed
            + self.oopses.len() as u32
            + self.errors.len() as u32
            + self.problems.len() as u32
    }

    /// Records that the host skipped `suite` without running it, and why: a skipped test in
    /// the counts, a `# SKIP` document in the KTAP and JUnit outputs, a line in the report.
    pub fn skip_suite(&mut self, suite: &str, why: &str) {
        self.tally.skipped += 1;
        self.host_skips.push((suite.to_string(), why.to_string()));
        self.documents.push(Document {
            suite: Some(suite.to_string()),
            plan: Some(1),
            tests: vec![ktap::TestCase {
                number: 1,
                name: suite.to_string(),
                outcome: ktap::Outcome::Skip,
                directive: Some(format!("SKIP {why}")),
                diagnostics: Vec::new(),
                subtests: Vec::new(),
                at: None,
            }],
            ..Document::default()
        });
    }

    /// Whether the run passed: something ran and nothing failed.
    pub fn passed(&self) -> bool {
        self.failed() == 0 && self.tally.passed + self.tally.skipped > 0
    }

    /// The process exit code for this verdict: 0 pass, 1 fail.
    pub fn exit_code(&self) -> i32 {
        if self.passed() {
            0
        } else {
            1
        }
    }

    /// A multi-line report: what failed and why, then the summary line.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for f in &self.tally.failures {
            s.push_str(&format!("FAIL {f}\n"));
        }
        for o in &self.oopses {
            s.push_str(&format!("FAIL kernel: {o}\n"));
        }
        for e in &self.errors {
            s.push_str(&format!("FAIL kernel error: {e}\n"));
        }
        for p in &self.problems {
            s.push_str(&format!("FAIL {p}\n"));
        }
        for (suite, why) in &self.host_skips {
            s.push_str(&format!("SKIP {suite}: {why}\n"));
        }
        for e in &self.other_errors {
            s.push_str(&format!(
                "note: kernel error line (not nouveau's, not counted): {e}\n"
            ));
        }
        for (line, why) in &self.known {
            s.push_str(&format!("KNOWN kernel: {line}\n      why: {why}\n"));
        }
        for (line, why) in &self.known_findings {
            s.push_str(&format!(
                "KNOWN explorer finding: {line}\n      why: {why}\n"
            ));
        }
        if !self.known.is_empty() || !self.known_findings.is_empty() {
            s.push_str(&format!(
                "{} known kernel issue(s) (warnings, errors, explorer findings), listed in guest-tests/known-issues.txt; not counted as passes\n",
                self.known.len() + self.known_findings.len()
            ));
        }
        for w in &self.stale_known {
            s.push_str(&format!(
                "note: known issue '{w}' did not occur in this run; remove it from guest-tests/known-issues.txt if it is gone for good\n"
            ));
        }
        if self.tally.passed + self.tally.skipped + self.failed() == 0 {
            s.push_str("FAIL no test ran\n");
        }
        s.push_str(&self.summary_line());
        s
    }
}

/// Most oops lines kept; a storm of warnings is summarised, not stored whole.
const MAX_OOPSES: usize = 50;
/// A kernel report left open this many lines after its first (no end-of-trace line seen) is
/// judged then.
const REPORT_LINES: usize = 80;

/// A kernel report being read (see `ConsoleMonitor::follow_report`).
#[derive(Debug)]
struct OpenReport {
    /// Its first line's message.
    first: String,
    /// The function its `RIP:` line names, once seen.
    rip: Option<String>,
    /// Lines read since the first.
    lines: usize,
    /// Its `---[ end trace` line came.
    ended: bool,
}

/// Watches console lines; see the module doc.
#[derive(Debug)]
pub struct ConsoleMonitor {
    expected: Vec<String>,
    known_issues: Vec<KnownIssue>,
    known_used: Vec<bool>,
    known: Vec<(String, String)>,
    /// Of each entry's `after` parts, those seen so far (bit j: part j).
    seen_parts: Vec<u8>,
    parser: KtapParser,
    /// The kernel report being read: judged once its RIP line names the function (or it ends).
    report: Option<OpenReport>,
    oopses: Vec<String>,
    oops_dropped: usize,
    errors: Vec<String>,
    other_errors: Vec<String>,
    suites: Vec<SuiteRecord>,
    init_reached: bool,
    done: bool,
    now: Option<Duration>,
}

impl ConsoleMonitor {
    /// A monitor expecting these suites to run, in order, with no known issues.
    pub fn new(expected: &[String]) -> Self {
        Self::with_known_issues(expected, Vec::new())
    }

    /// A monitor that reports warnings matching `known` as KNOWN instead of FAIL.
    pub fn with_known_issues(expected: &[String], known: Vec<KnownIssue>) -> Self {
        let n = known.len();
        Self {
            expected: expected.to_vec(),
            known_issues: known,
            known_used: vec![false; n],
            known: Vec::new(),
            seen_parts: vec![0; n],
            parser: KtapParser::new(),
            report: None,
            oopses: Vec::new(),
            oops_dropped: 0,
            errors: Vec::new(),
            other_errors: Vec::new(),
            suites: Vec::new(),
            init_reached: false,
            done: false,
            now: None,
        }
    }

    /// Sets the clock for the lines fed from now on (time since the guest started): suites and
    /// test results are stamped with it, for the durations in JUnit reports.
    pub fn set_now(&mut self, now: Duration) {
        self.now = Some(now);
        self.parser.set_now(now);
    }

    /// Which known issue explains `message`, if one applies at this point of the run.
    /// The first entry that matches and whose context was seen: one warning may have entries
    /// for several contexts (the svm and explore suites' cancels).
    fn known_issue_for(&self, message: &str) -> Option<usize> {
        self.known_issues.iter().enumerate().position(|(i, k)| {
            !k.is_finding() && message.contains(&k.warning) && after_seen(k, self.seen_parts[i])
        })
    }

    /// Notes that known issue `i` explained `message`.
    fn use_known(&mut self, i: usize, message: &str) {
        self.known_used[i] = true;
        if self.known.len() < MAX_OOPSES {
            self.known
                .push((message.to_string(), self.known_issues[i].why.clone()));
        }
    }

    /// An error-level kernel record listed by /init's gp100emu-kmsg.
    fn kmsg_error(&mut self, record: &str) {
        let message = record
            .split_once(' ')
            .map(|(_, m)| m)
            .unwrap_or(record)
            .trim();
        // /init lists the records after each suite ends: they came with the last one begun.
        let during = self.suites.last().map_or("boot", |s| s.name.as_str());
        let line = format!("[{during}] {message}");
        if !is_failing_error(message) {
            if self.other_errors.len() < MAX_OOPSES {
                self.other_errors.push(line);
            }
            return;
        }
        if let Some(i) = self.known_issue_for(message) {
            self.use_known(i, &line);
        } else if self.errors.len() < MAX_OOPSES {
            self.errors.push(line);
        } else {
            self.oops_dropped += 1;
        }
    }

    /// Whether `/init` has started.
    pub fn init_reached(&self) -> bool {
        self.init_reached
    }

    /// Whether `/init` said all suites are done.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feeds one console line; returns true when the guest has finished its suites.
    pub fn feed_line(&mut self, line: &str) -> bool {
        if let Some(rec) = line.trim_end().strip_prefix(KMSG_ERR_MARKER) {
            self.kmsg_error(rec);
            return false;
        }
        self.follow_report(line);
        for i in 0..self.known_issues.len() {
            if after_seen(&self.known_issues[i], self.seen_parts[i]) {
                continue;
            }
            for (j, part) in self.known_issues[i].after_parts().enumerate() {
                if line.contains(part) {
                    self.seen_parts[i] |= 1 << j;
                }
            }
        }
        let t = line.trim_end();
        if t.contains(INIT_MARKER) {
            self.init_reached = true;
        }
        if t.starts_with(DONE_MARKER) {
            self.parser.set_suite(None);
            self.done = true;
            return true;
        }
        if let Some(m) = t.strip_prefix(SUITE_MARKER) {
            self.suite_marker(m);
            return false;
        }
        self.parser.feed_line(line);
        false
    }

    /// Kernel reports span lines: `BUG: kernel NULL pointer dereference, address: ...`, then
    /// `Oops: ...`, then `RIP: 0010:function+0x../0x..`, ..., `---[ end trace ... ]---`, and
    /// with `oops=panic` a `Kernel panic - not syncing: Fatal exception`. One report is one
    /// finding, judged (known or not) with its first line and the function its RIP line names,
    /// so a known-issues entry can name the function an oops happened in.
    fn follow_report(&mut self, line: &str) {
        let m = message_of(line);
        let fatal = m.starts_with("Kernel panic - not syncing: Fatal exception");
        if is_oops_line(line) && self.report.as_ref().is_some_and(|r| r.ended) {
            // After its end of trace the kernel reprints the registers; oops=panic's panic
            // still belongs to the report, any other report starts anew.
            self.close_report();
            if fatal {
                return;
            }
        }
        if is_oops_line(line) {
            let continues = self
                .report
                .as_ref()
                .is_some_and(|r| (m.starts_with("Oops") && r.rip.is_none()) || fatal);
            if !continues {
                self.close_report();
                self.report = Some(OpenReport {
                    first: m.to_string(),
                    rip: None,
                    lines: 0,
                    ended: false,
                });
            }
            return;
        }
        let Some(r) = &mut self.report else { return };
        r.lines += 1;
        if r.rip.is_none() {
            if let Some(rip) = m.strip_prefix("RIP: ") {
                // `0010:function+0x2d/0x1a0 [module]`: the segment selector goes.
                let f = rip.split_once(':').map_or(rip, |(_, f)| f);
                r.rip = Some(f.trim().to_string());
            }
        }
        if m.starts_with("---[ end trace") {
            r.ended = true;
        } else if r.lines > REPORT_LINES {
            self.close_report();
        }
    }

    /// Judges the open kernel report, if any: known (with its reason) or a failure.
    fn close_report(&mut self) {
        let Some(r) = self.report.take() else { return };
        let m = match &r.rip {
            Some(f) => format!("{} [RIP {f}]", r.first),
            None => r.first,
        };
        if let Some(i) = self.known_issue_for(&m) {
            self.use_known(i, &m);
        } else if self.oopses.len() < MAX_OOPSES {
            self.oopses.push(m);
        } else {
            self.oops_dropped += 1;
        }
    }

    fn suite_marker(&mut self, m: &str) {
        if let Some(name) = m.strip_suffix(" begins") {
            self.parser.set_suite(Some(name.to_string()));
            self.suites.push(SuiteRecord {
                name: name.to_string(),
                rc: None,
                missing: false,
                began: self.now,
                ended: None,
            });
        } else if let Some((name, rc)) = m.split_once(" ends rc=") {
            self.parser.set_suite(None);
            let rc = rc.trim().parse().unwrap_or(-1);
            match self.suites.iter_mut().rev().find(|s| s.name == name) {
                Some(s) => {
                    s.rc = Some(rc);
                    s.ended = self.now;
                }
                None => self.suites.push(SuiteRecord {
                    name: name.to_string(),
                    rc: Some(rc),
                    missing: false,
                    began: None,
                    ended: self.now,
                }),
            }
        } else if m.contains(": no such suite") {
            if let Some(s) = self.suites.last_mut() {
                s.missing = true;
            }
        }
    }

    /// The verdict, given how the run ended.
    pub fn finish(mut self, end: RunEnd) -> Verdict {
        self.close_report();
        let mut problems = Vec::new();
        match &end {
            RunEnd::Exited => {}
            RunEnd::TimedOut(d) => problems.push(format!(
                "the guest did not finish within {} s (hung? raise --timeout if it is just slow){}",
                d.as_secs(),
                match self.suites.last() {
                    Some(s) if s.rc.is_none() => format!("; suite '{}' was running", s.name),
                    _ => String::new(),
                }
            )),
            RunEnd::Interrupted => problems.push("interrupted by the user".into()),
            RunEnd::DeviceDied(how) => problems.push(format!("the device process died: {how}")),
        }
        if !self.init_reached {
            problems.push(
                "the guest never reached /init (kernel or initramfs problem: see the console above)"
                    .into(),
            );
        } else if !self.done && end == RunEnd::Exited {
            problems.push("the guest stopped before /init finished its suites".into());
        }
        for want in &self.expected {
            match self.suites.iter().find(|s| &s.name == want) {
                None if self.init_reached => problems.push(format!("suite '{want}' never started")),
                Some(s) if s.missing => {
                    problems.push(format!("suite '{want}' is not in the initramfs"))
                }
                _ => {}
            }
        }
        let documents = self.parser.finish();
        for s in &self.suites {
            let printed = documents
                .iter()
                .any(|d| d.suite.as_deref() == Some(&s.name));
            if !printed && !s.missing && s.rc.is_some() {
                problems.push(format!("suite '{}' printed no KTAP", s.name));
            }
        }
        let tally = ktap::tally(&documents);
        for s in &self.suites {
            if let Some(rc) = s.rc {
                let failed_in_suite = tally.failures.iter().any(|f| {
                    f.starts_with(&format!("{}/", s.name)) || f.starts_with(&format!("{}:", s.name))
                });
                if rc != 0 && !s.missing && !failed_in_suite {
                    problems.push(format!(
                        "suite '{}' exited with status {rc} though no test in it failed",
                        s.name
                    ));
                }
            }
        }
        let mut oopses = self.oopses;
        if self.oops_dropped > 0 {
            oopses.push(format!(
                "... and {} more kernel warnings",
                self.oops_dropped
            ));
        }
        let judged = |i: usize| {
            let k = &self.known_issues[i];
            !k.is_finding() && after_seen(k, self.seen_parts[i])
        };
        let stale_known = (0..self.known_issues.len())
            .filter(|&i| judged(i) && !self.known_used[i])
            .map(|i| self.known_issues[i].warning.clone())
            .collect();
        let matched_known = (0..self.known_issues.len())
            .filter(|&i| self.known_used[i])
            .map(|i| self.known_issues[i].warning.clone())
            .collect();
        Verdict {
            tally,
            oopses,
            known: self.known,
            known_findings: Vec::new(),
            stale_known,
            matched_known,
            errors: self.errors,
            other_errors: self.other_errors,
            host_skips: Vec::new(),
            problems,
            suites: self.suites,
            documents,
        }
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn merged_boots_add_up_and_stale_means_no_boot_matched() {
        let mut a = Verdict::default();
        a.tally.passed = 3;
        a.tally.failures.push("x".into());
        a.tally.failed = 1;
        a.stale_known = vec!["w1".into(), "w2".into()];
        let mut b = Verdict::default();
        b.tally.passed = 2;
        b.tally.skipped = 1;
        // w1 matched in b; w3 is stale only in b (a never gave it its context).
        b.matched_known = vec!["w1".into()];
        b.stale_known = vec!["w3".into()];
        b.problems.push("p".into());
        a.merge(b);
        assert_eq!((a.tally.passed, a.tally.skipped, a.failed()), (5, 1, 2));
        assert_eq!(a.stale_known, vec!["w2".to_string(), "w3".to_string()]);
        assert!(!a.passed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, expected: &[&str], end: RunEnd) -> Verdict {
        let exp: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        let mut m = ConsoleMonitor::new(&exp);
        for l in text.lines() {
            if m.feed_line(l) {
                break;
            }
        }
        m.finish(end)
    }

    #[test]
    fn oops_lines() {
        assert!(is_oops_line(
            "[   12.345678] WARNING: CPU: 0 PID: 1 at mm/hmm.c:10 foo+0x1/0x2"
        ));
        assert!(is_oops_line(
            "[    3.000000] BUG: unable to handle page fault for address: 0000000000000008"
        ));
        assert!(is_oops_line(
            "Oops: general protection fault, probably for non-canonical address"
        ));
        assert!(is_oops_line(
            "[ 9.1] Kernel panic - not syncing: Attempted to kill init!"
        ));
        assert!(is_oops_line(
            "[ 120.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds."
        ));
        assert!(!is_oops_line(
            "[    1.0] nouveau 0000:00:02.0: NVIDIA GP100 (130000a1)"
        ));
        assert!(!is_oops_line(
            "ok 1 hmm.hmm_device_private.anon_write # BUG: not at start"
        ));
        assert!(!is_oops_line(
            "# some test mentions WARNING: CPU: in a diagnostic"
        ));
    }

    #[test]
    fn good_run_passes() {
        let text = "[ 0.5] booting\ngp100emu: init reached at 1.0 s\n# gp100emu-suite: smoke begins\nKTAP version 1\n1..2\nok 1 a\nok 2 b # SKIP nothing to do\n# gp100emu-suite: smoke ends rc=0\ngp100emu: suite done\n";
        let v = run(text, &["smoke"], RunEnd::Exited);
        assert!(v.passed(), "{}", v.report());
        assert_eq!(v.summary_line(), "1 passed, 0 failed, 1 skipped");
        assert_eq!(v.exit_code(), 0);
        assert_eq!(v.documents[0].suite.as_deref(), Some("smoke"));
    }

    const SVM_OK: &str = "gp100emu: init reached at 1.0 s\ngp100emu-kmsg: errors logged during boot follow\n\
        gp100emu-kmsg-err: 3 ACPI: some firmware complaint\n# gp100emu-suite: svm begins\nKTAP version 1\n1..1\n\
        ok 1 a\n# gp100emu-suite: svm ends rc=0\ngp100emu-kmsg: errors logged during suite svm follow\n";

    #[test]
    fn nouveau_error_lines_fail_the_run_and_name_their_suite() {
        let text = format!(
            "{SVM_OK}gp100emu-kmsg-err: 3 nouveau 0000:00:02.0: svm[77]: failed to idle channel 2 [svm[77]]\ngp100emu: suite done\n"
        );
        let v = run(&text, &["svm"], RunEnd::Exited);
        assert!(!v.passed(), "{}", v.report());
        assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
        assert!(v.errors[0].starts_with("[svm] nouveau 0000:00:02.0: svm[77]: failed to idle"));
        assert!(
            v.report().contains("FAIL kernel error: [svm] nouveau"),
            "{}",
            v.report()
        );
        // Another subsystem's error line is listed, not counted.
        assert_eq!(
            v.other_errors,
            vec!["[boot] ACPI: some firmware complaint".to_string()]
        );
        assert_eq!(v.summary_line(), "1 passed, 1 failed, 0 skipped");
        // The raw console copy of the same line (no level visible) is not a finding by itself.
        let plain = format!(
            "{SVM_OK}[ 9.0] nouveau 0000:00:02.0: fifo: some info line\ngp100emu: suite done\n"
        );
        assert!(run(&plain, &["svm"], RunEnd::Exited).passed());
    }

    #[test]
    fn a_known_nouveau_error_is_known_not_a_failure() {
        let known = parse_known_issues(
            "failed to idle channel | gp100emu-suite: svm begins | the reason, with its analysis\n",
        )
        .unwrap();
        let mut m = ConsoleMonitor::with_known_issues(&["svm".to_string()], known);
        let text = format!(
            "{SVM_OK}gp100emu-kmsg-err: 3 nouveau 0000:00:02.0: svm[77]: failed to idle channel 2\ngp100emu: suite done\n"
        );
        for l in text.lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(v.passed(), "{}", v.report());
        assert_eq!(v.known.len(), 1);
        assert!(
            v.report().contains("KNOWN kernel: [svm] nouveau"),
            "{}",
            v.report()
        );
    }

    #[test]
    fn a_host_skipped_suite_is_counted_and_explained() {
        let mut v = run(
            &format!("{SVM_OK}gp100emu: suite done\n"),
            &["svm"],
            RunEnd::Exited,
        );
        v.skip_suite("hmm", "hmm-tests does not build against this kernel: x");
        assert_eq!(v.summary_line(), "1 passed, 0 failed, 1 skipped");
        assert!(
            v.report().contains("SKIP hmm: hmm-tests does not build"),
            "{}",
            v.report()
        );
        assert!(v.passed());
    }

    #[test]
    fn warn_fails_a_run_whose_tests_passed() {
        let text = "gp100emu: init reached\n# gp100emu-suite: smoke begins\nKTAP version 1\n1..1\n[ 2.0] ------------[ cut here ]------------\n[ 2.0] WARNING: CPU: 0 PID: 55 at mm/migrate_device.c:300 migrate_vma_setup+0x1/0x2\nok 1 a\n# gp100emu-suite: smoke ends rc=0\ngp100emu: suite done\n";
        let v = run(text, &["smoke"], RunEnd::Exited);
        assert!(!v.passed());
        assert_eq!(v.summary_line(), "1 passed, 1 failed, 0 skipped");
        assert!(
            v.report().contains("FAIL kernel: WARNING: CPU: 0 PID: 55"),
            "{}",
            v.report()
        );
    }

    #[test]
    fn timeout_names_the_running_suite() {
        let text =
            "gp100emu: init reached\n# gp100emu-suite: hmm begins\nTAP version 13\n1..5\nok 1 x\n";
        let v = run(text, &["hmm"], RunEnd::TimedOut(Duration::from_secs(30)));
        assert!(!v.passed());
        let r = v.report();
        assert!(r.contains("did not finish within 30 s"), "{r}");
        assert!(r.contains("suite 'hmm' was running"), "{r}");
        assert!(r.contains("planned 5 tests, saw 1"), "{r}");
    }

    #[test]
    fn never_reaching_init_fails() {
        let v = run("[ 0.1] Linux version 6.12\n[ 0.9] Kernel panic - not syncing: VFS: Unable to mount root fs\n", &["smoke"], RunEnd::Exited);
        assert!(!v.passed());
        assert!(v.report().contains("never reached /init"));
        assert_eq!(v.oopses.len(), 1);
    }

    #[test]
    fn missing_suite_and_silent_failure() {
        let text = "gp100emu: init reached\n# gp100emu-suite: nope begins\n# gp100emu-suite: nope: no such suite in this initramfs (have: smoke)\n# gp100emu-suite: nope ends rc=127\n# gp100emu-suite: smoke begins\n# gp100emu-suite: smoke ends rc=1\ngp100emu: suite done\n";
        let v = run(text, &["nope", "smoke"], RunEnd::Exited);
        let r = v.report();
        assert!(r.contains("suite 'nope' is not in the initramfs"), "{r}");
        assert!(r.contains("suite 'smoke' printed no KTAP"), "{r}");
        assert!(r.contains("suite 'smoke' exited with status 1"), "{r}");
    }

    #[test]
    fn builtin_known_issues_parse() {
        let k = builtin_known_issues();
        assert!(k.iter().all(|k| !k.why.is_empty()));
        assert!(parse_known_issues("only | two").is_err());
        let two = parse_known_issues("# c\n\na | b | why\nc |  | why not\n").unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].after, None);
    }

    /// An explorer-finding entry (`EXPLORE ...`) is for the host's finding lines: a console
    /// line with its words is not excused by it, and it is never judged stale.
    #[test]
    fn finding_entries_are_not_console_entries() {
        let known = parse_known_issues("EXPLORE kind=pte-check WARNING: | | a finding\n").unwrap();
        assert!(known[0].is_finding());
        assert!(builtin_known_issues().iter().any(KnownIssue::is_finding));
        let body = "gp100emu: init reached\n# gp100emu-suite: explore begins\nKTAP version 1\n1..1\nok 1 a\n# gp100emu-suite: explore ends rc=0\ngp100emu: suite done\n";
        let warn = "[ 1.0] WARNING: CPU: 0 PID: 1 at EXPLORE kind=pte-check WARNING: x+0x1/0x2\n";
        let mut m = ConsoleMonitor::with_known_issues(&["explore".into()], known.clone());
        for l in format!("{warn}{body}").lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert_eq!(v.oopses.len(), 1, "{v:?}");
        assert!(v.known.is_empty());
        assert!(v.stale_known.is_empty());
    }

    /// The two warnings nouveau's failed probe caused before the probe got past the VBIOS
    /// (they were in known-issues.txt then; the recorded consoles below show them).
    fn msi_leak_known_issues() -> Vec<KnownIssue> {
        parse_known_issues(
            "at kernel/irq/msi.c:292 | probe with driver nouveau failed | nouveau_drm_probe() leaks the nvkm device and its MSI vectors when the ctor fails\n\
             at kernel/irq/irqdomain.c:393 | probe with driver nouveau failed | the same leak, seen from irq_domain_remove()\n",
        )
        .unwrap()
    }

    #[test]
    fn one_warning_may_have_entries_for_several_contexts() {
        let entry = |after: &str| KnownIssue {
            warning: "gf100_gr_fecs_ctrl_ctxsw".into(),
            after: Some(after.into()),
            why: format!("cancel in {after}"),
        };
        let known = vec![
            entry("gp100emu-suite: svm begins"),
            entry("gp100emu-suite: explore begins"),
        ];
        let mut m = ConsoleMonitor::with_known_issues(&["explore".into()], known);
        for l in "gp100emu: init reached\n# gp100emu-suite: explore begins\n[ 1.0] WARNING: CPU: 0 PID: 9 at gf100.c:759 gf100_gr_fecs_ctrl_ctxsw+0xc9/0xe2\nKTAP version 1\n1..1\nok 1 a\n# gp100emu-suite: explore ends rc=0\ngp100emu: suite done\n".lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(v.oopses.is_empty(), "{}", v.report());
        assert_eq!(v.known.len(), 1);
        assert!(
            v.known[0].1.contains("explore"),
            "the entry whose context was seen"
        );
    }

    /// A context of several parts (`a && b`) applies once every part was seen, on any lines
    /// in any order; with one part missing the error is a failure, and the entry not stale.
    #[test]
    fn a_context_of_several_parts_needs_them_all() {
        let known = parse_known_issues(
            "failed to create kernel channel, -22 | Linux version 6.1. && gp100emu.gr_firmware=none | no GR runlist\n",
        )
        .unwrap();
        let err = "gp100emu-kmsg-err: 3 nouveau 0000:00:02.0: DRM: failed to create kernel channel, -22\n";
        let body = "gp100emu: init reached\n# gp100emu-suite: probe begins\nKTAP version 1\n1..1\nok 1 a\n# gp100emu-suite: probe ends rc=0\n";
        let boot = |cmdline: &str, version: &str| {
            let mut m = ConsoleMonitor::with_known_issues(&["probe".into()], known.clone());
            for l in format!("Command line: {cmdline}\nLinux version {version} (gcc)\n{err}{body}gp100emu: suite done\n").lines() {
                m.feed_line(l);
            }
            m.finish(RunEnd::Exited)
        };
        let v = boot("gp100emu.suite=probe gp100emu.gr_firmware=none", "6.1.176");
        assert!(v.errors.is_empty() && v.known.len() == 1, "{}", v.report());
        for (cmdline, version) in [
            (
                "gp100emu.suite=probe gp100emu.gr_firmware=generated",
                "6.1.176",
            ),
            ("gp100emu.suite=probe gp100emu.gr_firmware=none", "6.12.95"),
            ("gp100emu.suite=probe gp100emu.gr_firmware=none", "6.10.2"),
        ] {
            let v = boot(cmdline, version);
            assert_eq!(v.errors.len(), 1, "{cmdline} {version}: {}", v.report());
            assert!(v.stale_known.is_empty(), "{cmdline} {version}");
        }
        assert!(
            parse_known_issues("w | a && | why\n").is_err(),
            "an empty part"
        );
    }

    /// An entry that names the project's patch as its fix does not apply to a kernel built
    /// with that patch; a patch of another series or a file elsewhere changes nothing.
    #[test]
    fn entries_fixed_by_an_applied_patch_are_left_out() {
        let known = parse_known_issues(
            "EXPLORE kind=pte-check gpu-page=2m | | merged regions (svm case 19, patches/0003)\n\
             gp100_vmm_mthd | | a cancel\n\
             EXPLORE kind=gpu-not-served region=thp | | both (patches/0007, patches/7.3/0009)\n",
        )
        .unwrap();
        assert_eq!(known[2].fixed_by(), vec!["0007", "0009"]);
        let p = |s: &str| std::path::PathBuf::from(s);
        let ours = [
            p("guest-tests/kernel/patches/0003-drm-merge.patch"),
            p("/x/guest-tests/kernel/patches/7.3/0009-drm-shift.patch"),
        ];
        let (kept, dropped) = without_fixed(known.clone(), &ours);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].warning, "gp100_vmm_mthd");
        assert_eq!(dropped[0].1, "0003");
        for other in [
            p("/tmp/0003-mine.patch"),
            p("patches/0003.patch"),
            p("patches/x/y/0003-a.patch"),
        ] {
            let (kept, dropped) = without_fixed(known.clone(), std::slice::from_ref(&other));
            assert!(dropped.is_empty() && kept.len() == 3, "{other:?}");
        }
    }

    /// An x86 NULL-pointer oops as 6.12 prints it, with `oops=panic`.
    const NULL_OOPS: &str = "[ 50.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
        [ 50.1] #PF: supervisor read access in kernel mode\n[ 50.1] PGD 0 P4D 0\n\
        [ 50.1] Oops: Oops: 0000 [#1] SMP NOPTI\n[ 50.1] CPU: 0 UID: 0 PID: 77 Comm: explore Not tainted 6.12.95 #1\n\
        [ 50.1] RIP: 0010:nvkm_vmm_unref_ptes+0x2d/0x1a0\n[ 50.1] Call Trace:\n[ 50.1]  <TASK>\n\
        [ 50.1] ---[ end trace 0000000000000000 ]---\n[ 50.1] RIP: 0010:nvkm_vmm_unref_ptes+0x2d/0x1a0\n\
        [ 50.1] CR2: 0000000000000008\n[ 50.1] Kernel panic - not syncing: Fatal exception\n[ 50.1] Kernel Offset: disabled\n";

    #[test]
    fn an_oops_is_one_finding_named_by_its_rip_function() {
        let body = "gp100emu: init reached\n# gp100emu-suite: explore begins\nKTAP version 1\n1..1\nok 1 a\n";
        let v = run(&format!("{body}{NULL_OOPS}"), &["explore"], RunEnd::Exited);
        assert_eq!(v.oopses.len(), 1, "{:?}", v.oopses);
        assert!(
            v.oopses[0].starts_with("BUG: kernel NULL pointer dereference")
                && v.oopses[0].ends_with("[RIP nvkm_vmm_unref_ptes+0x2d/0x1a0]"),
            "{:?}",
            v.oopses
        );
        // A known-issues entry can name the function; the report is then KNOWN, not a pass.
        let known = parse_known_issues(
            "[RIP nvkm_vmm_unref_ptes+ | gp100emu-suite: explore begins | mixed page sizes\n",
        )
        .unwrap();
        let mut m = ConsoleMonitor::with_known_issues(&["explore".into()], known);
        for l in format!("{body}{NULL_OOPS}").lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(v.oopses.is_empty(), "{}", v.report());
        assert_eq!(v.known.len(), 1);
        assert!(
            !v.passed(),
            "the guest stopped before /init finished: {}",
            v.report()
        );
        // Two warnings in a row stay two findings; a report with no RIP is judged at the end.
        let two = "[ 1.0] WARNING: CPU: 0 PID: 9 at a.c:1 f+0x1/0x2\n[ 1.0] RIP: 0010:f+0x1/0x2\n\
                   [ 1.1] WARNING: CPU: 0 PID: 9 at a.c:1 f+0x1/0x2\n[ 2.0] INFO: task x:1 blocked for more than 120 seconds.\n";
        let v = run(two, &[], RunEnd::Exited);
        assert_eq!(v.oopses.len(), 3, "{:?}", v.oopses);
    }

    #[test]
    fn known_warning_needs_its_earlier_line() {
        let known = vec![KnownIssue {
            warning: "at kernel/irq/msi.c:292".into(),
            after: Some("probe with driver nouveau failed".into()),
            why: "leak".into(),
        }];
        let body = "gp100emu: init reached\n# gp100emu-suite: smoke begins\nKTAP version 1\n1..1\nok 1 a\n# gp100emu-suite: smoke ends rc=0\ngp100emu: suite done\n";
        let warn = "[ 1.0] WARNING: CPU: 0 PID: 1 at kernel/irq/msi.c:292 msi_device_data_release+0x1/0x2\n";
        // Without the earlier probe failure the warning is a failure.
        let mut m = ConsoleMonitor::with_known_issues(&["smoke".into()], known.clone());
        for l in format!("{warn}{body}").lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(!v.passed());
        assert_eq!(v.oopses.len(), 1);
        // Its earlier line never occurred, so the entry is not judged stale either.
        assert!(v.stale_known.is_empty());
        // The earlier line without the warning: the entry is stale.
        let mut m = ConsoleMonitor::with_known_issues(&["smoke".into()], known.clone());
        for l in format!(
            "[ 0.9] nouveau 0000:00:02.0: probe with driver nouveau failed with error -22\n{body}"
        )
        .lines()
        {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(v.passed(), "{}", v.report());
        assert_eq!(v.stale_known, vec!["at kernel/irq/msi.c:292".to_string()]);
        // After it, the warning is known: reported, not failed, not passed.
        let mut m = ConsoleMonitor::with_known_issues(&["smoke".into()], known);
        for l in format!("[ 0.9] nouveau 0000:00:02.0: probe with driver nouveau failed with error -22\n{warn}{body}").lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert!(v.passed(), "{}", v.report());
        assert_eq!(v.summary_line(), "1 passed, 0 failed, 0 skipped");
        assert!(v
            .report()
            .contains("KNOWN kernel: WARNING: CPU: 0 PID: 1 at kernel/irq/msi.c:292"));
        assert!(v.stale_known.is_empty());
        assert_eq!(v.matched_known, vec!["at kernel/irq/msi.c:292".to_string()]);
    }

    fn replay_console(text: &str, expected: &[&str]) -> Verdict {
        let exp: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        let mut m = ConsoleMonitor::with_known_issues(&exp, msi_leak_known_issues());
        for l in text.lines() {
            if m.feed_line(l) {
                break;
            }
        }
        m.finish(RunEnd::Exited)
    }

    #[test]
    fn recorded_smoke_and_hmm_run() {
        let v = replay_console(
            include_str!("../testdata/smoke-hmm-6.12.95.console"),
            &["smoke", "hmm"],
        );
        assert_eq!(
            v.summary_line(),
            "34 passed, 0 failed, 29 skipped",
            "{}",
            v.report()
        );
        assert!(v.passed());
        // The two MSI warnings of nouveau's failed probe are real WARNs, explained as known.
        assert_eq!(v.known.len(), 2, "{}", v.report());
        assert!(v.oopses.is_empty());
        assert_eq!(v.suites.len(), 2);
        assert!(v.suites.iter().all(|s| s.rc == Some(0)));
        // Without the known-issues list the same console fails on them.
        let mut m = ConsoleMonitor::new(&["smoke".into(), "hmm".into()]);
        for l in include_str!("../testdata/smoke-hmm-6.12.95.console").lines() {
            m.feed_line(l);
        }
        let v = m.finish(RunEnd::Exited);
        assert_eq!(v.summary_line(), "34 passed, 2 failed, 29 skipped");
    }

    #[test]
    fn recorded_run_with_failing_hmm_tests() {
        let v = replay_console(
            include_str!("../testdata/smoke-hmm-thp-always-6.12.95.console"),
            &["smoke", "hmm"],
        );
        // Four hmm-tests failures; the two symbol-less warnings are still known (they match
        // by file and line).
        assert_eq!(v.tally.failed, 4, "{}", v.report());
        assert!(v
            .tally
            .failures
            .contains(&"hmm/hmm.hmm_device_private.exclusive_cow".to_string()));
        assert!(!v.passed());
        assert_eq!(v.exit_code(), 1);
    }

    #[test]
    fn recorded_device_coherent_run() {
        let v = replay_console(
            include_str!("../testdata/hmm-coherent-6.12.95.console"),
            &["hmm"],
        );
        assert_eq!(
            v.summary_line(),
            "58 passed, 0 failed, 0 skipped",
            "{}",
            v.report()
        );
    }

    #[test]
    fn nothing_ran_is_not_a_pass() {
        let v = run(
            "gp100emu: init reached\ngp100emu: suite done\n",
            &[],
            RunEnd::Exited,
        );
        assert!(!v.passed());
        assert!(v.report().contains("no test ran"));
    }
}

//! A streaming parser for KTAP (and the TAP 13 that kselftest prints), nested by indentation.
//!
//! Format: <https://docs.kernel.org/dev-tools/ktap.html>. A document starts with
//! `KTAP version 1` (or `TAP version 13`), has a plan `1..N` and result lines
//! `ok|not ok N [- ]name [# SKIP|TODO|XFAIL reason]`. A subtest is a document indented
//! deeper than its parent, closed by the parent's result line for it. Lines that are not
//! KTAP (the kernel's own console output, busybox chatter) are ignored wherever they fall,
//! because the guest console interleaves them.

/// The result of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`.
    Pass,
    /// `not ok` without a SKIP/TODO directive.
    Fail,
    /// `# SKIP` (on `ok` or `not ok`).
    Skip,
    /// `# TODO` or `# XFAIL`: an expected failure, not counted against the run.
    Todo,
}

/// One result line, with what was nested under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The number on the result line.
    pub number: u32,
    /// The test's name.
    pub name: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// The directive's text (`SKIP reason`), if any.
    pub directive: Option<String>,
    /// `# ...` lines printed at this level before the result.
    pub diagnostics: Vec<String>,
    /// The nested document this result closes, if any.
    pub subtests: Vec<TestCase>,
    /// When its result line arrived, on the clock the reader set ([`KtapParser::set_now`]);
    /// None when nobody set one. Durations for reports are the differences.
    pub at: Option<std::time::Duration>,
}

/// One top-level KTAP document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The guest suite that printed it (set by the console monitor), if known.
    pub suite: Option<String>,
    /// `1..N`, if seen.
    pub plan: Option<u32>,
    /// Top-level results.
    pub tests: Vec<TestCase>,
    /// `Bail out!` reason, if the producer gave up.
    pub bail_out: Option<String>,
    /// Inconsistencies found while parsing (missing results, unclosed subtests).
    pub problems: Vec<String>,
    /// When its header arrived, on the reader's clock (see [`TestCase::at`]).
    pub started: Option<std::time::Duration>,
    /// Top-level diagnostics after its last result (what a producer said before it died).
    pub trailing: Vec<String>,
}

/// Leaf counts over documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passed leaves.
    pub passed: u32,
    /// Failed leaves, plus failures of a parent none of whose children failed, plus problems.
    pub failed: u32,
    /// Skipped or expected-failure leaves.
    pub skipped: u32,
    /// `suite: parent/child` names of what failed, with the reason for problems.
    pub failures: Vec<String>,
}

impl Tally {
    fn add_case(&mut self, prefix: &str, t: &TestCase) {
        let path = if prefix.is_empty() {
            t.name.clone()
        } else {
            format!("{prefix}/{}", t.name)
        };
        if t.subtests.is_empty() {
            match t.outcome {
                Outcome::Pass => self.passed += 1,
                Outcome::Skip | Outcome::Todo => self.skipped += 1,
                Outcome::Fail => {
                    self.failed += 1;
                    self.failures.push(path);
                }
            }
            return;
        }
        let before = self.failed;
        for s in &t.subtests {
            self.add_case(&path, s);
        }
        if t.outcome == Outcome::Fail && self.failed == before {
            // The parent failed though no child did (a suite-level init error, say).
            self.failed += 1;
            self.failures.push(path);
        }
    }

    /// Adds a whole document.
    pub fn add_document(&mut self, d: &Document) {
        let prefix = d.suite.clone().unwrap_or_default();
        for t in &d.tests {
            self.add_case(&prefix, t);
        }
        let label = d.suite.as_deref().unwrap_or("ktap");
        if let Some(b) = &d.bail_out {
            self.failed += 1;
            self.failures.push(format!("{label}: bailed out: {b}"));
        }
        for p in &d.problems {
            self.failed += 1;
            self.failures.push(format!("{label}: {p}"));
        }
    }
}

/// One open nesting level.
#[derive(Debug, Default)]
struct Level {
    indent: usize,
    name: Option<String>,
    plan: Option<u32>,
    tests: Vec<TestCase>,
    pending_diags: Vec<String>,
}

/// What a result line says.
struct ResultLine {
    outcome: Outcome,
    number: u32,
    name: String,
    directive: Option<String>,
}

fn parse_result(s: &str) -> Option<ResultLine> {
    let (failed, rest) = if let Some(r) = s.strip_prefix("not ok ") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("ok ") {
        (false, r)
    } else {
        return None;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let number: u32 = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.find('#') {
        Some(i) => (rest[..i].trim(), Some(rest[i + 1..].trim().to_string())),
        None => (rest.trim(), None),
    };
    let kind = directive.as_deref().map(|d| {
        d.split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    });
    let outcome = match kind.as_deref() {
        Some("SKIP") => Outcome::Skip,
        Some("TODO") | Some("XFAIL") => Outcome::Todo,
        _ if failed => Outcome::Fail,
        _ => Outcome::Pass,
    };
    // A '#' that is not a directive is part of the name (kselftest never does this, but be fair).
    let (name, directive) = match kind.as_deref() {
        Some("SKIP") | Some("TODO") | Some("XFAIL") => (name.to_string(), directive),
        Some(_) => (rest.trim().to_string(), None),
        None => (name.to_string(), None),
    };
    Some(ResultLine {
        outcome,
        number,
        name,
        directive,
    })
}

fn parse_plan(s: &str) -> Option<u32> {
    let r = s.strip_prefix("1..")?;
    let digits = r.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let tail = r[digits..].trim_start();
    if !(tail.is_empty() || tail.starts_with('#')) {
        return None;
    }
    r[..digits].parse().ok()
}

fn is_header(s: &str) -> bool {
    let v = s
        .strip_prefix("KTAP version ")
        .or_else(|| s.strip_prefix("TAP version "));
    matches!(v, Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Leading whitespace width (a tab counts as 4, like kunit's nesting step).
fn indent_of(line: &str) -> (usize, &str) {
    let mut w = 0;
    for (i, c) in line.char_indices() {
        match c {
            ' ' => w += 1,
            '\t' => w += 4,
            _ => return (w, &line[i..]),
        }
    }
    (w, "")
}

/// Deepest nesting accepted; deeper lines are ignored (a garbage producer cannot grow the stack).
pub const MAX_DEPTH: usize = 16;

/// The streaming parser: [`KtapParser::feed_line`] each console line, then
/// [`KtapParser::finish`].
#[derive(Debug, Default)]
pub struct KtapParser {
    stack: Vec<Level>,
    doc: Option<Document>,
    docs: Vec<Document>,
    suite: Option<String>,
    now: Option<std::time::Duration>,
}

impl KtapParser {
    /// A parser with nothing open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the clock for the lines fed from now on (results and documents are stamped with it).
    pub fn set_now(&mut self, now: std::time::Duration) {
        self.now = Some(now);
    }

    /// Names the suite that the following documents belong to; closes the open document.
    pub fn set_suite(&mut self, suite: Option<String>) {
        self.end_document();
        self.suite = suite;
    }

    /// Documents completed so far.
    pub fn documents(&self) -> &[Document] {
        &self.docs
    }

    /// Whether a document is open (a header or result was seen and not yet closed).
    pub fn in_document(&self) -> bool {
        self.doc.is_some()
    }

    fn begin_document(&mut self, indent: usize) {
        self.end_document();
        self.doc = Some(Document {
            suite: self.suite.clone(),
            started: self.now,
            ..Document::default()
        });
        self.stack.push(Level {
            indent,
            ..Level::default()
        });
    }

    /// Closes the open document (if any), turning unclosed levels into problems.
    pub fn end_document(&mut self) {
        let Some(mut doc) = self.doc.take() else {
            return;
        };
        // Unclosed subtests: their parent never printed a result for them.
        while self.stack.len() > 1 {
            let l = self.stack.pop().expect("len > 1");
            let name = l.name.clone().unwrap_or_else(|| "subtest".into());
            doc.problems
                .push(format!("{name}: no result line closed this subtest"));
            let parent = self.stack.last_mut().expect("len >= 1");
            parent.tests.push(TestCase {
                number: parent.tests.len() as u32 + 1,
                name,
                outcome: Outcome::Fail,
                directive: None,
                diagnostics: l.pending_diags,
                subtests: l.tests,
                at: self.now,
            });
        }
        if let Some(top) = self.stack.pop() {
            doc.plan = top.plan;
            doc.tests = top.tests;
            doc.trailing = top.pending_diags;
        }
        if let Some(plan) = doc.plan {
            let got = doc.tests.len() as u32;
            if got < plan && doc.bail_out.is_none() {
                doc.problems
                    .push(format!("planned {plan} tests, saw {got} results"));
            }
        } else if doc.tests.is_empty() && doc.bail_out.is_none() {
            doc.problems
                .push("a KTAP header with no plan and no results".into());
        }
        self.docs.push(doc);
    }

    /// Feeds one line (without its newline).
    pub fn feed_line(&mut self, raw: &str) {
        let (indent, s) = indent_of(raw);
        let s = s.trim_end();
        if s.is_empty() {
            return;
        }
        if is_header(s) {
            // Levels deeper than this header were never closed by a result line.
            while self.stack.len() > 1 && self.stack.last().is_some_and(|l| l.indent > indent) {
                let l = self.stack.pop().expect("len > 1");
                self.close_orphan(l);
            }
            match self.stack.last() {
                Some(top) if indent > top.indent => self.push_level(indent, None),
                Some(top) if indent == top.indent && self.stack.len() > 1 => {
                    // A second subtest at the same depth: close the first as unterminated.
                    let top = self.stack.pop().expect("nonempty");
                    self.close_orphan(top);
                    self.push_level(indent, None);
                }
                _ => self.begin_document(indent),
            }
            return;
        }
        if self.doc.is_none() {
            // Outside any document only a header opens one: a stray "ok 1" from the kernel
            // log or a shell is not a test result.
            return;
        }
        if let Some(name) = s.strip_prefix("# Subtest:") {
            let name = name.trim().to_string();
            match self.stack.last_mut() {
                Some(top) if indent > top.indent => self.push_level(indent, Some(name)),
                Some(top) if indent == top.indent && top.tests.is_empty() => top.name = Some(name),
                _ => {}
            }
            return;
        }
        if let Some(reason) = s.strip_prefix("Bail out!") {
            if let Some(d) = self.doc.as_mut() {
                d.bail_out = Some(reason.trim().to_string());
            }
            return;
        }
        if let Some(plan) = parse_plan(s) {
            match self.stack.last_mut() {
                Some(top) if indent > top.indent => {
                    self.push_level(indent, None);
                    if let Some(l) = self.stack.last_mut() {
                        l.plan = Some(plan);
                    }
                }
                Some(top) if indent == top.indent => top.plan = Some(plan),
                _ => {}
            }
            return;
        }
        if let Some(r) = parse_result(s) {
            self.add_result(indent, r);
            return;
        }
        if let Some(d) = s.strip_prefix('#') {
            if let Some(l) = self.stack.iter_mut().rev().find(|l| l.indent <= indent) {
                if l.pending_diags.len() < 1000 {
                    l.pending_diags.push(d.trim().to_string());
                }
            }
        }
    }

    fn push_level(&mut self, indent: usize, name: Option<String>) {
        if self.stack.len() >= MAX_DEPTH {
            return;
        }
        self.stack.push(Level {
            indent,
            name,
            ..Level::default()
        });
    }

    /// A nested level that ended without its parent's result line.
    fn close_orphan(&mut self, l: Level) {
        let name = l.name.clone().unwrap_or_else(|| "subtest".into());
        if let Some(d) = self.doc.as_mut() {
            d.problems
                .push(format!("{name}: no result line closed this subtest"));
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.tests.push(TestCase {
                number: 0,
                name,
                outcome: Outcome::Fail,
                directive: None,
                diagnostics: l.pending_diags,
                subtests: l.tests,
                at: self.now,
            });
        }
    }

    fn add_result(&mut self, indent: usize, r: ResultLine) {
        // Deeper levels end here; the one right below `indent` holds this result's subtests.
        let mut children: Option<Level> = None;
        while self.stack.len() > 1 && self.stack.last().is_some_and(|l| l.indent > indent) {
            let l = self.stack.pop().expect("len > 1");
            if let Some(c) = children.take() {
                // Two levels deeper than this result: the inner one was never closed.
                self.stack.push(l);
                self.close_orphan(c);
                children = self.stack.pop();
            } else {
                children = Some(l);
            }
        }
        let top_indent = self.stack.last().map(|l| l.indent).unwrap_or(0);
        if indent > top_indent {
            // A result deeper than anything open, without a header: a headerless subtest.
            if let Some(c) = children.take() {
                self.stack.push(c);
            }
            self.push_level(indent, None);
        }
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let (subtests, mut diagnostics) = match children {
            Some(c) => (c.tests, c.pending_diags),
            None => (Vec::new(), Vec::new()),
        };
        diagnostics.splice(0..0, std::mem::take(&mut top.pending_diags));
        top.tests.push(TestCase {
            number: r.number,
            name: r.name,
            outcome: r.outcome,
            directive: r.directive,
            diagnostics,
            subtests,
            at: self.now,
        });
        // A top-level document is complete once its plan is met.
        if self.stack.len() == 1 {
            if let (Some(plan), Some(top)) = (self.stack[0].plan, self.stack.first()) {
                if top.tests.len() as u32 >= plan {
                    self.end_document();
                }
            }
        }
    }

    /// Closes everything and returns all documents.
    pub fn finish(mut self) -> Vec<Document> {
        self.end_document();
        self.docs
    }
}

/// Parses a whole text at once.
pub fn parse(text: &str) -> Vec<Document> {
    let mut p = KtapParser::new();
    for l in text.lines() {
        p.feed_line(l);
    }
    p.finish()
}

/// Tallies documents.
pub fn tally(docs: &[Document]) -> Tally {
    let mut t = Tally::default();
    for d in docs {
        t.add_document(d);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_document_with_skip_and_failure() {
        let docs = parse(
            "KTAP version 1\n1..3\nok 1 first\n# why it failed\nnot ok 2 - second\nok 3 third # SKIP no device\n",
        );
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d.plan, Some(3));
        assert_eq!(d.tests.len(), 3);
        assert_eq!(d.tests[1].name, "second");
        assert_eq!(d.tests[1].outcome, Outcome::Fail);
        assert_eq!(d.tests[1].diagnostics, vec!["why it failed".to_string()]);
        assert_eq!(d.tests[2].outcome, Outcome::Skip);
        assert_eq!(d.tests[2].directive.as_deref(), Some("SKIP no device"));
        let t = tally(&docs);
        assert_eq!((t.passed, t.failed, t.skipped), (1, 1, 1));
        assert_eq!(t.failures, vec!["second".to_string()]);
    }

    #[test]
    fn nested_kunit_style() {
        // The shape kunit prints (Documentation/dev-tools/ktap.rst, "Example KTAP output").
        let text = "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: suite_a\n    1..2\n    ok 1 test_1\n    not ok 2 test_2 # TODO not done\nok 1 suite_a\n    KTAP version 1\n    # Subtest: suite_b\n    1..1\n        KTAP version 1\n        # Subtest: param\n        1..2\n        ok 1 p0\n        not ok 2 p1\n    not ok 1 param\nnot ok 2 suite_b\n";
        let docs = parse(text);
        assert_eq!(docs.len(), 1, "{docs:#?}");
        let d = &docs[0];
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.tests.len(), 2);
        assert_eq!(d.tests[0].subtests.len(), 2);
        assert_eq!(d.tests[1].subtests.len(), 1);
        assert_eq!(d.tests[1].subtests[0].subtests.len(), 2);
        let t = tally(&docs);
        assert_eq!((t.passed, t.failed, t.skipped), (2, 1, 1));
        assert_eq!(t.failures, vec!["suite_b/param/p1".to_string()]);
    }

    #[test]
    fn parent_failure_without_failed_children_counts_once() {
        let docs = parse("KTAP version 1\n1..1\n    1..1\n    ok 1 inner\nnot ok 1 outer\n");
        let t = tally(&docs);
        assert_eq!((t.passed, t.failed), (1, 1));
        assert_eq!(t.failures, vec!["outer".to_string()]);
    }

    #[test]
    fn missing_results_are_failures() {
        let docs = parse("KTAP version 1\n1..3\nok 1 a\n");
        let t = tally(&docs);
        assert_eq!((t.passed, t.failed), (1, 1));
        assert!(t.failures[0].contains("planned 3 tests, saw 1"), "{t:?}");
    }

    #[test]
    fn kernel_noise_interleaved_is_ignored() {
        let docs = parse("[    1.0] ok 3 not a result\nKTAP version 1\n1..2\n[    2.5] nouveau 0000:00:02.0: bios: unable\nok 1 a\n  random indented noise\nok 2 b\nok 7 after the document\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].tests.len(), 2);
        assert!(docs[0].problems.is_empty());
        assert_eq!(tally(&docs).passed, 2);
    }

    #[test]
    fn unclosed_subtest_is_a_problem() {
        let docs = parse(
            "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: hung\n    1..2\n    ok 1 x\n",
        );
        let t = tally(&docs);
        assert!(t.failed >= 1, "{t:?}");
        assert!(t.failures.iter().any(|f| f.contains("hung")), "{t:?}");
    }

    #[test]
    fn bail_out_fails() {
        let docs = parse("TAP version 13\n1..4\nok 1 a\nBail out! no memory\n");
        let t = tally(&docs);
        assert_eq!(t.failed, 1);
        assert!(t.failures[0].contains("no memory"));
    }

    #[test]
    fn depth_is_bounded() {
        let mut text = String::from("KTAP version 1\n1..1\n");
        for i in 1..200 {
            text.push_str(&" ".repeat(i * 2));
            text.push_str("KTAP version 1\n");
        }
        let docs = parse(&text);
        assert_eq!(docs.len(), 1);
        assert!(tally(&docs).failed >= 1);
    }

    #[test]
    fn result_line_grammar() {
        assert!(parse_result("ok").is_none());
        assert!(parse_result("ok x").is_none());
        assert!(parse_result("okay 1").is_none());
        assert!(parse_result("ok 12x name").is_none());
        let r = parse_result("ok 12").unwrap();
        assert_eq!((r.number, r.name.as_str()), (12, ""));
        let r = parse_result("not ok 3 a # skip lower case").unwrap();
        assert_eq!(r.outcome, Outcome::Skip);
        let r = parse_result("not ok 3 issue #42 reproducer").unwrap();
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.name, "issue #42 reproducer");
        assert_eq!(parse_plan("1..0 # SKIP nothing"), Some(0));
        assert_eq!(parse_plan("1..x"), None);
    }
}

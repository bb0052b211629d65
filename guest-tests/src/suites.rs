//! The suites the initramfs carries: every `suites/NAME.sh` or `suites/NAME.c` is suite NAME.
//!
//! A suite declares what it needs from the host in comment lines of its own file:
//! - `gp100emu-qemu-args: ARGS` — extra QEMU arguments (e.g. `-device edu`);
//! - `gp100emu-needs: hmm-tests` — the kernel's hmm-tests binary in `/bin`;
//! - `gp100emu-append: ARGS` — more kernel command line;
//! - `gp100emu-memory-mib: N` — at least this much guest RAM.

use crate::embedded::SUITE_FILES;

/// One suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Its name (the file name without extension).
    pub name: String,
    /// Extra QEMU arguments it asks for.
    pub qemu_args: Vec<String>,
    /// Binaries it needs in `/bin`.
    pub needs: Vec<String>,
    /// Kernel command-line arguments it needs.
    pub append: Vec<String>,
    /// Guest RAM it needs at least, MiB.
    pub min_memory_mib: Option<u32>,
    /// The first comment line after any `#!`: what it checks.
    pub summary: String,
}

fn directive<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| {
            l.split_once(key)
                .map(|(_, v)| v.trim().trim_end_matches("*/").trim())
        })
        .collect()
}

fn summary(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("#!"))
        .find_map(|l| {
            let l = l.trim_start_matches("/*").trim_start_matches('#').trim();
            let rest = l.strip_prefix("gp100emu suite ")?;
            // `"name": what it checks` -> `what it checks`
            Some(match rest.split_once("\": ") {
                Some((_, what)) if rest.starts_with('"') => what.to_string(),
                _ => rest.to_string(),
            })
        })
        .unwrap_or_default()
}

/// Every suite, sorted by name.
pub fn all() -> Vec<Suite> {
    let mut v: Vec<Suite> = SUITE_FILES
        .iter()
        .filter(|(rel, _)| !rel.contains('/'))
        .filter_map(|(rel, body)| {
            let name = rel.strip_suffix(".sh").or_else(|| rel.strip_suffix(".c"))?;
            let text = String::from_utf8_lossy(body);
            Some(Suite {
                name: name.to_string(),
                qemu_args: directive(&text, "gp100emu-qemu-args:")
                    .iter()
                    .flat_map(|s| s.split_whitespace().map(str::to_string))
                    .collect(),
                needs: directive(&text, "gp100emu-needs:")
                    .iter()
                    .flat_map(|s| s.split_whitespace().map(str::to_string))
                    .collect(),
                append: directive(&text, "gp100emu-append:")
                    .iter()
                    .flat_map(|s| s.split_whitespace().map(str::to_string))
                    .collect(),
                min_memory_mib: directive(&text, "gp100emu-memory-mib:")
                    .first()
                    .and_then(|v| v.parse().ok()),
                summary: summary(&text),
            })
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The named suite.
pub fn find(name: &str) -> Option<Suite> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_suites_and_their_needs() {
        let names: Vec<String> = all().into_iter().map(|s| s.name).collect();
        for want in ["smoke", "hmm", "mmio-bench"] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n == "ktap" || n == "gp100"),
            "lib/ headers are not suites: {names:?}"
        );
        let hmm = find("hmm").unwrap();
        assert_eq!(hmm.needs, vec!["hmm-tests".to_string()]);
        assert_eq!(hmm.min_memory_mib, Some(1536));
        assert!(
            hmm.append
                .iter()
                .any(|a| a.starts_with("test_hmm.spm_addr_dev0=")),
            "{hmm:?}"
        );
        assert_eq!(
            find("mmio-bench").unwrap().qemu_args,
            vec!["-device".to_string(), "edu".to_string()]
        );
        assert!(find("smoke").unwrap().qemu_args.is_empty());
        assert!(
            find("smoke").unwrap().summary.starts_with("the chain host"),
            "{:?}",
            find("smoke")
        );
    }
}

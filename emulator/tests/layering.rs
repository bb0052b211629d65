//! The emulator crate's layering, checked: no `crate::` path in `emulator/src` may make its
//! top-level modules import each other in a circle, and every import must point down the
//! documented order below (lower layers never name higher ones; see `emulator/src/lib.rs`).
//!
//! The sources are parsed as text: comments are dropped, then every `crate::<module>` in code
//! (in `use` items and inline paths, tests included) is an edge from the file's top-level
//! module to `<module>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, bottom first. A module may import only modules before it.
const LAYERS: &[&str] = &[
    "hw",
    "timing",
    "pci",
    "vbios",
    "mem",
    "fault",
    "mmu",
    "engine",
    "ce",
    "fifo",
    "bar",
    "access",
    "check",
    "bus",
    "regs",
    "window",
    "device",
    "host",
    "decode",
    "scenarios",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read emulator/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with `//` comments (doc comments included) and string literals blanked.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            kept.push(if in_str { ' ' } else { c });
            prev = c;
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// `crate::x` edges, by top-level module.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&f).expect("read source"));
        let deps = g.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `$crate::` or `mycrate::`
            }
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The crate root's re-exports name the module they come from.
            let name = match name.as_str() {
                "Device" => "device".to_string(),
                "port" | "trace" => "host".to_string(),
                _ => name,
            };
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    g
}

#[test]
fn top_level_modules_import_downwards_only() {
    let g = graph();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (m, deps) in &g {
        let Some(rm) = rank(m) else {
            wrong.push(format!(
                "module `{m}` is not in LAYERS (add it where it belongs)"
            ));
            continue;
        };
        for d in deps {
            match rank(d) {
                Some(rd) if rd < rm => {}
                Some(_) => wrong.push(format!("`{m}` imports `{d}`, which is above it")),
                None => wrong.push(format!("`{m}` imports `{d}`, which is not in LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    // Independent of LAYERS: a depth-first search for a back edge.
    let g = graph();
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap_or(0);
                let mut c: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                c.push(m.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(m, 1);
        path.push(m);
        if let Some(deps) = g.get(m) {
            for d in deps {
                if let Some(c) = visit(d, g, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(m, 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(m, &g, &mut state, &mut path) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_parser_sees_imports_and_skips_comments() {
    let code = code_only(
        "use crate::mmu::walk; // crate::gpu\n/// [`crate::host`]\nlet s = \"crate::x\";\n",
    );
    assert!(code.contains("crate::mmu"));
    assert!(!code.contains("crate::gpu"));
    assert!(!code.contains("crate::host"));
    assert!(!code.contains("crate::x"));
}

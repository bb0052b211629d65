//! Embeds the guest side's sources (suites, init, kernel fragment, build scripts) into the
//! crate, so `gp100emu run` works from any directory and adding a suite is adding one file
//! under `suites/` — no Rust change.
use std::fmt::Write as _;
use std::path::Path;

fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, std::path::PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if p.is_dir() {
            collect(&p, &r, out);
        } else {
            out.push((r, p));
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("suites"), "", &mut files);
    let mut code = String::from("/// Every file under `guest-tests/suites/`, as (relative path, bytes).\npub static SUITE_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, p) in &files {
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    for (name, rel) in [
        ("INIT", "init/init"),
        ("KMSG_HELPER_C", "init/gp100emu-kmsg.c"),
        ("KERNEL_FRAGMENT", "kernel/gp100emu.config"),
        ("BUILD_KERNEL_SH", "scripts/build-kernel.sh"),
        ("BUILD_INITRAMFS_SH", "scripts/build-initramfs.sh"),
        ("BUILD_MODULE_SH", "scripts/build-module.sh"),
        ("BUILD_HMM_TESTS_SH", "scripts/build-hmm-tests.sh"),
        ("FETCH_KERNEL_SOURCE_SH", "scripts/fetch-kernel-source.sh"),
        ("PGD_MODULE_C", "kernel/gp100emu_pgd.c"),
        ("KNOWN_ISSUES", "known-issues.txt"),
    ] {
        let p = root.join(rel);
        writeln!(
            code,
            "/// `guest-tests/{rel}`.\npub static {name}: &[u8] = include_bytes!({:?});",
            p.display().to_string()
        )
        .unwrap();
    }
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(out, code).unwrap();
    for d in ["suites", "init", "kernel", "scripts", "known-issues.txt"] {
        println!("cargo:rerun-if-changed={d}");
    }
}

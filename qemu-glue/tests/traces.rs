//! Every trace under `traces/` replays through today's model exactly (see traces/README.md).

use std::path::Path;
use std::process::Command;

#[test]
fn every_recorded_trace_replays_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces");
    let mut traces: Vec<_> = std::fs::read_dir(&dir)
        .expect("the traces/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gptrace"))
        .collect();
    traces.sort();
    assert!(!traces.is_empty(), "no *.gptrace in {}", dir.display());
    for t in traces {
        let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
            .arg("replay")
            .arg(&t)
            .output()
            .expect("starting gp100emu");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("replayed exactly"),
            "{} no longer replays ({}):\n{stdout}{}\nIf the model changed on purpose, re-record it (traces/README.md).",
            t.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_damaged_trace_is_reported_not_replayed_silently() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces");
    let src = dir.join("smoke.gptrace");
    let bytes = std::fs::read(&src).expect("traces/smoke.gptrace");
    let tmp = std::env::temp_dir().join(format!("gp100emu-damaged-{}.gptrace", std::process::id()));
    std::fs::write(&tmp, &bytes[..bytes.len() - 7]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .arg("replay")
        .arg(&tmp)
        .output()
        .unwrap();
    std::fs::remove_file(&tmp).ok();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("good prefix"), "{stdout}");

    let not_a_trace =
        std::env::temp_dir().join(format!("gp100emu-nottrace-{}", std::process::id()));
    std::fs::write(&not_a_trace, b"hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .arg("replay")
        .arg(&not_a_trace)
        .output()
        .unwrap();
    std::fs::remove_file(&not_a_trace).ok();
    assert_eq!(out.status.code(), Some(2));
}

/// `fault-costs` counts every fault entry of the svm trace (checked against `show`'s count)
/// and puts each BAR access after the first fault under the unit that decodes it.
#[test]
fn fault_costs_count_the_svm_traces_faults_and_name_the_units() {
    let t = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/svm.gptrace");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
            .args(args)
            .arg(&t)
            .output()
            .expect("starting gp100emu");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = run(&["show", "--grep", "model: fault #"]).lines().count();
    let costs = run(&["fault-costs"]);
    let value = |name: &str| -> f64 {
        costs
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in\n{costs}"))
            .parse()
            .unwrap()
    };
    assert!(shown > 0, "the svm trace holds faults");
    assert_eq!(value("faults"), shown as f64);
    // nouveau's fault path reads the fault buffer's GET/PUT (the FAULT unit) and writes the
    // MMU's invalidate; the parts add up to the total.
    assert!(value("reads_per_fault{part=bar0:FAULT}") > 0.0);
    assert!(value("writes_per_fault{part=bar0:MMU}") > 0.0);
    let parts: f64 = costs
        .lines()
        .filter(|l| l.starts_with("reads_per_fault{") || l.starts_with("writes_per_fault{"))
        .map(|l| l.rsplit('=').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        (parts - value("bar_accesses_per_fault")).abs() < 0.05 * parts.max(1.0),
        "{costs}"
    );
}

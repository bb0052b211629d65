//! The explore suite in a real TCG guest, through the `gp100emu run` binary (issue 17): a
//! bounded exploration with a fixed seed passes on a clean device; a deliberately wrong shadow
//! model makes it fail with a finding and a reproducer; each seeded bug (`--inject`) is caught
//! by the PTE checker within the CI budget; a small fault buffer overflows and the run still
//! passes (nouveau recovers by replaying).
//!
//! Needs what guest_smoke.rs needs (QEMU >= 10.1 with vfio-user-pci and the guest kernel in
//! ~/.cache/gp100emu, both made by `cargo run --release -- run`); missing them FAILS the test
//! with instructions, never a silent pass.

use std::process::{Command, Output};
use std::sync::Mutex;

static ONE_GUEST: Mutex<()> = Mutex::new(());

/// The CI budget of one exploration: fixed seed, at most this many operations and seconds.
/// Seed 2 with atomics turned into writes is the configuration that runs clean on stock
/// 6.12 today: seed 1 hits nouveau's mixed-page-size bug (an oops in nvkm_vmm_unref_ptes or
/// a stale writable 2 MiB PTE, svm case 19, patches/0003), and a few grouped atomics still go
/// unserved (README); measured 80 ops in 9.4 s of exploration (a 50 s guest).
const CI_SEED: &str = "2";
const CI_OPS: &str = "80";
const CI_SECS: &str = "45";

fn run_explore(extra: &[&str]) -> (Output, String) {
    run_suite("explore", extra)
}

fn run_suite(suite: &str, extra: &[&str]) -> (Output, String) {
    let _guest = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let mut args = vec![
        "run",
        "--suite",
        suite,
        "--seed",
        CI_SEED,
        "--explore-ops",
        CI_OPS,
        "--explore-secs",
        CI_SECS,
        "--no-build",
        "--no-provision",
        "--timeout",
        "400",
        "--append",
        "gp100emu.explore.no_atomics=1",
    ];
    args.extend_from_slice(extra);
    gp100emu(&args)
}

/// Runs the gp100emu binary (the caller holds `ONE_GUEST`): its status and its stdout, then
/// its stderr.
fn gp100emu(args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(args)
        .output()
        .expect("starting gp100emu");
    let text = format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

const HOW: &str = "If the kernel or QEMU is missing, run `cargo run --release -- run` first \
                   (it provisions QEMU and builds the guest kernel into ~/.cache/gp100emu).";

/// Whether a failed run failed only by the KNOWN mixed-page-size oops (svm case 19,
/// patches/0003) and what it cuts short: the explorer found nothing before it, and the only
/// FAIL lines are the suite's missing results and the guest stopping.
fn only_the_known_oops(text: &str) -> bool {
    stopped_by_the_known_oops(text, "explore") && text.contains("=== explorer findings (0)")
}

/// Whether suite `suite`'s run shows the KNOWN nvkm_vmm_unref_ptes oops and no FAIL line but
/// the suite's missing results and the guest stopping.
fn stopped_by_the_known_oops(text: &str, suite: &str) -> bool {
    let oops = text.contains("KNOWN kernel: BUG: kernel NULL pointer dereference")
        && text.contains("[RIP nvkm_vmm_unref_ptes+");
    let planned = format!("FAIL {suite}: planned ");
    let other_fails = text.lines().filter(|l| l.starts_with("FAIL ")).any(|l| {
        !(l.starts_with(&planned) || l.starts_with("FAIL the guest stopped before /init finished"))
    });
    oops && !other_fails
}

/// Seed 2 runs clean on stock 6.12 in most runs; in some (timing decides which faults nouveau
/// sees in one batch, seen once in a CI run on a busy machine) it reaches the mixed-page-size
/// bug's oops. That run is accepted only as that KNOWN oops after a clean exploration.
#[test]
fn bounded_exploration_passes_on_a_clean_device() {
    let (out, text) = run_explore(&[]);
    if !out.status.success() && only_the_known_oops(&text) {
        assert!(
            text.contains("# EXPLORE OP "),
            "no operation ran before the oops:\n{text}"
        );
        eprintln!("explore stopped at the KNOWN nvkm_vmm_unref_ptes oops (patches/0003)");
        return;
    }
    assert!(
        out.status.success(),
        "explore failed ({}). {HOW}\n{text}",
        out.status
    );
    assert!(text.contains("ok 2 explore_no_findings"), "{text}");
    assert!(text.contains("explore count gpu_slots"), "{text}");
}

#[test]
fn only_the_known_oops_is_excused() {
    let oops = "KNOWN kernel: BUG: kernel NULL pointer dereference, address: 8 [RIP nvkm_vmm_unref_ptes+0x42/0x240]\n";
    let tail = "=== explorer findings (0)\n";
    let stop = "FAIL explore: planned 4 tests, saw 1 results\nFAIL the guest stopped before /init finished its suites\n";
    assert!(only_the_known_oops(&format!("{stop}{oops}{tail}")));
    assert!(!only_the_known_oops(&format!("{stop}{tail}")), "no oops");
    assert!(!only_the_known_oops(&format!(
        "{stop}{oops}=== explorer findings (1)\n"
    )));
    assert!(!only_the_known_oops(&format!(
        "FAIL explore/explore_no_findings\n{oops}{tail}"
    )));
}

/// Seed 1 on stock 6.12 reaches the mixed-page-size bug (patches/0003) by op 47: a 2 MiB GPU
/// PTE left over fork's write-protect (found at the CPU invalidate) and a GPU write that faults
/// on a missing PDE forever. known-issues.txt names both, so they are KNOWN: the run passes with
/// the findings tests as expected failures, never as passes. On some runs timing makes the same
/// bug oops instead (also KNOWN, see `only_the_known_oops`).
#[test]
fn a_known_kernel_bug_the_explorer_finds_is_known_not_a_pass() {
    let _guest = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let (out, text) = gp100emu(&[
        "run",
        "--suite",
        "explore",
        "--seed",
        "1",
        "--explore-ops",
        "48",
        "--no-build",
        "--no-provision",
        "--timeout",
        "400",
        "--quiet",
    ]);
    if !out.status.success() && text.contains("[RIP nvkm_vmm_unref_ptes+") {
        assert!(
            text.contains("KNOWN kernel: BUG: kernel NULL pointer dereference"),
            "{text}"
        );
        eprintln!("seed 1 ended at the KNOWN nvkm_vmm_unref_ptes oops (patches/0003)");
        return;
    }
    assert!(
        out.status.success(),
        "explore failed ({}). {HOW}\n{text}",
        out.status
    );
    assert!(
        text.contains("KNOWN explorer finding: EXPLORE FINDING op=29 ")
            && text.contains("gpu-page=2m found=cpu-invalidate"),
        "the stale 2 MiB PTE is not reported KNOWN:\n{text}"
    );
    assert!(!text.contains("\nFINDING "), "an unknown finding:\n{text}");
    assert!(
        text.contains(", 0 failed, 2 skipped"),
        "the findings tests are not TODO:\n{text}"
    );
}

#[test]
fn a_wrong_shadow_model_fails_with_a_reproducer() {
    let (out, text) = run_explore(&["--wrong-shadow"]);
    assert_eq!(out.status.code(), Some(1), "should fail. {HOW}\n{text}");
    assert!(text.contains("EXPLORE FINDING"), "{text}");
    assert!(
        text.contains("reproduce: gp100emu run --suite explore --ops \""),
        "{text}"
    );
}

fn seeded_bug_is_caught(inject: &str) {
    let (out, text) = run_explore(&["--inject", inject]);
    assert_eq!(out.status.code(), Some(1), "should fail. {HOW}\n{text}");
    assert!(
        text.contains("kind=pte-check")
            || text.contains("not ok 3 explore_no_pte_check_violations"),
        "the checker must catch '{inject}':\n{text}"
    );
}

#[test]
fn injected_wrong_page_is_caught() {
    seeded_bug_is_caught("wrong-page");
}

#[test]
fn injected_writable_read_only_page_is_caught() {
    seeded_bug_is_caught("writable-ro");
}

#[test]
fn injected_stale_pte_after_munmap_is_caught() {
    seeded_bug_is_caught("stale-after-munmap");
}

/// A small buffer overflows (the explorer says so at the first drop) and nouveau recovers by
/// replaying. The dropped entries change the order nouveau maps pages in, and on stock kernels
/// that sometimes makes the mixed-page-size bug (svm case 19, patches/0003) oops in
/// nvkm_vmm_unref_ptes: that outcome is accepted only as the KNOWN oops, after the overflow.
#[test]
fn a_small_fault_buffer_overflows_and_nouveau_recovers() {
    let (out, text) = run_explore(&["--fault-buffer-entries", "16"]);
    let known_oops = text.contains("KNOWN kernel: BUG: kernel NULL pointer dereference")
        && text.contains("[RIP nvkm_vmm_unref_ptes+");
    assert!(
        out.status.success() || known_oops,
        "explore failed ({}). {HOW}\n{text}",
        out.status
    );
    assert!(
        text.contains("# fault buffer overflow: "),
        "no fault entry was dropped:\n{text}"
    );
}

/// The race mode (`explore-race`, a `-smp 2` guest): CPU-side operations on the second vCPU
/// while GPU batches are in flight. Its own verdict must hold: no finding but KNOWN ones (raced
/// reads of ranges the CPU side left alone saw the expected data), no checker violation, no
/// oops, and some raced pairs were judged.
///
/// Seed 2 reaches the hmm core's read-only device-private page bug (svm case 22, patches/0007):
/// a GPU write that faults for ever, reported KNOWN. It used to end in an RCU stall instead: an
/// interrupt storm on one vCPU reset the model's idle-poll detector while nouveau's fault worker
/// spun in a 2 s FECS-timeout poll on the other (known-issues.txt); the device now leaves
/// interrupt-service accesses out of poll detection and charges a driver's PTIMER reads while
/// the device does no work (timing::TimerWait), whatever other reads land between them.
///
/// Two vCPUs make the interleaving differ from run to run, and in some runs (1 of 8 measured
/// here, and the CI run of stop 22) a munmap on the second vCPU meets a mixed-page-size PFN
/// region and the guest dies of the KNOWN nvkm_vmm_unref_ptes oops (svm case 19, patches/0003)
/// before the race checks could be counted. Such a run is printed and run again, at most
/// `RACE_ATTEMPTS` times in all; any other failure fails at once, and the last run must pass
/// every check.
#[test]
fn race_mode_exploration_passes() {
    let mut attempt = 1;
    let (out, text) = loop {
        let (out, text) = run_suite("explore-race", &[]);
        if out.status.success() || !race_ended_in_the_known_oops(&text) {
            break (out, text);
        }
        assert!(
            attempt < RACE_ATTEMPTS,
            "explore-race ended in the KNOWN nvkm_vmm_unref_ptes oops (patches/0003) in all \
             {RACE_ATTEMPTS} runs, so race mode was never judged. The last run:\n{text}"
        );
        eprintln!(
            "explore-race run {attempt} of {RACE_ATTEMPTS} ended in the KNOWN \
             nvkm_vmm_unref_ptes oops (patches/0003); running it again"
        );
        attempt += 1;
    };
    assert!(
        out.status.success(),
        "explore-race failed ({}). {HOW}\n{text}",
        out.status
    );
    let only_known = text.contains("KNOWN explorer finding: ") && !text.contains("\nFINDING ");
    assert!(
        text.contains("ok 2 explore_no_findings") || only_known,
        "{text}"
    );
    assert!(!text.contains("rcu_sched self-detected stall"), "{text}");
    let count = |name: &str| {
        text.lines()
            .find_map(|l| l.split(&format!("explore count {name}")).nth(1))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("raced_pairs") > 0, "no raced pair ran:\n{text}");
    assert!(
        count("raced_slots_judged") > 0,
        "no raced read was judged:\n{text}"
    );
}

/// How many race-mode runs `race_mode_exploration_passes` makes at most while they end in the
/// KNOWN oops (at 1 in 8, four in a row is about 1 in 4,000).
const RACE_ATTEMPTS: u32 = 4;

/// Whether a failed race-mode run failed only by the KNOWN mixed-page-size oops: like
/// `only_the_known_oops`, but explorer findings before the oops are allowed when every one is
/// KNOWN (seed 2 reaches svm case 22's bug at op 28).
fn race_ended_in_the_known_oops(text: &str) -> bool {
    stopped_by_the_known_oops(text, "explore-race")
        && !text.contains("\nFINDING ")
        && text.contains("=== explorer findings (")
}

#[test]
fn only_the_known_race_oops_is_run_again() {
    let oops = "KNOWN kernel: BUG: kernel NULL pointer dereference, address: 8 [RIP nvkm_vmm_unref_ptes+0x42/0x240]\n";
    let stop = "FAIL explore-race: planned 4 tests, saw 1 results\nFAIL the guest stopped before /init finished its suites\n";
    let none = "=== explorer findings (0)\n";
    let known = "=== explorer findings (1)\nKNOWN EXPLORE FINDING op=28 kind=gpu-not-served\n";
    let unknown = "=== explorer findings (1)\nFINDING EXPLORE FINDING op=3 kind=pte-check\n";
    assert!(race_ended_in_the_known_oops(&format!("{stop}{oops}{none}")));
    assert!(race_ended_in_the_known_oops(&format!(
        "{stop}{oops}{known}"
    )));
    assert!(
        !race_ended_in_the_known_oops(&format!("{stop}{none}")),
        "no oops"
    );
    assert!(!race_ended_in_the_known_oops(&format!(
        "{stop}{oops}{unknown}"
    )));
    assert!(!race_ended_in_the_known_oops(&format!(
        "FAIL explore-race/explore_no_findings\n{stop}{oops}{none}"
    )));
}

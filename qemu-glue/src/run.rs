//! `gp100emu run`: the main job in one command. Find or provision QEMU, build or reuse the
//! guest kernel and initramfs, boot them beside the device process, stream the console, and
//! turn what the guest printed into a verdict.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use guest_tests::artifacts::{self, HmmTests, KernelSource};
use guest_tests::console::{ConsoleMonitor, RunEnd, Verdict};
use guest_tests::suites;

use crate::launch::guest::{self, Ending, Flow, GuestOptions};
use crate::launch::{cache_dir, qemu};

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Suites to run, in order.
    pub suites: Vec<String>,
    /// `--kernel`: a bzImage, a source tree or a tarball; None for Debian's linux-source.
    pub kernel: Option<PathBuf>,
    /// `--kernel-version`: Debian's linux-source-N (fetched when the host lacks it).
    pub kernel_version: Option<String>,
    /// `--patch`: patches (files, or directories of `*.patch`) applied to a copy of the source.
    pub patches: Vec<PathBuf>,
    /// `--ktap`: write the combined KTAP here.
    pub ktap: Option<PathBuf>,
    /// `--junit`: write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// `--initrd`: use this initramfs instead of building ours.
    pub initrd: Option<PathBuf>,
    /// `--hmm-tests`: the hmm-tests binary to use with a prebuilt `--kernel`.
    pub hmm_tests: Option<PathBuf>,
    /// `--pgd-module`: the gp100emu_pgd module to use with a prebuilt `--kernel`.
    pub pgd_module: Option<PathBuf>,
    /// `--qemu`: this QEMU binary.
    pub qemu: Option<PathBuf>,
    /// Provision a QEMU root when no suitable QEMU is found.
    pub provision: bool,
    /// Use KVM.
    pub kvm: bool,
    /// Guest RAM, MiB.
    pub memory_mib: u32,
    /// Give up after this long.
    pub timeout: Duration,
    /// More kernel command line.
    pub append: Option<String>,
    /// Pin QEMU and the device to one CPU.
    pub pin: bool,
    /// Print the guest console as it arrives.
    pub echo_console: bool,
    /// Extra arguments for `gp100emu serve`.
    pub device_args: Vec<OsString>,
    /// Keep the device's and QEMU's logs even when the run passes.
    pub keep_logs: bool,
    /// Build the kernel (and install host packages) when the cache lacks it; when false, a
    /// missing kernel is an error that says how to build it.
    pub build: bool,
}

/// `qemu-glue/scripts/host-deps.sh`, run before building guest artefacts.
const HOST_DEPS_SH: &str = include_str!("../scripts/host-deps.sh");

/// Installs (as root, with apt) or names the host packages the guest build needs; Debian's
/// linux-source-6.12 too unless the run brings its own source (`with_source` false).
fn host_deps(cache: &std::path::Path, check_only: bool, with_source: bool) -> Result<(), RunError> {
    std::fs::create_dir_all(cache)
        .map_err(|e| RunError::Usage(format!("creating {}: {e}", cache.display())))?;
    let script = cache.join("host-deps.sh");
    std::fs::write(&script, HOST_DEPS_SH)
        .map_err(|e| RunError::Usage(format!("writing {}: {e}", script.display())))?;
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script);
    if check_only {
        cmd.arg("--check");
    }
    if !with_source {
        cmd.arg("--without-kernel-source");
    }
    let status = cmd
        .status()
        .map_err(|e| RunError::Usage(format!("running {}: {e}", script.display())))?;
    if !status.success() {
        return Err(RunError::Usage(
            "the host lacks packages the guest build needs (listed above)".into(),
        ));
    }
    Ok(())
}

/// Errors that stop `run` before a verdict exists (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// No QEMU.
    #[error(transparent)]
    Qemu(#[from] qemu::QemuError),
    /// Kernel or initramfs could not be made.
    #[error(transparent)]
    Artifact(#[from] artifacts::ArtifactError),
    /// The guest could not be started.
    #[error(transparent)]
    Guest(#[from] guest::GuestError),
    /// Finding our own binary.
    #[error("finding the gp100emu binary: {0}")]
    SelfExe(std::io::Error),
}

/// The binary each guest boot starts as its device process: this very one. On Linux that is
/// `/proc/self/exe`, which execve resolves to our own file even after a `cargo build`
/// replaced it on disk mid-run (the path `current_exe` names then no longer exists, and every
/// later boot failed with "starting the device process: No such file or directory"); the
/// device also stays the same version as the launcher.
fn device_exe() -> Result<PathBuf, RunError> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().map_err(RunError::SelfExe)
}

/// The known issues (guest-tests/known-issues.txt) that apply to this run's kernel: an entry
/// whose fix is one of the project's patches the run applied (`--patch`) is left out, so a
/// finding that looks like that bug on a kernel without it fails instead of being KNOWN.
pub(crate) fn known_issues(o: &RunOptions) -> Vec<guest_tests::console::KnownIssue> {
    let applied = artifacts::expand_patches(&o.patches).unwrap_or_default();
    fixed_known_issues(&applied).0
}

/// The known issues split for a kernel with these patches: those that apply, and for each one
/// left out, its warning and the patch that fixes it.
fn fixed_known_issues(
    applied: &[PathBuf],
) -> (Vec<guest_tests::console::KnownIssue>, Vec<(String, String)>) {
    guest_tests::console::without_fixed(guest_tests::console::builtin_known_issues(), applied)
}

/// Says which known-issue entries this run leaves out because it applies their fix.
fn note_fixed_known_issues(applied: &[PathBuf]) {
    let (_, dropped) = fixed_known_issues(applied);
    if dropped.is_empty() {
        return;
    }
    let mut numbers: Vec<&str> = dropped.iter().map(|(_, n)| n.as_str()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    eprintln!(
        "    {} known-issues.txt entries left out: this kernel has their fixes (patches {}), so \
         what they describe fails here",
        dropped.len(),
        numbers.join(", ")
    );
}

/// Timings of a run, for the report.
#[derive(Debug, Clone, Default)]
pub struct RunTimes {
    /// Finding/provisioning QEMU.
    pub qemu: Duration,
    /// Kernel (build or cache).
    pub kernel: Duration,
    /// Initramfs (build or cache).
    pub initramfs: Duration,
    /// From starting the guest to `/init`'s first line.
    pub boot_to_init: Option<Duration>,
    /// The guest run as a whole.
    pub guest: Duration,
    /// Per boot: its suites and how long it took from QEMU's start to its exit.
    pub boots: Vec<(String, Duration)>,
    /// From starting the guest (QEMU) to nouveau's `[drm] Initialized nouveau` line, host
    /// wall clock (the guest kernel prints no timestamps), first boot.
    pub boot_to_drm: Option<Duration>,
    /// `name=value` figures the suites printed as `# bench NAME=VALUE` (the fault-bench
    /// suite), in order.
    pub bench: Vec<(String, String)>,
}

/// A suite's `# bench NAME=VALUE` line, as (NAME, VALUE).
pub fn bench_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.trim_end().strip_prefix("# bench ")?.rsplit_once('=')?;
    (!name.is_empty() && !value.is_empty() && !name.contains(' ') && !value.contains(' '))
        .then(|| (name.to_string(), value.to_string()))
}

/// The guest kernel's own switch that hides FSRS ("fast short REP STOSB", CPUID.7.1:EAX bit 11,
/// `X86_FEATURE_FSRS` = 12*32+11 in arch/x86/include/asm/cpufeatures.h of 6.12 and 7.3, checked;
/// not checked on 6.1).
///
/// Why: nouveau clears instance objects with `memset_io` through BAR2 (nvkm/subdev/instmem/
/// base.c). On x86 `memset_io` is `memset` (arch/x86/lib/iomem.c), and `__memset`
/// (arch/x86/lib/memset_64.S) is patched to `rep stosb` when the CPU has FSRS, else runs
/// `memset_orig`'s 8-byte stores. TCG runs `rep stosb` against MMIO as one one-byte store per
/// byte, each a vfio-user message. Measured on the 6.12 probe (`gp100emu show` of
/// `--trace`): 2,166,904 one-byte BAR3 writes without this switch, none with it (270,863
/// 8-byte writes instead); boot to /init 21.3 s → 8.1 s on a loaded machine. QEMU's
/// `-cpu max,fsrs=off` did not change the trace (same 2,258,783 records), so the kernel is
/// told instead; it prints "Clearing CPUID bits: 12:11" and nothing else changes.
pub const NO_FSRS: &str = "clearcpuid=395";

/// Validates suite names against what the initramfs carries.
pub fn check_suites(names: &[String]) -> Result<Vec<suites::Suite>, RunError> {
    let all = suites::all();
    let mut out = Vec::new();
    for n in names {
        match all.iter().find(|s| &s.name == n) {
            Some(s) => out.push(s.clone()),
            None => {
                return Err(RunError::Usage(format!(
                    "no suite named '{n}'; the suites are: {}",
                    all.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(RunError::Usage("--suite names no suite".into()));
    }
    Ok(out)
}

fn step(what: &str) {
    eprintln!("=== {what}");
}

/// Runs the whole job and returns the verdict with timings.
pub fn run(o: &RunOptions) -> Result<(Verdict, RunTimes), RunError> {
    let chosen = check_suites(&o.suites)?;
    let cache = cache_dir();
    let mut times = RunTimes::default();

    step("QEMU with vfio-user-pci");
    let t = Instant::now();
    let q = qemu::find_or_provision(o.qemu.as_deref(), &cache, o.provision)?;
    times.qemu = t.elapsed();
    eprintln!("    {} ({:.1} s)", q.version, times.qemu.as_secs_f64());

    if o.kernel.is_some() && o.kernel_version.is_some() {
        return Err(RunError::Usage(
            "--kernel and --kernel-version both name the guest kernel; give one".into(),
        ));
    }
    let patches = artifacts::expand_patches(&o.patches)?;
    let source = KernelSource::from_arg(o.kernel.as_deref());
    if !(matches!(source, KernelSource::Image(_)) && o.initrd.is_some()) {
        step("host packages");
        host_deps(
            &cache,
            !o.build,
            o.kernel.is_none() && o.kernel_version.is_none(),
        )?;
    }

    step("guest kernel");
    let t = Instant::now();
    let source = match &o.kernel_version {
        Some(v) => KernelSource::Tarball(artifacts::debian_kernel_source(&cache, v, o.build)?),
        None => source,
    };
    let kernel = artifacts::ensure_kernel(&cache, &source, &patches, o.build)?;
    times.kernel = t.elapsed();
    eprintln!(
        "    {} ({}, {:.1} s)",
        kernel.image.display(),
        if kernel.built {
            "built"
        } else {
            "cached or given"
        },
        times.kernel.as_secs_f64()
    );
    note_fixed_known_issues(&patches);

    // The kernel's own hmm-tests, for the suites that need it. When this kernel's cannot be
    // built, only those suites are skipped, with the reason in the verdict.
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut hmm: Option<PathBuf> = o.hmm_tests.clone();
    let mut chosen = chosen;
    if hmm.is_none()
        && o.initrd.is_none()
        && chosen
            .iter()
            .any(|s| s.needs.iter().any(|n| n == "hmm-tests"))
    {
        match artifacts::ensure_hmm_tests(&cache, &kernel)? {
            HmmTests::Built(p) => hmm = Some(p),
            HmmTests::Unavailable(why) => {
                chosen.retain(|s| {
                    let needs = s.needs.iter().any(|n| n == "hmm-tests");
                    if needs {
                        eprintln!("    skipping suite '{}': {why}", s.name);
                        skipped.push((s.name.clone(), why.clone()));
                    }
                    !needs
                });
            }
        }
    }

    // Suites that need gp100emu's generated GR firmware boot on their own: the others (the
    // probe above all) show nouveau on a GP100 without firmware files.
    let mut groups: Vec<(bool, Vec<suites::Suite>)> = Vec::new();
    for fw in [false, true] {
        let g: Vec<suites::Suite> = chosen
            .iter()
            .filter(|s| o.initrd.is_some() || s.needs.iter().any(|n| n == "gr-firmware") == fw)
            .cloned()
            .collect();
        if !(g.is_empty() || o.initrd.is_some() && fw) {
            groups.push((fw, g));
        }
    }
    let mut verdict: Option<Verdict> = None;
    for (fw, group) in &groups {
        let v = boot_group(
            o,
            &q,
            &kernel,
            hmm.as_deref(),
            &cache,
            group,
            *fw,
            &mut times,
        )?;
        match &mut verdict {
            None => verdict = Some(v),
            Some(all) => all.merge(v),
        }
    }
    let mut verdict = verdict.unwrap_or_default();
    // Explorer findings that known-issues.txt explains are KNOWN, not failures.
    crate::explore::mark_known(&mut verdict, &known_issues(o));
    for (suite, why) in &skipped {
        verdict.skip_suite(suite, why);
    }
    Ok((verdict, times))
}

/// Writes the `--ktap` and `--junit` reports the options ask for; `total` is the run's wall time.
pub fn write_reports(o: &RunOptions, v: &Verdict, total: Duration) -> Result<(), RunError> {
    use guest_tests::report;
    for (path, body) in [
        (&o.ktap, o.ktap.as_ref().map(|_| report::ktap(v))),
        (&o.junit, o.junit.as_ref().map(|_| report::junit(v, total))),
    ] {
        if let (Some(p), Some(b)) = (path, body) {
            std::fs::write(p, b)
                .map_err(|e| RunError::Usage(format!("writing {}: {e}", p.display())))?;
            eprintln!("    wrote {}", p.display());
        }
    }
    Ok(())
}

/// Builds the initramfs for one group of suites (with or without the generated GR firmware),
/// boots it, and returns its verdict.
#[allow(clippy::too_many_arguments)]
fn boot_group(
    o: &RunOptions,
    q: &qemu::Qemu,
    kernel: &artifacts::Kernel,
    hmm: Option<&std::path::Path>,
    cache: &std::path::Path,
    chosen: &[suites::Suite],
    gr_firmware: bool,
    times: &mut RunTimes,
) -> Result<Verdict, RunError> {
    step(&format!(
        "initramfs ({})",
        if gr_firmware {
            "with gp100emu's generated GR firmware"
        } else {
            "no firmware files"
        }
    ));
    let t = Instant::now();
    let initrd = match &o.initrd {
        Some(p) => p.clone(),
        None => {
            let mut bins: Vec<(&str, PathBuf)> = Vec::new();
            let mut modules: Vec<PathBuf> = Vec::new();
            for s in chosen {
                for need in &s.needs {
                    match need.as_str() {
                        "hmm-tests" => match hmm {
                            Some(p) => {
                                if !bins.iter().any(|(n, _)| *n == "hmm-tests") {
                                    bins.push(("hmm-tests", p.to_path_buf()))
                                }
                            }
                            None => {
                                return Err(RunError::Usage(format!(
                                    "suite '{}' needs the kernel's hmm-tests, built from the same source as the kernel; \
                                     with a prebuilt --kernel, pass --hmm-tests PATH (a static build of \
                                     tools/testing/selftests/mm/hmm-tests.c)",
                                    s.name
                                )))
                            }
                        },
                        "pgd-module" => {
                            let m = match &o.pgd_module {
                                Some(p) => p.clone(),
                                None => artifacts::ensure_pgd_module(cache, kernel)?,
                            };
                            if !modules.contains(&m) {
                                modules.push(m);
                            }
                        }
                        "gr-firmware" => {}
                        other => {
                            return Err(RunError::Usage(format!(
                                "suite '{}' needs '{other}', which gp100emu does not know how to provide",
                                s.name
                            )))
                        }
                    }
                }
            }
            let x = artifacts::InitramfsExtras {
                bins: bins.iter().map(|(n, p)| (*n, p.as_path())).collect(),
                modules: modules.iter().map(PathBuf::as_path).collect(),
                gr_firmware,
            };
            artifacts::ensure_initramfs(cache, &x)?
        }
    };
    times.initramfs += t.elapsed();
    eprintln!(
        "    {} ({:.1} s)",
        initrd.display(),
        t.elapsed().as_secs_f64()
    );

    let names: Vec<String> = chosen.iter().map(|s| s.name.clone()).collect();
    // gp100emu.gr_firmware says on the console (first line, "Command line:") whether this boot
    // has gp100emu's generated GR firmware: known-issues.txt entries of a boot without it name
    // it as their context.
    let mut append = format!(
        "console=ttyS0 panic=-1 {NO_FSRS} gp100emu.suite={} gp100emu.gr_firmware={}",
        names.join(","),
        if gr_firmware { "generated" } else { "none" }
    );
    for s in chosen {
        for a in &s.append {
            append.push(' ');
            append.push_str(a);
        }
    }
    if let Some(a) = &o.append {
        append.push(' ');
        append.push_str(a);
    }
    let memory_mib = chosen
        .iter()
        .filter_map(|s| s.min_memory_mib)
        .fold(o.memory_mib, u32::max);
    let mut extra_qemu_args: Vec<OsString> = Vec::new();
    for s in chosen {
        extra_qemu_args.extend(s.qemu_args.iter().map(OsString::from));
    }
    let work_dir = std::env::temp_dir().join(format!(
        "gp100emu-run-{}{}",
        std::process::id(),
        if gr_firmware { "-fw" } else { "" }
    ));
    let opts = GuestOptions {
        qemu: q.clone(),
        kernel: kernel.image.clone(),
        initrd,
        append,
        memory_mib,
        kvm: o.kvm,
        timeout: o.timeout,
        work_dir: work_dir.clone(),
        device_exe: device_exe()?,
        device_args: o.device_args.clone(),
        pin_cpu: if o.pin {
            guest::first_allowed_cpu()
        } else {
            None
        },
        extra_qemu_args,
    };

    step(&format!(
        "booting the guest ({}, suites: {}, timeout {} s)",
        if o.kvm { "KVM" } else { "TCG" },
        names.join(","),
        o.timeout.as_secs()
    ));
    let mut monitor = ConsoleMonitor::with_known_issues(&names, known_issues(o));
    let started = Instant::now();
    let mut init_at = None;
    let mut drm_at = None;
    let mut bench = Vec::new();
    let echo = o.echo_console;
    let g = guest::run_guest(&opts, |line| {
        if echo {
            println!("{line}");
        }
        monitor.set_now(started.elapsed());
        let done = monitor.feed_line(line);
        if init_at.is_none() && monitor.init_reached() {
            init_at = Some(started.elapsed());
        }
        if drm_at.is_none() && line.contains("[drm] Initialized nouveau") {
            drm_at = Some(started.elapsed());
        }
        if let Some(b) = bench_line(line) {
            bench.push(b);
        }
        if done {
            Flow::Done
        } else {
            Flow::Continue
        }
    })?;
    times.guest += g.wall;
    times.boots.push((names.join(","), g.wall));
    if times.boot_to_init.is_none() {
        times.boot_to_init = init_at;
    }
    if times.boot_to_drm.is_none() {
        times.boot_to_drm = drm_at;
    }
    times.bench.extend(bench);
    let end = match &g.ending {
        Ending::QemuExited(_) => RunEnd::Exited,
        Ending::TimedOut(d) => RunEnd::TimedOut(*d),
        Ending::Interrupted => RunEnd::Interrupted,
        Ending::DeviceDied { status, .. } => RunEnd::DeviceDied(status.to_string()),
    };
    let verdict = monitor.finish(end);
    if let Ending::DeviceDied { log_tail, .. } = &g.ending {
        eprintln!("--- the device process's log, last lines:\n{log_tail}");
    }
    if !verdict.passed() {
        if !g.qemu_log_tail.trim().is_empty() {
            eprintln!("--- QEMU's stderr, last lines:\n{}", g.qemu_log_tail);
        }
        if !g.device_log_tail.trim().is_empty() {
            eprintln!(
                "--- the device process's log, last lines:\n{}",
                g.device_log_tail
            );
        }
        eprintln!("--- logs kept in {}", work_dir.display());
    } else if o.keep_logs {
        eprintln!("--- logs kept in {}", work_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_suite_lists_the_known_ones() {
        let e = check_suites(&["nosuch".to_string()]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("no suite named 'nosuch'"), "{msg}");
        assert!(msg.contains("smoke"), "{msg}");
    }

    #[test]
    fn known_suites_keep_their_order() {
        let s = check_suites(&["smoke".to_string(), "hmm".to_string()]).unwrap();
        assert_eq!(s[0].name, "smoke");
        assert_eq!(s[1].name, "hmm");
        assert!(check_suites(&[]).is_err());
    }
}

#[cfg(test)]
mod bench_line_tests {
    use super::bench_line;

    #[test]
    fn bench_lines_are_name_value_pairs() {
        assert_eq!(
            bench_line("# bench faults_batched_per_s{size=4}=812.5"),
            Some(("faults_batched_per_s{size=4}".into(), "812.5".into()))
        );
        assert_eq!(bench_line("# bench x=1\r"), Some(("x".into(), "1".into())));
        for not in [
            "# bench",
            "# bench =1",
            "# bench x=",
            "# bench a b=1",
            "bench x=1",
            "# x=1",
        ] {
            assert_eq!(bench_line(not), None, "{not}");
        }
    }
}

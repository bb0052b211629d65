//! `gp100emu`: the one binary. Subcommands run the whole job (`run`), serve the
//! device to a QEMU (`serve`), and help people read what the GPU saw.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emulator::check::Inject;
use emulator::pci::BarLayout;
use emulator::trace::TraceHeader;
use emulator::Device;
use log::info;
use qemu_glue::trace_cmd;

/// Parses an `--inject` name.
fn parse_inject(s: &str) -> Result<Inject, String> {
    Inject::parse(s).ok_or_else(|| {
        format!("unknown seeded bug '{s}' (none, wrong-page, writable-ro, stale-after-munmap; KIND@N for the N-th process registered only)")
    })
}

#[derive(Parser)]
#[command(
    name = "gp100emu",
    version,
    about = "An emulated NVIDIA GP100 (Tesla P100) MMU and fault buffer for testing nouveau SVM under QEMU",
    long_about = "An emulated NVIDIA GP100 (Tesla P100) beside stock QEMU, so a guest kernel's unmodified nouveau driver can be driven end to end.\n\nLogging: RUST_LOG=info (or debug, trace) on stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `run` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the main job: boot a test guest beside the emulated GP100 and report its suites.
    ///
    /// Finds a QEMU >= 10.1 with vfio-user-pci (or provisions one from Debian 13 under
    /// ~/.cache/gp100emu), builds the guest kernel from Debian's linux-source-6.12 with
    /// guest-tests/kernel/gp100emu.config (cached; ~10 min the first time) and the initramfs
    /// with every suite, starts `gp100emu serve` and QEMU, streams the guest console, and prints
    /// `N passed, N failed, N skipped`. Kernel WARN/BUG/oops lines count as failures.
    ///
    /// Exit status: 0 all passed, 1 something failed, 2 the run could not be set up.
    Run {
        /// Suites to run, comma separated (see `gp100emu suites`).
        #[arg(long, default_value = "smoke,probe,hmm,svm", value_delimiter = ',')]
        suite: Vec<String>,
        /// Your kernel: a bzImage/vmlinux, a source tree (built out of tree with our config
        /// fragment) or a source tarball. Default: Debian's linux-source-6.12.
        #[arg(long, conflicts_with = "kernel_version")]
        kernel: Option<PathBuf>,
        /// Debian's linux-source-VERSION instead of 6.12: 6.1 (bookworm), 6.12
        /// (bookworm-backports), 7.3 (trixie-backports), or any version a Debian suite offers.
        /// Fetched into ~/.cache/gp100emu/linux-source/ when the host does not have it
        /// installed (the host's apt sources are not changed), built with our fragment, cached.
        #[arg(long, value_name = "VERSION")]
        kernel_version: Option<String>,
        /// A patch to apply to a copy of the kernel source before building (git format-patch
        /// mbox or plain diff, applied with patch -p1); repeatable, applied in order; a
        /// directory gives its *.patch files in name order. Cached by source + patches +
        /// fragment. A patch that does not apply prints its rejected hunks and exits 2.
        #[arg(long, value_name = "FILE|DIR")]
        patch: Vec<PathBuf>,
        /// Write the combined KTAP of every suite (and the host's findings) to this file.
        #[arg(long, value_name = "FILE")]
        ktap: Option<PathBuf>,
        /// Write the results as JUnit XML (per-test durations; KNOWN kernel issues and TODO
        /// expected failures as skipped tests with that label) for GitLab, Jenkins or GitHub.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Use this initramfs instead of building ours (it must print our suite markers).
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// A static hmm-tests binary, for the hmm suite with a prebuilt --kernel.
        #[arg(long)]
        hmm_tests: Option<PathBuf>,
        /// The test-only gp100emu_pgd.ko built against your kernel, for the svm suite with a
        /// prebuilt --kernel (guest-tests/kernel/gp100emu_pgd.c).
        #[arg(long)]
        pgd_module: Option<PathBuf>,
        /// Use this QEMU binary (>= 10.1, with vfio-user-pci).
        #[arg(long)]
        qemu: Option<PathBuf>,
        /// Never provision QEMU; fail if none is found.
        #[arg(long)]
        no_provision: bool,
        /// Use KVM instead of TCG (needs a working /dev/kvm).
        #[arg(long)]
        kvm: bool,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 1024)]
        memory: u32,
        /// Give up on the guest after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// More kernel command-line arguments.
        #[arg(long)]
        append: Option<String>,
        /// Don't pin QEMU and the device process to one CPU (pinning makes MMIO ~3x faster here).
        #[arg(long)]
        no_pin: bool,
        /// Don't print the guest console, only the verdict.
        #[arg(long, short)]
        quiet: bool,
        /// Never build: fail (saying how to build) if the guest kernel is not cached yet.
        #[arg(long)]
        no_build: bool,
        /// Record the device's trace of the whole run into this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// With --trace: record the bytes of every DMA write, not only their CRC-32.
        #[arg(long, requires = "trace")]
        trace_data: bool,
        /// Keep the device's and QEMU's logs (in /tmp/gp100emu-run-<pid>/) even when the run
        /// passes; the device log lists every BAR0 offset no unit decodes.
        #[arg(long)]
        keep_logs: bool,
        /// Make the device seed a bug into the PTEs nouveau writes (wrong-page, writable-ro,
        /// stale-after-munmap; KIND@N: only into the N-th process registered with the checker):
        /// the svm suite then expects the PTE checker to report it.
        #[arg(long, value_parser = parse_inject, default_value = "none")]
        inject: Inject,
        #[command(flatten)]
        explore: Box<qemu_glue::explore::ExploreArgs>,
    },
    /// List the guest suites the initramfs carries.
    Suites,
    /// Measure the model's hot paths on this machine (one core) and print name=value lines.
    Bench {
        /// Seconds per benchmark.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Instead: run the published P100 pointer-chase sweep on the model and print the TLB
        /// curve (`footprint_mib,stride_mib,cycles,published`) and its plateaus and knees.
        #[arg(long)]
        tlb_curve: bool,
        /// The cycle-model profile for --tlb-curve: p100 (anchored) or legacy (assumed).
        #[arg(long, default_value = "p100")]
        profile: String,
        /// With --tlb-curve: also write the curve as Perfetto counter tracks to this file.
        #[arg(long)]
        perfetto: Option<PathBuf>,
        /// Instead: boot the test guest (cached kernel; Debian's 6.12 unless --kernel-version)
        /// with the fault-bench suite and print its figures: boot to nouveau's `[drm]
        /// Initialized`, guest MMIO read round trip beside QEMU's edu device, sequential,
        /// 2 MiB and batched GPU fault rates (checker armed).
        #[arg(long)]
        guest: bool,
        /// With --guest: Debian's linux-source-VERSION instead of 6.12.
        #[arg(long, requires = "guest")]
        kernel_version: Option<String>,
    },
    /// Decode a GP100 page-table entry or fault-buffer entry into JSON (exit 2 on bad input).
    #[command(subcommand)]
    Decode(DecodeWhat),
    /// Serve the emulated GP100 to one QEMU over a vfio-user socket.
    ///
    /// QEMU connects with `-device '{"driver":"vfio-user-pci","socket":{"path":"PATH","type":"unix"}}'`
    /// and guest RAM backed by a shared memfd. The server exits when QEMU disconnects (a
    /// peer that leaves before VERSION is no client: it keeps listening). SIGTERM and SIGINT
    /// finish the trace (its last chunk and end record), remove the socket and exit with
    /// 128 + the signal. A socket path a live server listens on is refused (exit 1).
    Serve {
        /// Path of the UNIX socket to listen on (a stale socket there is replaced).
        #[arg(long)]
        socket: PathBuf,
        /// Size of BAR1, the VRAM aperture, in MiB (a power of two).
        #[arg(long, default_value_t = 256, value_parser = pow2_mib)]
        bar1_mib: u64,
        /// Record every interaction into this trace file (see `gp100emu replay`).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// With --trace: record the bytes of every DMA write, not only their CRC-32.
        #[arg(long, requires = "trace")]
        trace_data: bool,
        /// Seed a bug into the PTEs nouveau writes, for the PTE checker to catch:
        /// wrong-page, writable-ro or stale-after-munmap (KIND@N: only into the N-th
        /// process registered with the checker).
        #[arg(long, value_parser = parse_inject, default_value = "none")]
        inject: Inject,
        /// The replayable fault buffer's size in entries (16..=1024; default 1024): a small
        /// buffer lets one access-engine batch overflow it. Cannot go with --trace.
        #[arg(long)]
        fault_buffer_entries: Option<u32>,
    },
    /// Replay a trace through a fresh model and check every output against the recording.
    ///
    /// Exit status: 0 exact, 1 diverged or the file is damaged (the good prefix is replayed
    /// first), 2 not a readable trace.
    Replay {
        /// The trace file.
        file: PathBuf,
    },
    /// Print the first divergence between two traces, with the events before it.
    Diff {
        /// First trace.
        a: PathBuf,
        /// Second trace.
        b: PathBuf,
        /// Events of context to show before the divergence.
        #[arg(long, default_value_t = 8)]
        context: usize,
    },
    /// Print a trace's records, one per line (`@cycle event`), optionally a window of them.
    Show {
        /// The trace file.
        file: PathBuf,
        /// Records to skip first.
        #[arg(long, default_value_t = 0)]
        skip: u64,
        /// Records to print at most (reading stops there, so damage further on is not reported).
        #[arg(long, default_value_t = u64::MAX)]
        count: u64,
        /// Print only records whose text contains this.
        #[arg(long)]
        grep: Option<String>,
        /// Print only the last N matching records.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Where a trace's GPU faults spend their MMIO: the BAR accesses from the first replayable
    /// fault on, per fault written, by the BAR0 unit (or BAR) that decodes them, as
    /// `name=value` lines (exit 1 if the file is damaged: its good prefix is counted).
    FaultCosts {
        /// The trace file (record one with `gp100emu run --suite fault-bench --trace FILE`).
        file: PathBuf,
    },
    /// Export a trace as Chrome trace-event JSON for the Perfetto UI (ui.perfetto.dev).
    Export {
        /// Write Perfetto-compatible JSON (the one format there is today).
        #[arg(long, required = true)]
        perfetto: bool,
        /// Include every BAR and DMA read (a boot has very many; off by default).
        #[arg(long)]
        with_reads: bool,
        /// Stop and remove the output once it would pass this many MiB (a crafted trace can
        /// expand to far more JSON than any recording).
        #[arg(long, default_value_t = trace_cmd::DEFAULT_EXPORT_LIMIT_MIB)]
        max_output_mib: u64,
        /// The trace file.
        file: PathBuf,
        /// The JSON file to write.
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum DecodeWhat {
    /// A version-2 PTE (64-bit hex, 0x optional).
    Pte {
        /// The PTE value.
        value: String,
    },
    /// A PDE: one 64-bit value (PD3/PD2/PD1), or the two words of a PD0 entry, bits 63:0
    /// (big-page table or 2 MiB PTE) then bits 127:64 (small-page table).
    Pde {
        /// The PDE, or the low word of a PD0 entry.
        value: String,
        /// The high word of a PD0 entry.
        high: Option<String>,
    },
    /// A replayable fault-buffer entry: 64 hex digits, the 32 bytes in memory order.
    Fault {
        /// The entry.
        hex: String,
    },
}

fn pow2_mib(s: &str) -> Result<u64, String> {
    let v: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if v == 0 || !v.is_power_of_two() || v > 64 * 1024 {
        return Err(format!("{v} MiB is not a power of two between 1 and 65536"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Offline tools re-run the model, whose "undecoded register" warnings were already seen
    // when the trace was recorded: keep them quiet unless RUST_LOG asks.
    let default_level = match cli.command {
        Command::Replay { .. }
        | Command::Diff { .. }
        | Command::Show { .. }
        | Command::FaultCosts { .. }
        | Command::Export { .. }
        | Command::Bench { .. } => "error",
        _ => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    match cli.command {
        Command::Run {
            suite,
            kernel,
            kernel_version,
            patch,
            ktap,
            junit,
            initrd,
            hmm_tests,
            pgd_module,
            qemu,
            no_provision,
            kvm,
            memory,
            timeout,
            append,
            no_pin,
            quiet,
            no_build,
            trace,
            trace_data,
            keep_logs,
            inject,
            explore,
        } => {
            let mut device_args: Vec<std::ffi::OsString> = Vec::new();
            // The explore suite's flags: kernel arguments for the guest, the fault-buffer
            // size for the device.
            if let Err(e) = explore.validate(trace.is_some()) {
                eprintln!("gp100emu run: {e}");
                return ExitCode::from(2);
            }
            if let Some(n) = explore.fault_buffer_entries {
                device_args.push("--fault-buffer-entries".into());
                device_args.push(n.to_string().into());
            }
            let explore_append = explore.append();
            let append = match (append, explore_append.is_empty()) {
                (a, true) => a,
                (None, false) => Some(explore_append.join(" ")),
                (Some(a), false) => Some(format!("{a} {}", explore_append.join(" "))),
            };
            if inject != Inject::None {
                device_args.push("--inject".into());
                device_args.push(inject.name().into());
            }
            if let Some(t) = &trace {
                let abs = std::path::absolute(t).unwrap_or_else(|_| t.clone());
                device_args.push("--trace".into());
                device_args.push(abs.into());
                if trace_data {
                    device_args.push("--trace-data".into());
                }
            }
            let o = qemu_glue::run::RunOptions {
                suites: suite,
                kernel,
                kernel_version,
                patches: patch,
                ktap,
                junit,
                initrd,
                hmm_tests,
                pgd_module,
                qemu,
                provision: !no_provision,
                kvm,
                memory_mib: memory,
                timeout: std::time::Duration::from_secs(timeout),
                append,
                pin: !no_pin,
                echo_console: !quiet,
                device_args,
                build: !no_build,
                keep_logs,
            };
            let started = std::time::Instant::now();
            match qemu_glue::run::run(&o) {
                Ok((verdict, times)) => {
                    if let Err(e) = qemu_glue::run::write_reports(&o, &verdict, started.elapsed()) {
                        eprintln!("gp100emu run: {e}");
                        return ExitCode::from(2);
                    }
                    println!("=== verdict");
                    println!("{}", verdict.report());
                    qemu_glue::explore::report(&o, &verdict, explore.minimise);
                    eprintln!(
                        "timings: qemu {:.1} s, kernel {:.1} s, initramfs {:.1} s, boot-to-drm {}, boot-to-init {}, guest {:.1} s ({})",
                        times.qemu.as_secs_f64(),
                        times.kernel.as_secs_f64(),
                        times.initramfs.as_secs_f64(),
                        times
                            .boot_to_drm
                            .map(|d| format!("{:.1} s", d.as_secs_f64()))
                            .unwrap_or_else(|| "never".into()),
                        times
                            .boot_to_init
                            .map(|d| format!("{:.1} s", d.as_secs_f64()))
                            .unwrap_or_else(|| "never".into()),
                        times.guest.as_secs_f64(),
                        times
                            .boots
                            .iter()
                            .map(|(s, d)| format!("{s}: {:.1} s", d.as_secs_f64()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    ExitCode::from(verdict.exit_code() as u8)
                }
                Err(e) => {
                    eprintln!("gp100emu run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Decode(what) => {
            let r = match &what {
                DecodeWhat::Pte { value } => emulator::decode::decode_pte(value),
                DecodeWhat::Pde { value, high } => {
                    emulator::decode::decode_pde(value, high.as_deref())
                }
                DecodeWhat::Fault { hex } => emulator::decode::decode_fault(hex),
            };
            match r {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gp100emu decode: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench {
            tlb_curve: true,
            profile,
            perfetto,
            ..
        } => match qemu_glue::bench::tlb_curve(&profile, perfetto.as_deref()) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gp100emu bench: {e}");
                ExitCode::from(2)
            }
        },
        Command::Bench {
            guest: true,
            kernel_version,
            ..
        } => guest_bench(kernel_version),
        Command::Bench { secs, .. } => {
            for (name, v) in qemu_glue::bench::run_all(secs.clamp(0.05, 60.0)) {
                if v < 1000.0 {
                    println!("{name}={v:.2}");
                } else {
                    println!("{name}={v:.0}");
                }
            }
            ExitCode::SUCCESS
        }
        Command::Suites => {
            for s in guest_tests::suites::all() {
                println!("{:<12} {}", s.name, s.summary);
            }
            ExitCode::SUCCESS
        }
        Command::Serve {
            socket,
            bar1_mib,
            trace,
            trace_data,
            inject,
            fault_buffer_entries,
        } => {
            if fault_buffer_entries.is_some() && trace.is_some() {
                eprintln!("gp100emu serve: --fault-buffer-entries cannot go with --trace (the trace header does not record the buffer size)");
                return ExitCode::from(2);
            }
            let layout = BarLayout {
                bar1: bar1_mib << 20,
                ..BarLayout::default()
            };
            // Refuse a busy socket path before creating the trace file.
            if let Err(e) = qemu_glue::transport::vfio_user::remove_stale_socket(&socket) {
                eprintln!("gp100emu serve: {e}");
                return ExitCode::FAILURE;
            }
            let writer = match &trace {
                Some(p) => {
                    let h = TraceHeader {
                        emulator_version: env!("CARGO_PKG_VERSION").into(),
                        bar1_size: layout.bar1,
                        note: format!("gp100emu serve --bar1-mib {bar1_mib}"),
                        inject: inject.name(),
                        dma_write_data: trace_data,
                    };
                    match trace_cmd::create(p, &h) {
                        Ok(w) => Some(std::sync::Arc::new(std::sync::Mutex::new(w))),
                        Err(e) => {
                            eprintln!("gp100emu serve: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
                None => None,
            };
            let mut device = Device::with_layout(layout);
            device.set_inject(inject);
            if let Some(n) = fault_buffer_entries {
                if let Err(n) = device.set_fault_buffer_entries(n) {
                    eprintln!(
                        "gp100emu serve: --fault-buffer-entries {n} is outside {}..={}",
                        emulator::device::MIN_FAULT_BUFFER_ENTRIES,
                        emulator::device::MAX_FAULT_BUFFER_ENTRIES
                    );
                    return ExitCode::from(2);
                }
            }
            device.set_dma_write_data(trace_data);
            if inject != Inject::None {
                log::warn!(
                    "injecting seeded bug '{}' into nouveau's PTEs",
                    inject.name()
                );
            }
            // SIGTERM/SIGINT finish the trace and remove the socket (transport/signals.rs).
            if let Err(e) =
                qemu_glue::transport::signals::finish_on_signal(socket.clone(), writer.clone())
            {
                eprintln!("gp100emu serve: {e}");
                return ExitCode::from(2);
            }
            match qemu_glue::transport::vfio_user::serve_traced(&socket, device, writer) {
                Ok(mut backend) => {
                    if let Some(r) = backend.finish_trace() {
                        match r {
                            Ok((n, bytes)) => info!("trace: {n} events, {bytes} bytes"),
                            Err(e) => eprintln!("gp100emu serve: finishing the trace: {e}"),
                        }
                    }
                    let s = backend.stats();
                    let unknown: Vec<String> = backend
                        .device()
                        .unknown_offsets()
                        .map(|o| format!("{o:#08x}"))
                        .collect();
                    info!(
                        "QEMU disconnected: {} reads, {} writes, {} bad accesses, {} interrupts; {} undecoded BAR0 offsets{}{}",
                        s.reads, s.writes, s.bad_accesses, s.irq_signals, unknown.len(),
                        if unknown.is_empty() { "" } else { ": " },
                        unknown.join(" ")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gp100emu serve: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Replay { file } => match trace_cmd::replay_file(&file) {
            Ok((out, secs)) => {
                let rate = out.events as f64 / secs.max(1e-9);
                if let Some(m) = &out.mismatch {
                    println!("{m}");
                    println!("{}: DIVERGED after {} events", file.display(), out.events);
                    return ExitCode::from(1);
                }
                if let Some(e) = &out.damaged {
                    println!(
                        "{}: the good prefix ({} events) replayed exactly, then: {e}",
                        file.display(),
                        out.events
                    );
                    return ExitCode::from(1);
                }
                println!(
                    "{}: {} events replayed exactly; final GPU cycle {}; {:.3} s ({:.1} M events/s)",
                    file.display(),
                    out.events,
                    out.final_cycle,
                    secs,
                    rate / 1e6
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gp100emu replay: {e}");
                ExitCode::from(2)
            }
        },
        Command::FaultCosts { file } => match trace_cmd::fault_costs(&file) {
            Ok((costs, damage)) => {
                for l in costs.lines() {
                    println!("{l}");
                }
                if costs.faults == 0 {
                    eprintln!(
                        "gp100emu fault-costs: {} holds no replayable fault",
                        file.display()
                    );
                }
                match damage {
                    Some(e) => {
                        eprintln!("gp100emu fault-costs: {e}");
                        ExitCode::FAILURE
                    }
                    None => ExitCode::SUCCESS,
                }
            }
            Err(e) => {
                eprintln!("gp100emu fault-costs: {e}");
                ExitCode::from(2)
            }
        },
        Command::Show {
            file,
            skip,
            count,
            grep,
            tail,
        } => match trace_cmd::show(&file, skip, count, grep.as_deref(), tail) {
            Ok(None) => ExitCode::SUCCESS,
            Ok(Some(e)) => {
                eprintln!(
                    "gp100emu show: {}: damaged after the records shown: {e}",
                    file.display()
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("gp100emu show: {e}");
                ExitCode::from(2)
            }
        },
        Command::Diff { a, b, context } => match trace_cmd::diff_files(&a, &b, context) {
            Ok(d) => {
                println!("{d}");
                if matches!(d, emulator::trace::diff::Divergence::Identical { .. }) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("gp100emu diff: {e}");
                ExitCode::from(2)
            }
        },
        Command::Export {
            perfetto: _,
            with_reads,
            max_output_mib,
            file,
            out,
        } => match trace_cmd::export_perfetto(&file, &out, with_reads, max_output_mib) {
            Ok((stats, damaged)) => {
                println!(
                    "{}: {} timeline events from {} trace events; open it at https://ui.perfetto.dev",
                    out.display(),
                    stats.events,
                    stats.records
                );
                if let Some(e) = damaged {
                    eprintln!(
                        "gp100emu export: the trace is damaged after the exported prefix: {e}"
                    );
                    return ExitCode::from(1);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gp100emu export: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// `gp100emu bench --guest`: one boot with the fault-bench suite; its figures as `name=value`
/// lines on stdout (progress and the console's verdict on stderr).
fn guest_bench(kernel_version: Option<String>) -> ExitCode {
    let o = qemu_glue::run::RunOptions {
        suites: vec!["fault-bench".into()],
        kernel: None,
        kernel_version,
        patches: Vec::new(),
        ktap: None,
        junit: None,
        initrd: None,
        hmm_tests: None,
        pgd_module: None,
        qemu: None,
        provision: true,
        kvm: false,
        memory_mib: 1024,
        timeout: std::time::Duration::from_secs(900),
        append: None,
        pin: true,
        echo_console: false,
        device_args: Vec::new(),
        build: true,
        keep_logs: false,
    };
    let started = std::time::Instant::now();
    match qemu_glue::run::run(&o) {
        Ok((verdict, times)) => {
            let secs = |d: Option<std::time::Duration>| {
                d.map_or_else(|| "never".into(), |d| format!("{:.2}", d.as_secs_f64()))
            };
            println!("boot_to_drm_initialized_s={}", secs(times.boot_to_drm));
            println!("boot_to_init_s={}", secs(times.boot_to_init));
            for (name, value) in &times.bench {
                println!("{name}={value}");
            }
            println!("guest_wall_s={:.2}", times.guest.as_secs_f64());
            println!("bench_wall_s={:.2}", started.elapsed().as_secs_f64());
            eprintln!("{}", verdict.report());
            if times.bench.is_empty() {
                eprintln!("gp100emu bench --guest: the fault-bench suite printed no figures");
                return ExitCode::FAILURE;
            }
            ExitCode::from(verdict.exit_code() as u8)
        }
        Err(e) => {
            eprintln!("gp100emu bench --guest: {e}");
            ExitCode::from(2)
        }
    }
}

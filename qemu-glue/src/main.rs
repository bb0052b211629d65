//! `gp100emu`: the one binary. Subcommands run the whole job (`run`), serve the
//! device to a QEMU (`serve`), and help people read what the GPU saw.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emulator::pci::BarLayout;
use emulator::Device;
use log::info;

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

#[derive(Subcommand)]
enum Command {
    /// Serve the emulated GP100 to one QEMU over a vfio-user socket.
    ///
    /// QEMU connects with `-device '{"driver":"vfio-user-pci","socket":{"path":"PATH","type":"unix"}}'`
    /// and guest RAM backed by a shared memfd. The server exits when QEMU disconnects.
    Serve {
        /// Path of the UNIX socket to listen on (a stale socket there is replaced).
        #[arg(long)]
        socket: PathBuf,
        /// Size of BAR1, the VRAM aperture, in MiB (a power of two).
        #[arg(long, default_value_t = 256, value_parser = pow2_mib)]
        bar1_mib: u64,
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { socket, bar1_mib } => {
            let layout = BarLayout {
                bar1: bar1_mib << 20,
                ..BarLayout::default()
            };
            match qemu_glue::transport::vfio_user::serve(&socket, Device::with_layout(layout)) {
                Ok(backend) => {
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
    }
}

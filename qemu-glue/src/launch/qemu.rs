//! Finding a QEMU with `vfio-user-pci` (QEMU >= 10.1), provisioning one when
//! the host's is older, and building its command line.
//!
//! The provisioned QEMU lives in a Debian 13 root under the cache directory and
//! is run *without* chroot, through the root's own dynamic loader, so that the
//! socket, kernel and initramfs paths are the host's (verified here: QEMU 11.1.3
//! from trixie-backports runs this way on Debian 12 and finds its firmware via
//! `-L`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use log::info;

/// The provisioning script, embedded so the binary alone can provision. It keys
/// its cache directory by its own hash.
const PROVISION_SCRIPT: &str = include_str!("../../scripts/provision-qemu.sh");

/// Oldest QEMU with `vfio-user-pci`.
const MIN_VERSION: (u32, u32) = (10, 1);

/// Errors finding or provisioning QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// No usable QEMU and provisioning was not allowed or failed.
    #[error("no QEMU >= 10.1 with vfio-user-pci: {0}")]
    NotFound(String),
    /// The provisioning script failed.
    #[error("provisioning QEMU failed (exit {code:?}); see the messages above. To retry: {script} {cache}")]
    Provision {
        code: Option<i32>,
        script: String,
        cache: String,
    },
    /// An I/O error around the cache directory.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A runnable QEMU: the program and arguments that start it, plus firmware
/// search directories and environment.
#[derive(Debug, Clone)]
pub struct Qemu {
    /// argv prefix (the binary, or the root's ld.so with its arguments).
    pub argv: Vec<OsString>,
    /// Extra environment (module directory of a provisioned root).
    pub env: Vec<(OsString, OsString)>,
    /// Firmware directories passed as `-L`.
    pub data_dirs: Vec<PathBuf>,
    /// `--version`'s first line.
    pub version: String,
}

impl Qemu {
    /// A `Command` with the QEMU program ready for arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for d in &self.data_dirs {
            c.arg("-L").arg(d);
        }
        c
    }
}

/// Parses "QEMU emulator version 11.1.3 (…)" into (11, 1).
pub fn parse_version(line: &str) -> Option<(u32, u32)> {
    let v = line
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let minor = minor.parse().ok()?;
    Some((major, minor))
}

fn probe(q: &Qemu) -> Result<String, String> {
    let out = {
        let mut c = Qemu {
            data_dirs: vec![],
            ..q.clone()
        }
        .command();
        c.arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", q.argv[0].to_string_lossy()))?
    };
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    match parse_version(&version) {
        Some(v) if v >= MIN_VERSION => {}
        Some(v) => return Err(format!("{version} is {}.{}, older than 10.1", v.0, v.1)),
        None => return Err(format!("cannot read a version from {:?}", version)),
    }
    let mut c = Qemu {
        data_dirs: vec![],
        ..q.clone()
    }
    .command();
    let devs = c
        .args(["-device", "help"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&devs.stdout).contains("\"vfio-user-pci\"") {
        return Err(format!("{version} lacks the vfio-user-pci device"));
    }
    Ok(version)
}

/// A QEMU from a provisioned Debian 13 root, run through the root's loader.
pub fn from_root(root: &Path) -> Qemu {
    let lib = format!(
        "{}:{}",
        root.join("lib/x86_64-linux-gnu").display(),
        root.join("usr/lib/x86_64-linux-gnu").display()
    );
    Qemu {
        argv: vec![
            root.join("lib64/ld-linux-x86-64.so.2").into(),
            "--library-path".into(),
            lib.into(),
            root.join("usr/bin/qemu-system-x86_64").into(),
        ],
        env: vec![(
            "QEMU_MODULE_DIR".into(),
            root.join("usr/lib/x86_64-linux-gnu/qemu").into(),
        )],
        data_dirs: vec![
            root.join("usr/share/qemu"),
            root.join("usr/share/seabios"),
            root.join("usr/lib/ipxe/qemu"),
        ],
        version: String::new(),
    }
}

/// Finds a usable QEMU: `explicit` if given, else the host's
/// `qemu-system-x86_64` when it is >= 10.1 with vfio-user-pci, else the cached
/// Debian 13 root, provisioning it (minutes, progress on stderr) when
/// `provision` allows.
pub fn find_or_provision(
    explicit: Option<&Path>,
    cache: &Path,
    provision: bool,
) -> Result<Qemu, QemuError> {
    if let Some(p) = explicit {
        let q = Qemu {
            argv: vec![p.into()],
            env: vec![],
            data_dirs: vec![],
            version: String::new(),
        };
        let version = probe(&q).map_err(QemuError::NotFound)?;
        return Ok(Qemu { version, ..q });
    }
    let host = Qemu {
        argv: vec!["qemu-system-x86_64".into()],
        env: vec![],
        data_dirs: vec![],
        version: String::new(),
    };
    let host_verdict = match probe(&host) {
        Ok(version) => {
            info!("using the host's QEMU: {version}");
            return Ok(Qemu { version, ..host });
        }
        Err(why) => why,
    };
    std::fs::create_dir_all(cache).map_err(|source| QemuError::Io {
        what: format!("creating {}", cache.display()),
        source,
    })?;
    let script = cache.join("provision-qemu.sh");
    std::fs::write(&script, PROVISION_SCRIPT).map_err(|source| QemuError::Io {
        what: format!("writing {}", script.display()),
        source,
    })?;
    // The script answers at once from its cache when the root exists.
    let root = run_script(&script, cache, provision, &host_verdict)?;
    let q = from_root(&root);
    let version = probe(&q)
        .map_err(|e| QemuError::NotFound(format!("provisioned root {}: {e}", root.display())))?;
    info!("using QEMU from {}: {version}", root.display());
    Ok(Qemu { version, ..q })
}

fn run_script(
    script: &Path,
    cache: &Path,
    provision: bool,
    host_verdict: &str,
) -> Result<PathBuf, QemuError> {
    let mut c = Command::new("bash");
    c.arg(script)
        .arg(cache)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if !provision {
        c.env("GP100EMU_NO_PROVISION", "1");
    }
    let out = c.output().map_err(|source| QemuError::Io {
        what: "running bash".into(),
        source,
    })?;
    if !out.status.success() {
        if !provision {
            return Err(QemuError::NotFound(format!(
                "host QEMU: {host_verdict}; no provisioned root in {} and --no-provision was given. \
                 Run `gp100emu provision-qemu` (as root), or install QEMU >= 10.1",
                cache.display()
            )));
        }
        return Err(QemuError::Provision {
            code: out.status.code(),
            script: script.display().to_string(),
            cache: cache.display().to_string(),
        });
    }
    let root = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    Ok(PathBuf::from(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)"),
            Some((11, 1))
        );
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"),
            Some((10, 0))
        );
        assert_eq!(parse_version("QEMU emulator version 10.1.0"), Some((10, 1)));
        assert_eq!(parse_version("QEMU emulator version 9.2rc1"), Some((9, 2)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("QEMU emulator version 10.0.2").unwrap() < MIN_VERSION);
    }

    #[test]
    fn root_qemu_runs_through_the_roots_loader() {
        let q = from_root(Path::new("/r"));
        assert_eq!(q.argv[0], OsString::from("/r/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(q.argv[3], OsString::from("/r/usr/bin/qemu-system-x86_64"));
        let c = q.command();
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["-L", "/r/usr/share/seabios"]));
    }
}

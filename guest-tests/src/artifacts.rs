//! The guest kernel and initramfs: built from the embedded fragment, scripts and suites,
//! cached under the cache directory keyed by everything that produced them, so a second
//! run costs nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use log::info;
use sha2::{Digest, Sha256};

use crate::embedded;

/// Errors while making guest artefacts.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file or directory could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A build script failed; its own message went to stderr above.
    #[error("{what} failed ({status}); see the messages above")]
    Script {
        /// Which step.
        what: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The user asked for something that cannot work.
    #[error("{0}")]
    Usage(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let what = what.into();
    move |source| ArtifactError::Io { what, source }
}

/// Debian's kernel source tarball (package linux-source-6.12, from bookworm-backports).
pub const DEBIAN_KERNEL_SOURCE: &str = "/usr/src/linux-source-6.12.tar.xz";

/// Where the guest kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// A source tarball (Debian's by default), built with our fragment.
    Tarball(PathBuf),
    /// A kernel source tree of the user's own, built out of tree with our fragment.
    Tree(PathBuf),
    /// A kernel image the user built; used as is.
    Image(PathBuf),
}

impl KernelSource {
    /// Interprets `--kernel PATH`: a directory is a source tree, a `.tar.*` file a tarball,
    /// any other file a kernel image. `None` means Debian's tarball.
    pub fn from_arg(p: Option<&Path>) -> Self {
        match p {
            None => KernelSource::Tarball(DEBIAN_KERNEL_SOURCE.into()),
            Some(p) if p.is_dir() => KernelSource::Tree(p.into()),
            Some(p) if p.to_string_lossy().contains(".tar") => KernelSource::Tarball(p.into()),
            Some(p) => KernelSource::Image(p.into()),
        }
    }
}

/// A guest kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// bzImage (or the user's image).
    pub image: PathBuf,
    /// The kernel's hmm-tests built from the same source, when we built the kernel.
    pub hmm_tests: Option<PathBuf>,
    /// Whether this call built anything (false: taken from the cache or given).
    pub built: bool,
    /// The source tree and out-of-tree build directory, when we built it (modules are built
    /// against them).
    pub tree: Option<(PathBuf, PathBuf)>,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn sha_file(h: &mut Sha256, p: &Path) -> Result<(), ArtifactError> {
    let mut f = std::fs::File::open(p).map_err(io(format!("reading {}", p.display())))?;
    std::io::copy(&mut f, h).map_err(io(format!("reading {}", p.display())))?;
    Ok(())
}

/// Writes an embedded script into the cache (named by its hash) and returns its path.
fn script_file(cache: &Path, name: &str, body: &[u8]) -> Result<PathBuf, ArtifactError> {
    let dir = cache.join("scripts").join(&hex(Sha256::digest(body))[..12]);
    let p = dir.join(name);
    if !p.exists() {
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        std::fs::write(&p, body).map_err(io(format!("writing {}", p.display())))?;
    }
    Ok(p)
}

/// The kernel for `source`, building it if the cache lacks it and `allow_build` says so.
/// Progress goes to stderr.
pub fn ensure_kernel(
    cache: &Path,
    source: &KernelSource,
    allow_build: bool,
) -> Result<Kernel, ArtifactError> {
    let (src, key_input) = match source {
        KernelSource::Image(p) => {
            if !p.is_file() {
                return Err(ArtifactError::Usage(format!(
                    "--kernel {}: no such file or directory",
                    p.display()
                )));
            }
            return Ok(Kernel {
                image: p.clone(),
                hmm_tests: None,
                built: false,
                tree: None,
            });
        }
        KernelSource::Tarball(p) => {
            if !p.is_file() {
                return Err(ArtifactError::Usage(format!(
                    "no kernel source at {}: install Debian's linux-source-6.12 (bookworm-backports); \
                     qemu-glue/scripts/host-deps.sh does it. Or pass --kernel with your own tree or bzImage.",
                    p.display()
                )));
            }
            eprintln!("[kernel] checking the cache for {}", p.display());
            let mut h = Sha256::new();
            sha_file(&mut h, p)?;
            (p.clone(), format!("tarball:{}", hex(h.finalize())))
        }
        KernelSource::Tree(p) => {
            let abs = p
                .canonicalize()
                .map_err(io(format!("resolving {}", p.display())))?;
            (abs.clone(), format!("tree:{}", abs.display()))
        }
    };
    let mut h = Sha256::new();
    h.update(key_input.as_bytes());
    h.update(embedded::KERNEL_FRAGMENT);
    h.update(embedded::BUILD_KERNEL_SH);
    let key = hex(h.finalize());
    let out = cache.join("kernel").join(&key[..16]);
    let done = out.join("done");
    let is_tree = matches!(source, KernelSource::Tree(_));
    let tree_dirs = Some((
        if is_tree {
            src.clone()
        } else {
            out.join("src")
        },
        out.join("build"),
    ));
    if done.exists() && !is_tree {
        info!("guest kernel from the cache: {}", out.display());
        return Ok(Kernel {
            image: out.join("bzImage"),
            hmm_tests: Some(out.join("hmm-tests")),
            built: false,
            tree: tree_dirs,
        });
    }
    if !allow_build && !done.exists() {
        return Err(ArtifactError::Usage(format!(
            "the guest kernel is not built yet (no {}); run `cargo run --release -- run` once: \
             it builds the kernel into the cache (about 10 minutes on 2 cores)",
            done.display()
        )));
    }
    std::fs::create_dir_all(&out).map_err(io(format!("creating {}", out.display())))?;
    let script = script_file(cache, "build-kernel.sh", embedded::BUILD_KERNEL_SH)?;
    let fragment = out.join("gp100emu.config");
    std::fs::write(&fragment, embedded::KERNEL_FRAGMENT)
        .map_err(io(format!("writing {}", fragment.display())))?;
    eprintln!(
        "[kernel] building the guest kernel into {} (first time only; about 10 minutes on 2 cores)",
        out.display()
    );
    run_script(
        Command::new("bash")
            .arg(&script)
            .arg("--source")
            .arg(&src)
            .arg("--fragment")
            .arg(&fragment)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null()),
        "build-kernel.sh",
        "building the guest kernel",
    )?;
    Ok(Kernel {
        image: out.join("bzImage"),
        hmm_tests: Some(out.join("hmm-tests")),
        built: true,
        tree: tree_dirs,
    })
}

/// gp100emu's test-only module `gp100emu_pgd.ko` (guest-tests/kernel/gp100emu_pgd.c), built
/// against `kernel`; cached by the kernel build, the module source and the build script.
pub fn ensure_pgd_module(cache: &Path, kernel: &Kernel) -> Result<PathBuf, ArtifactError> {
    let Some((tree, build)) = &kernel.tree else {
        return Err(ArtifactError::Usage(
            "the svm suite needs the test-only module gp100emu_pgd built against the guest kernel; \
             with a prebuilt --kernel image, build guest-tests/kernel/gp100emu_pgd.c against your \
             kernel and pass it with --pgd-module PATH"
                .into(),
        ));
    };
    let mut h = Sha256::new();
    h.update(build.to_string_lossy().as_bytes());
    h.update(embedded::PGD_MODULE_C);
    h.update(embedded::BUILD_MODULE_SH);
    if let Ok(m) = std::fs::metadata(build.join("vmlinux")) {
        h.update(format!("{:?}", m.modified().ok()).as_bytes());
    }
    let key = hex(h.finalize());
    let out = cache.join("modules").join(&key[..16]);
    let ko = out.join("gp100emu_pgd.ko");
    if ko.exists() {
        return Ok(ko);
    }
    std::fs::create_dir_all(&out).map_err(io(format!("creating {}", out.display())))?;
    let source = out.join("gp100emu_pgd.c");
    std::fs::write(&source, embedded::PGD_MODULE_C)
        .map_err(io(format!("writing {}", source.display())))?;
    let script = script_file(cache, "build-module.sh", embedded::BUILD_MODULE_SH)?;
    let built = out.join("build");
    eprintln!(
        "[module] building gp100emu_pgd.ko against {}",
        build.display()
    );
    run_script(
        Command::new("bash")
            .arg(&script)
            .arg("--tree")
            .arg(tree)
            .arg("--build")
            .arg(build)
            .arg("--source")
            .arg(&source)
            .arg("--out")
            .arg(&built)
            .stdout(Stdio::null()),
        "build-module.sh",
        "building the gp100emu_pgd module",
    )?;
    std::fs::copy(built.join("gp100emu_pgd.ko"), &ko)
        .map_err(io(format!("copying the module to {}", ko.display())))?;
    Ok(ko)
}

/// What goes into an initramfs beyond the suites.
#[derive(Debug, Default, Clone)]
pub struct InitramfsExtras<'a> {
    /// Static binaries for `/bin`: (name, path).
    pub bins: Vec<(&'a str, &'a Path)>,
    /// Kernel modules for `/lib/modules`.
    pub modules: Vec<&'a Path>,
    /// gp100emu's generated GR/ACR firmware in `/lib/firmware` ([`crate::firmware`]).
    pub gr_firmware: bool,
}

/// The initramfs with every embedded suite, busybox, `/init`, and the extras. Cached by the
/// hash of all of it.
pub fn ensure_initramfs(cache: &Path, x: &InitramfsExtras<'_>) -> Result<PathBuf, ArtifactError> {
    let extras = &x.bins;
    let mut h = Sha256::new();
    for m in &x.modules {
        sha_file(&mut h, m)?;
    }
    if x.gr_firmware {
        for (rel, body) in crate::firmware::files() {
            h.update(rel.as_bytes());
            h.update(&body);
        }
    }
    for (rel, body) in embedded::SUITE_FILES {
        h.update(rel.as_bytes());
        h.update((body.len() as u64).to_le_bytes());
        h.update(body);
    }
    h.update(embedded::INIT);
    h.update(embedded::BUILD_INITRAMFS_SH);
    for (name, p) in extras {
        h.update(name.as_bytes());
        sha_file(&mut h, p)?;
    }
    for b in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(b).exists() {
            sha_file(&mut h, Path::new(b))?;
            break;
        }
    }
    if let Ok(o) = Command::new("gcc").arg("--version").output() {
        h.update(&o.stdout);
    }
    let key = hex(h.finalize());
    let out = cache
        .join("initramfs")
        .join(format!("{}.cpio.gz", &key[..16]));
    if out.exists() {
        info!("initramfs from the cache: {}", out.display());
        return Ok(out);
    }
    let stage = cache.join("initramfs").join(format!("src-{}", &key[..16]));
    let _ = std::fs::remove_dir_all(&stage);
    for (rel, body) in embedded::SUITE_FILES {
        let p = stage.join("suites").join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        std::fs::write(&p, body).map_err(io(format!("writing {}", p.display())))?;
    }
    let init = stage.join("init");
    std::fs::write(&init, embedded::INIT).map_err(io(format!("writing {}", init.display())))?;
    let script = script_file(cache, "build-initramfs.sh", embedded::BUILD_INITRAMFS_SH)?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--suites")
        .arg(stage.join("suites"))
        .arg("--init")
        .arg(&init)
        .arg("--out")
        .arg(&out);
    for (name, p) in extras {
        let mut a = std::ffi::OsString::from(format!("{name}="));
        a.push(p.as_os_str());
        cmd.arg("--extra").arg(a);
    }
    for m in &x.modules {
        cmd.arg("--module").arg(m);
    }
    if x.gr_firmware {
        let fw = stage.join("firmware");
        crate::firmware::write_to(&fw).map_err(io(format!("writing {}", fw.display())))?;
        cmd.arg("--firmware").arg(&fw);
    }
    eprintln!("[initramfs] building {}", out.display());
    let built = run_script(&mut cmd, "build-initramfs.sh", "building the initramfs");
    let _ = std::fs::remove_dir_all(&stage);
    built.map(|()| out)
}

/// Runs one of our build scripts (`cmd` is `bash SCRIPT ARGS…`) with stdin closed; a failure
/// to start names `script`, a failing exit names `what`.
fn run_script(cmd: &mut Command, script: &str, what: &str) -> Result<(), ArtifactError> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(io(format!("starting bash for {script}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ArtifactError::Script {
            what: what.into(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_build_says_how_to_build() {
        let dir = std::env::temp_dir().join(format!("gp100emu-nobuild-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tarball = dir.join("fake.tar.xz");
        std::fs::write(&tarball, b"not a kernel").unwrap();
        let e = ensure_kernel(&dir, &KernelSource::Tarball(tarball), false).unwrap_err();
        assert!(e.to_string().contains("cargo run --release -- run"), "{e}");
        assert!(
            !dir.join("kernel").exists(),
            "nothing may be created without building"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kernel_argument_kinds() {
        let d = std::env::temp_dir();
        assert_eq!(
            KernelSource::from_arg(Some(&d)),
            KernelSource::Tree(d.clone())
        );
        assert_eq!(
            KernelSource::from_arg(Some(Path::new("/x/linux-6.13.tar.xz"))),
            KernelSource::Tarball("/x/linux-6.13.tar.xz".into())
        );
        assert_eq!(
            KernelSource::from_arg(Some(Path::new("/boot/vmlinuz"))),
            KernelSource::Image("/boot/vmlinuz".into())
        );
        assert_eq!(
            KernelSource::from_arg(None),
            KernelSource::Tarball(DEBIAN_KERNEL_SOURCE.into())
        );
    }

    #[test]
    fn missing_image_is_a_usage_error() {
        let e = ensure_kernel(
            &std::env::temp_dir(),
            &KernelSource::Image("/nonexistent/bzImage".into()),
            true,
        )
        .unwrap_err();
        assert!(matches!(e, ArtifactError::Usage(_)), "{e}");
    }

    #[test]
    fn missing_tarball_says_how_to_get_it() {
        let e = ensure_kernel(
            &std::env::temp_dir(),
            &KernelSource::Tarball("/nonexistent/linux.tar.xz".into()),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("host-deps.sh"), "{e}");
    }
}

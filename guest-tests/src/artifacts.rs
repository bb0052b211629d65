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
    /// A `--patch` did not apply; build-kernel.sh printed the rejected hunks above.
    #[error("a patch did not apply (its rejected hunks are printed above and kept in {})", rejects.display())]
    PatchRejected {
        /// Where the `.rej` files are.
        rejects: PathBuf,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let what = what.into();
    move |source| ArtifactError::Io { what, source }
}

/// Debian's kernel source tarball (package linux-source-6.12, from bookworm-backports).
pub const DEBIAN_KERNEL_SOURCE: &str = "/usr/src/linux-source-6.12.tar.xz";

/// The Debian kernel versions `--kernel-version` is tested with (CI boots 6.12 and the newest);
/// any other `linux-source-N` a Debian suite offers works the same way.
pub const KNOWN_DEBIAN_VERSIONS: &[&str] = &["6.1", "6.12", "7.3"];

/// Debian's `linux-source-VERSION` tarball: the host's installed one, else the one cached under
/// `cache`, else fetched from the Debian archive (guest-tests/scripts/fetch-kernel-source.sh:
/// a private apt configuration, the host's apt is never changed). Progress goes to stderr.
pub fn debian_kernel_source(
    cache: &Path,
    version: &str,
    allow_fetch: bool,
) -> Result<PathBuf, ArtifactError> {
    if !version
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        || !version.contains('.')
    {
        return Err(ArtifactError::Usage(format!(
            "--kernel-version {version}: want a Debian kernel source version such as {}",
            KNOWN_DEBIAN_VERSIONS.join(", ")
        )));
    }
    let installed = PathBuf::from(format!("/usr/src/linux-source-{version}.tar.xz"));
    if installed.is_file() {
        return Ok(installed);
    }
    let script = script_file(
        cache,
        "fetch-kernel-source.sh",
        embedded::FETCH_KERNEL_SOURCE_SH,
    )?;
    let current = cache.join("linux-source").join(version).join("current");
    if !allow_fetch {
        return match std::fs::read_to_string(&current) {
            Ok(p) if Path::new(p.trim()).is_file() => Ok(PathBuf::from(p.trim())),
            _ => Err(ArtifactError::Usage(format!(
                "Debian's linux-source-{version} is neither installed nor cached; run \
                 `gp100emu run --kernel-version {version}` once without --no-build (it fetches it)"
            ))),
        };
    }
    let out = Command::new("bash")
        .arg(&script)
        .arg("--version")
        .arg(version)
        .arg("--cache")
        .arg(cache)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(io("starting bash for fetch-kernel-source.sh"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tarball = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("TARBALL="))
        .map(PathBuf::from);
    match (out.status.code(), tarball) {
        (Some(0), Some(t)) => Ok(t),
        (Some(2), _) => Err(ArtifactError::Usage(format!(
            "--kernel-version {version}: see the message above"
        ))),
        _ => Err(ArtifactError::Script {
            what: format!("fetching Debian's linux-source-{version}"),
            status: out.status,
        }),
    }
}

/// Expands `--patch` arguments in order: a file is one patch; a directory gives its `*.patch`
/// files in name order (it must hold at least one).
pub fn expand_patches(args: &[PathBuf]) -> Result<Vec<PathBuf>, ArtifactError> {
    let mut v = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(a)
                .map_err(io(format!("reading {}", a.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "patch"))
                .collect();
            if in_dir.is_empty() {
                return Err(ArtifactError::Usage(format!(
                    "--patch {}: the directory holds no *.patch file",
                    a.display()
                )));
            }
            in_dir.sort();
            v.extend(in_dir);
        } else if a.is_file() {
            v.push(a.clone());
        } else {
            return Err(ArtifactError::Usage(format!(
                "--patch {}: no such file or directory",
                a.display()
            )));
        }
    }
    Ok(v)
}

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
    /// Its installed UAPI headers, when we built the kernel (user programs such as hmm-tests
    /// are built against them).
    pub headers: Option<PathBuf>,
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

/// The cache key of a kernel build: the source, the fragment and build script, and the patches
/// in order (a patched kernel is cached apart from the unpatched one and from other patch
/// orders; with no patches the key is what it was before patches existed).
pub fn kernel_key(key_input: &str, patches: &[Vec<u8>]) -> String {
    let mut h = Sha256::new();
    h.update(key_input.as_bytes());
    h.update(embedded::KERNEL_FRAGMENT);
    h.update(embedded::BUILD_KERNEL_SH);
    for p in patches {
        h.update(b"\0patch\0");
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(h.finalize())
}

/// The kernel for `source` with `patches` applied (to a copy of the source), building it if the
/// cache lacks it and `allow_build` says so. Progress goes to stderr.
pub fn ensure_kernel(
    cache: &Path,
    source: &KernelSource,
    patches: &[PathBuf],
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
            if !patches.is_empty() {
                return Err(ArtifactError::Usage(format!(
                    "--patch needs a kernel source to patch, and --kernel {} is a built image; \
                     pass a source tree or tarball with --kernel, or --kernel-version N",
                    p.display()
                )));
            }
            return Ok(Kernel {
                image: p.clone(),
                headers: None,
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
    let patch_bodies = patches
        .iter()
        .map(|p| std::fs::read(p).map_err(io(format!("reading the patch {}", p.display()))))
        .collect::<Result<Vec<_>, _>>()?;
    let key = kernel_key(&key_input, &patch_bodies);
    let out = cache.join("kernel").join(&key[..16]);
    let done = out.join("done");
    let is_tree = matches!(source, KernelSource::Tree(_));
    // A tree with patches is built from a patched copy in the cache.
    let tree_dirs = Some((
        if is_tree && patches.is_empty() {
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
            headers: Some(out.join("headers")),
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
        "[kernel] building the guest kernel into {}{} (first time only; about 12 minutes on 2 cores)",
        out.display(),
        if patches.is_empty() {
            String::new()
        } else {
            format!(" with {} patch(es)", patches.len())
        }
    );
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--source")
        .arg(&src)
        .arg("--fragment")
        .arg(&fragment)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null());
    for p in patches {
        cmd.arg("--patch").arg(p);
    }
    let _ = std::fs::remove_dir_all(out.join("rejects"));
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(io("starting bash for build-kernel.sh"))?;
    if status.code() == Some(2) && !patches.is_empty() && out.join("rejects").is_dir() {
        return Err(ArtifactError::PatchRejected {
            rejects: out.join("rejects"),
        });
    }
    if !status.success() {
        return Err(ArtifactError::Script {
            what: "building the guest kernel".into(),
            status,
        });
    }
    Ok(Kernel {
        image: out.join("bzImage"),
        headers: Some(out.join("headers")),
        built: true,
        tree: tree_dirs,
    })
}

/// The kernel's own hmm-tests, or why this kernel's cannot be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HmmTests {
    /// A static binary built from the kernel's selftests.
    Built(PathBuf),
    /// It cannot be built for this kernel: the suites that need it are skipped with this reason.
    Unavailable(String),
}

/// hmm-tests for `kernel`, built with the kernel's own selftests Makefile
/// (guest-tests/scripts/build-hmm-tests.sh); cached by the kernel build, the test's sources and
/// the script.
pub fn ensure_hmm_tests(cache: &Path, kernel: &Kernel) -> Result<HmmTests, ArtifactError> {
    let (Some((tree, _)), Some(headers)) = (&kernel.tree, &kernel.headers) else {
        return Ok(HmmTests::Unavailable(
            "the kernel is a prebuilt image; pass --hmm-tests PATH (a static build of the \
             kernel's tools/testing/selftests/mm/hmm-tests)"
                .into(),
        ));
    };
    let mut h = Sha256::new();
    h.update(headers.to_string_lossy().as_bytes());
    h.update(embedded::BUILD_HMM_TESTS_SH);
    for d in ["mm", "vm"] {
        let dir = tree.join("tools/testing/selftests").join(d);
        for f in ["hmm-tests.c", "vm_util.c", "vm_util.h", "Makefile"] {
            if let Ok(b) = std::fs::read(dir.join(f)) {
                h.update(f.as_bytes());
                h.update(&b);
            }
        }
    }
    let key = hex(h.finalize());
    let out = cache.join("hmm-tests").join(&key[..16]);
    let bin = out.join("hmm-tests");
    if bin.is_file() {
        return Ok(HmmTests::Built(bin));
    }
    let script = script_file(cache, "build-hmm-tests.sh", embedded::BUILD_HMM_TESTS_SH)?;
    let o = Command::new("bash")
        .arg(&script)
        .arg("--tree")
        .arg(tree)
        .arg("--headers")
        .arg(headers)
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(io("starting bash for build-hmm-tests.sh"))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    match o.status.code() {
        Some(0) if bin.is_file() => Ok(HmmTests::Built(bin)),
        Some(3) => Ok(HmmTests::Unavailable(
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("REASON="))
                .unwrap_or("hmm-tests could not be built (no reason given)")
                .to_string(),
        )),
        _ => Err(ArtifactError::Script {
            what: "building hmm-tests".into(),
            status: o.status,
        }),
    }
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
    h.update(embedded::KMSG_HELPER_C);
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
    let kmsg = stage.join("gp100emu-kmsg.c");
    std::fs::write(&kmsg, embedded::KMSG_HELPER_C)
        .map_err(io(format!("writing {}", kmsg.display())))?;
    let script = script_file(cache, "build-initramfs.sh", embedded::BUILD_INITRAMFS_SH)?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--suites")
        .arg(stage.join("suites"))
        .arg("--init")
        .arg(&init)
        .arg("--out")
        .arg(&out)
        .arg("--helper")
        .arg(&kmsg);
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
        let e = ensure_kernel(&dir, &KernelSource::Tarball(tarball), &[], false).unwrap_err();
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
            &[],
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
            &[],
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("host-deps.sh"), "{e}");
    }

    /// A scratch directory removed at the end of the test.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!("gp100emu-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A tarball shaped like a kernel source (Makefile, arch/x86) with one file to patch.
    fn fake_kernel_tarball(dir: &Path) -> PathBuf {
        let tree = dir.join("linux-fake");
        std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
        std::fs::write(tree.join("Makefile"), "# not a kernel\n").unwrap();
        std::fs::write(tree.join("hello.c"), "int one(void)\n{\n\treturn 1;\n}\n").unwrap();
        let t = dir.join("linux-fake.tar.xz");
        let st = Command::new("tar")
            .arg("-cJf")
            .arg(&t)
            .arg("-C")
            .arg(dir)
            .arg("linux-fake")
            .status()
            .unwrap();
        assert!(st.success());
        t
    }

    /// The one kernel cache entry a test made.
    fn only_kernel_dir(cache: &Path) -> PathBuf {
        let mut dirs = std::fs::read_dir(cache.join("kernel")).unwrap();
        let d = dirs.next().unwrap().unwrap().path();
        assert!(dirs.next().is_none(), "one kernel entry");
        d
    }

    const GOOD_PATCH: &str = "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] two\n\n---\n\
diff --git a/hello.c b/hello.c\n--- a/hello.c\n+++ b/hello.c\n@@ -1,4 +1,4 @@\n int one(void)\n {\n-\treturn 1;\n+\treturn 2;\n }\n-- \n2.47.3\n";
    const BAD_PATCH: &str = "--- a/hello.c\n+++ b/hello.c\n@@ -1,4 +1,4 @@\n int one(void)\n {\n-\treturn 41;\n+\treturn 42;\n }\n";

    #[test]
    fn patched_kernels_are_cached_apart() {
        let plain = kernel_key("tarball:abc", &[]);
        let one = kernel_key("tarball:abc", &[b"patch one".to_vec()]);
        let two = kernel_key(
            "tarball:abc",
            &[b"patch one".to_vec(), b"patch two".to_vec()],
        );
        let swapped = kernel_key(
            "tarball:abc",
            &[b"patch two".to_vec(), b"patch one".to_vec()],
        );
        let joined = kernel_key("tarball:abc", &[b"patch onepatch two".to_vec()]);
        let all = [&plain, &one, &two, &swapped, &joined];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(plain, kernel_key("tarball:abc", &[]), "the key is stable");
    }

    #[test]
    fn a_patch_that_does_not_apply_is_rejected_with_its_hunks() {
        let d = Scratch::new("badpatch");
        let t = fake_kernel_tarball(&d.0);
        let p = d.0.join("0001-bad.patch");
        std::fs::write(&p, BAD_PATCH).unwrap();
        let cache = d.0.join("cache");
        let e = ensure_kernel(&cache, &KernelSource::Tarball(t.clone()), &[p], true).unwrap_err();
        let ArtifactError::PatchRejected { rejects } = &e else {
            panic!("want PatchRejected, got {e}");
        };
        let rej: String = std::fs::read_dir(rejects)
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .collect();
        assert!(
            rej.contains("return 42"),
            "the reject holds the hunk: {rej}"
        );
        // Nothing half-patched is left to be mistaken for a source tree next time.
        let key = only_kernel_dir(&cache);
        assert!(!key.join("src").exists() && !key.join("src.tmp").exists());
        assert!(!key.join("done").exists());
    }

    #[test]
    fn a_patch_that_applies_reaches_the_build_on_a_copy() {
        let d = Scratch::new("goodpatch");
        let t = fake_kernel_tarball(&d.0);
        let patches_dir = d.0.join("patches");
        std::fs::create_dir_all(&patches_dir).unwrap();
        std::fs::write(patches_dir.join("0001-two.patch"), GOOD_PATCH).unwrap();
        std::fs::write(patches_dir.join("README"), "not a patch").unwrap();
        let patches = expand_patches(std::slice::from_ref(&patches_dir)).unwrap();
        assert_eq!(patches, vec![patches_dir.join("0001-two.patch")]);
        let cache = d.0.join("cache");
        // The fake tree applies the patch, then fails to configure (it is not a kernel).
        let e = ensure_kernel(&cache, &KernelSource::Tarball(t), &patches, true).unwrap_err();
        assert!(matches!(e, ArtifactError::Script { .. }), "{e}");
        let key = only_kernel_dir(&cache);
        let hello = std::fs::read_to_string(key.join("src/hello.c")).unwrap();
        assert!(hello.contains("return 2;"), "{hello}");
    }

    #[test]
    fn patch_arguments_must_exist_and_directories_must_hold_patches() {
        let d = Scratch::new("patchargs");
        assert!(matches!(
            expand_patches(&[d.0.join("nope.patch")]),
            Err(ArtifactError::Usage(_))
        ));
        let e = expand_patches(std::slice::from_ref(&d.0)).unwrap_err();
        assert!(e.to_string().contains("no *.patch"), "{e}");
        std::fs::write(d.0.join("bz"), b"an image").unwrap();
        let e = ensure_kernel(
            &d.0,
            &KernelSource::Image(d.0.join("bz")),
            &[d.0.join("x.patch")],
            true,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("needs a kernel source to patch"),
            "{e}"
        );
    }

    #[test]
    fn kernel_versions_are_checked_before_anything_runs() {
        for bad in ["", "7", "seven", "6..1", "6.1;rm"] {
            let e = debian_kernel_source(&std::env::temp_dir(), bad, false).unwrap_err();
            assert!(e.to_string().contains("--kernel-version"), "{bad}: {e}");
        }
    }
}

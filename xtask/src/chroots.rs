//! Interpreters of other CPython versions for the end-to-end tests, made with
//! `debootstrap` from the Debian mirror apt already uses, once, in a cache
//! outside the repository. A root that cannot be made is not skipped: the
//! tests that need it fail with the reason (passed to them in
//! `<ENV>_ERROR`), the others still run.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{arch::Arch, packages, setup::ensure_apt, util::run};

/// One interpreter in its own Debian root.
pub struct Chroot {
    /// Environment variable the tests read the root from.
    pub env: &'static str,
    pub suite: &'static str,
    pub package: &'static str,
    /// The interpreter inside the root, to tell a finished root from a partial one.
    pub python: &'static str,
    /// More packages, installed into the root with apt when the file that
    /// says they are there is missing: (package, file).
    pub extra: &'static [(&'static str, &'static str)],
    /// Another architecture's root is made with `debootstrap --foreign`
    /// and finished inside it under qemu's user-mode emulator.
    pub arch: Arch,
}

pub const CHROOTS: &[Chroot] = &[
    // CPython 3.9.2: the PyFrameObject era, Debian's static build.
    Chroot {
        env: "TRACER_PY39_ROOT",
        suite: "bullseye",
        package: "python3.9",
        python: "usr/bin/python3.9",
        extra: &[],
        arch: Arch::X86_64,
    },
    // CPython 3.13.5: _Py_DebugOffsets in a .PyRuntime section; and its
    // debug build (`python3.13d`, --with-pydebug).
    Chroot {
        env: "TRACER_PY313_ROOT",
        suite: "trixie",
        package: "python3.13",
        python: "usr/bin/python3.13",
        extra: &[("python3.13-dbg", "usr/bin/python3.13d")],
        arch: Arch::X86_64,
    },
    // CPython 3.14: _PyStackRef frames, 128 KiB buffered reads (gh-117151);
    // and 3.15 (its _Py_DebugOffsets moved every section after the thread state).
    Chroot {
        env: "TRACER_PY314_ROOT",
        suite: "sid",
        package: "python3.14",
        python: "usr/bin/python3.14",
        extra: &[("python3.15", "usr/bin/python3.15")],
        arch: Arch::X86_64,
    },
    // arm64's Debian 12 (CPython 3.11.2) for the arm64 VM of `cargo xtask
    // kernels`, with busybox for its /init.
    Chroot {
        env: "TRACER_ARM64_ROOT",
        suite: "bookworm",
        package: "python3.11",
        python: "usr/bin/python3.11",
        extra: &[("busybox-static", "bin/busybox")],
        arch: Arch::Aarch64,
    },
];

/// What the tests get for one root: its directory, or why there is none.
pub struct Root {
    pub env: &'static str,
    pub result: Result<PathBuf, String>,
}

impl Root {
    /// `(name, value)` environment variables for the test run: `ENV=DIR`,
    /// or `ENV_ERROR=why` (the tests that need the root fail with it).
    pub fn env_var(&self) -> (String, std::ffi::OsString) {
        match &self.result {
            Ok(dir) => (self.env.to_owned(), dir.clone().into_os_string()),
            Err(why) => (format!("{}_ERROR", self.env), why.into()),
        }
    }
}

/// Where the roots live: `$TRACER_CHROOT_CACHE`, else /var/cache/tracer-tests.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TRACER_CHROOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/tracer-tests"))
}

/// The directory of `chroot` in the cache.
pub fn root_dir(chroot: &Chroot) -> PathBuf {
    if chroot.arch == Arch::HOST {
        cache_dir().join(format!("{}-{}", chroot.suite, chroot.package))
    } else {
        cache_dir().join(format!(
            "{}-{}-{}",
            chroot.suite,
            chroot.arch.debian(),
            chroot.package
        ))
    }
}

/// Makes every missing root (once: they are reused while their interpreter
/// is there), the missing ones in parallel (debootstrap mostly waits for the
/// network). A root that cannot be made is reported, not fatal here.
pub fn ensure_chroots() -> Vec<Root> {
    let missing: Vec<&Chroot> = CHROOTS
        .iter()
        .filter(|c| std::env::var_os(c.env).is_none() && !complete(c, &root_dir(c)))
        .collect();
    let prepared = if missing.is_empty() {
        Ok(String::new())
    } else {
        ensure_apt(packages::ROOTS)
            .and_then(|()| {
                // Another architecture's root runs its programs under qemu.
                for chroot in &missing {
                    crate::arch::ensure_binfmt(chroot.arch)?;
                }
                debian_mirror()
            })
            .map_err(|err| format!("{err:#}"))
    };
    let started = std::time::Instant::now();
    let made: Vec<(&str, Result<(), String>)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = missing
            .iter()
            .map(|&chroot| {
                let prepared = prepared.clone();
                scope.spawn(move || {
                    let result = prepared.and_then(|mirror| {
                        make_root(chroot, &root_dir(chroot), &mirror)
                            .map_err(|err| format!("{err:#}"))
                    });
                    (chroot.env, result)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|job| job.join().expect("a debootstrap thread panicked"))
            .collect()
    });
    if !missing.is_empty() {
        eprintln!(
            "made or completed {} of {} roots in {:.0} s",
            made.iter().filter(|(_, r)| r.is_ok()).count(),
            missing.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let mut roots: Vec<Root> = CHROOTS
        .iter()
        .map(|chroot| {
            // A root given by the caller is used as is.
            let dir = root_dir(chroot);
            let failed = made
                .iter()
                .find_map(|(env, result)| (*env == chroot.env).then_some(result.as_ref().err()))
                .flatten();
            let result = if let Some(given) = std::env::var_os(chroot.env) {
                Ok(PathBuf::from(given))
            } else if let Some(why) = failed {
                eprintln!("error: {why} (the tests that need it fail)");
                if dir.join(chroot.python).exists() {
                    // Only an extra package is missing: its tests fail, not all.
                    Ok(dir)
                } else {
                    Err(why.clone())
                }
            } else {
                eprintln!("ok {} root {}", chroot.package, dir.display());
                Ok(dir)
            };
            Root {
                env: chroot.env,
                result,
            }
        })
        .collect();
    let trixie = roots
        .iter()
        .find(|r| r.env == "TRACER_PY313_ROOT")
        .and_then(|r| r.result.clone().ok());
    roots.push(free_threaded(trixie));
    roots.push(gunicorn());
    roots.push(pytest());
    roots.push(uvicorn());
    roots.push(perfetto_bindings());
    roots.push(otlp_bindings());
    roots
}

/// The root of the `CHROOTS` entry read from `env` (`TRACER_PY39_ROOT`...):
/// the one given in that variable, or the cached one, made now if missing.
/// For callers that need a single root (`cargo xtask dist --check`).
pub fn ensure_root(env: &str) -> Result<PathBuf> {
    let chroot = CHROOTS
        .iter()
        .find(|c| c.env == env)
        .with_context(|| format!("no root is read from {env}"))?;
    if let Some(given) = std::env::var_os(env) {
        return Ok(PathBuf::from(given));
    }
    let dir = root_dir(chroot);
    if !complete(chroot, &dir) {
        ensure_apt(packages::ROOTS)?;
        make_root(chroot, &dir, &debian_mirror()?)?;
    }
    // Its apt is run in it (a kernel's download).
    crate::arch::ensure_binfmt(chroot.arch)?;
    eprintln!("ok {} root {}", chroot.package, dir.display());
    Ok(dir)
}

/// Where the free-threaded build is installed, under the cache.
const FREE_THREADED_PREFIX: &str = "python3.13t";

/// CPython 3.13 built with `--disable-gil` (free-threaded, PEP 703), from
/// Debian trixie's source package (fetched with apt inside the trixie root),
/// built on the host once (about 4 minutes on 2 cores) into the cache.
fn free_threaded(trixie: Option<PathBuf>) -> Root {
    const ENV: &str = "TRACER_PY313T";
    if let Some(given) = std::env::var_os(ENV) {
        return Root {
            env: ENV,
            result: Ok(PathBuf::from(given)),
        };
    }
    let prefix = cache_dir().join(FREE_THREADED_PREFIX);
    let python = prefix.join("bin/python3.13t");
    if python.exists() {
        eprintln!("ok free-threaded python {}", python.display());
        return Root {
            env: ENV,
            result: Ok(python),
        };
    }
    let result = trixie
        .ok_or_else(|| anyhow::anyhow!("the trixie root (for the source package) is missing"))
        .and_then(|root| build_free_threaded(&root, &prefix))
        .map(|()| python)
        .map_err(|err| {
            let why = format!("building free-threaded CPython 3.13 failed: {err:#}");
            eprintln!("error: {why} (the tests that need it fail)");
            why
        });
    Root { env: ENV, result }
}

fn build_free_threaded(trixie: &Path, prefix: &Path) -> Result<()> {
    let log = cache_dir().join("python3.13t.log");
    eprintln!(
        "building free-threaded CPython 3.13 into {} (trixie's source, ./configure \
         --disable-gil; about 4 minutes; log {})",
        prefix.display(),
        log.display()
    );
    ensure_apt(packages::ROOTS)?;
    let output = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let logged = |command: &mut Command| -> Result<()> {
        command
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?);
        run(command).with_context(|| format!("see {}", log.display()))
    };
    // The source package, fetched by apt inside the root (deb-src added once).
    let sources = trixie.join("etc/apt/sources.list.d/tracer-deb-src.list");
    if !sources.exists() {
        let mirror = debian_mirror()?;
        fs::write(&sources, format!("deb-src {mirror} trixie main\n"))
            .with_context(|| format!("writing {}", sources.display()))?;
    }
    logged(Command::new("chroot").arg(trixie).args([
        "apt-get",
        "-o",
        "Acquire::Check-Valid-Until=false",
        "update",
        "-q",
    ]))?;
    let download = trixie.join("tmp/python3.13-source");
    fs::create_dir_all(&download)?;
    logged(Command::new("chroot").arg(trixie).args([
        "sh",
        "-c",
        "cd /tmp/python3.13-source && apt-get source --download-only -q python3.13",
    ]))?;
    let tarball = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".orig.tar.xz"))
        .with_context(|| format!("no .orig.tar.xz in {}", download.display()))?;
    let source = cache_dir().join("src/python3.13t");
    let _ = fs::remove_dir_all(&source);
    fs::create_dir_all(&source)?;
    logged(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&source)
            .arg("--strip-components=1"),
    )?;
    logged(
        Command::new("./configure")
            .arg("--disable-gil")
            .arg(format!("--prefix={}", prefix.display()))
            .current_dir(&source),
    )?;
    logged(Command::new("make").arg("-j2").current_dir(&source))?;
    logged(Command::new("make").arg("install").current_dir(&source))?;
    let _ = fs::remove_dir_all(&source);
    if !prefix.join("bin/python3.13t").exists() {
        bail!("make install left no {}/bin/python3.13t", prefix.display());
    }
    Ok(())
}

/// gunicorn from PyPI (the pre-fork server the process-tree tests run).
const GUNICORN_VERSION: &str = "23.0.0";

fn gunicorn() -> Root {
    pip_target(
        "TRACER_GUNICORN",
        &format!("gunicorn-{GUNICORN_VERSION}"),
        &["gunicorn/__init__.py"],
        &[&format!("gunicorn=={GUNICORN_VERSION}"), "packaging"],
    )
}

/// pytest from PyPI, with what it needs on CPython 3.11: a test run imports
/// dozens of modules and rewrites the test modules, whose `<module>` code
/// objects are freed once imported (the sampler must name them anyway).
const PYTEST_VERSION: &str = "9.2.0";

fn pytest() -> Root {
    pip_target(
        "TRACER_PYTEST",
        &format!("pytest-{PYTEST_VERSION}"),
        &["pytest/__init__.py", "pluggy/__init__.py"],
        &[
            &format!("pytest=={PYTEST_VERSION}"),
            "pluggy==1.7.0",
            "iniconfig==2.3.1",
            "packaging==26.3",
            "pygments==2.21.0",
        ],
    )
}

/// uvicorn and starlette from PyPI, with what they need on CPython 3.11
/// (h11, not httptools; asyncio, not uvloop): the asyncio service the
/// event loop tests run.
fn uvicorn() -> Root {
    pip_target(
        "TRACER_UVICORN",
        "uvicorn-0.54.0-starlette-1.10.0",
        &[
            "uvicorn/__init__.py",
            "starlette/__init__.py",
            "anyio/__init__.py",
        ],
        &[
            "uvicorn==0.54.0",
            "starlette==1.10.0",
            "h11==0.16.0",
            "click==8.5.1",
            "anyio==4.16.0",
            "idna==3.20",
            "sniffio==1.3.1",
            "typing_extensions==4.16.0",
        ],
    )
}

/// Perfetto's official Python bindings (`perfetto_trace_pb2`, from the
/// PyPI `perfetto` wheel) and the protobuf runtime they need: the
/// `--perfetto` tests read the trace back with them.
const PERFETTO_VERSION: &str = "0.59.1";
const PROTOBUF_VERSION: &str = "7.36.2";

fn perfetto_bindings() -> Root {
    pip_target(
        "TRACER_PERFETTO_PY",
        &format!("perfetto-{PERFETTO_VERSION}"),
        &[
            "perfetto/protos/perfetto/trace/perfetto_trace_pb2.py",
            "google/protobuf/__init__.py",
        ],
        &[
            &format!("perfetto=={PERFETTO_VERSION}"),
            &format!("protobuf=={PROTOBUF_VERSION}"),
        ],
    )
}

/// OpenTelemetry's official Python bindings of the OTLP protos (PyPI
/// `opentelemetry-proto`, which ships the profiles' `v1development`
/// messages) and the protobuf runtime: the `--otlp` tests' receiver
/// decodes the requests with them.
const OTLP_PROTO_VERSION: &str = "1.45.0";

fn otlp_bindings() -> Root {
    pip_target(
        "TRACER_OTLP_PY",
        &format!("opentelemetry-proto-{OTLP_PROTO_VERSION}"),
        &[
            "opentelemetry/proto/collector/profiles/v1development/profiles_service_pb2.py",
            "google/protobuf/__init__.py",
        ],
        &[
            &format!("opentelemetry-proto=={OTLP_PROTO_VERSION}"),
            &format!("protobuf=={PROTOBUF_VERSION}"),
        ],
    )
}

/// Python packages from PyPI, installed once into the cache directory
/// `name` with pip's `--target` (`$env` names a directory to use instead);
/// there when every one of `files` is.
fn pip_target(env: &'static str, name: &str, files: &[&str], packages: &[&str]) -> Root {
    if let Some(given) = std::env::var_os(env) {
        return Root {
            env,
            result: Ok(PathBuf::from(given)),
        };
    }
    let dir = cache_dir().join(name);
    if files.iter().all(|f| dir.join(f).exists()) {
        eprintln!("ok {name} {}", dir.display());
        return Root {
            env,
            result: Ok(dir),
        };
    }
    eprintln!(
        "installing {} from PyPI into {}",
        packages.join(" "),
        dir.display()
    );
    let mut partial = dir.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = fs::remove_dir_all(&partial);
    let result = run(Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&partial)
        .args(packages))
    .and_then(|()| {
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&partial, &dir).with_context(|| format!("moving it to {}", dir.display()))
    })
    .map(|()| dir)
    .map_err(|err| {
        let why = format!("installing {name} from PyPI failed: {err:#}");
        eprintln!("error: {why} (the tests that need it fail)");
        why
    });
    Root { env, result }
}

/// The interpreter and every extra package are in `root`.
fn complete(chroot: &Chroot, root: &Path) -> bool {
    root.join(chroot.python).exists()
        && chroot
            .extra
            .iter()
            .all(|(_, file)| root.join(file).exists())
}

/// Makes the root with debootstrap, or, when it is there but lacks extra
/// packages (added to `CHROOTS` after it was made), installs those into it.
fn make_root(chroot: &Chroot, root: &Path, mirror: &str) -> Result<()> {
    // Not with_extension: "trixie-python3.13" would become "trixie-python3.log".
    let mut log = root.as_os_str().to_owned();
    log.push(".log");
    let log = PathBuf::from(log);
    if root.join(chroot.python).exists() {
        let packages: Vec<&str> = chroot
            .extra
            .iter()
            .filter(|(_, file)| !root.join(file).exists())
            .map(|(package, _)| *package)
            .collect();
        eprintln!(
            "installing {} into {} (apt-get in the root; log {})",
            packages.join(" "),
            root.display(),
            log.display()
        );
        return apt_in_root(root, &packages, &log);
    }
    eprintln!(
        "installing {} root {} (debootstrap {} from {mirror}, about a minute; log {})",
        chroot.package,
        root.display(),
        chroot.suite,
        log.display()
    );
    let mut partial = root.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let output = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let foreign = chroot.arch != Arch::HOST;
    let mut debootstrap = Command::new("debootstrap");
    if foreign {
        debootstrap.args(["--foreign", &format!("--arch={}", chroot.arch.debian())]);
    }
    debootstrap
        .arg("--variant=minbase")
        .arg(format!("--include={}", chroot.package))
        .arg(chroot.suite)
        .arg(&partial)
        .arg(mirror)
        .stdout(output.try_clone()?)
        .stderr(output);
    run(&mut debootstrap).with_context(|| {
        let tail = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        format!(
            "debootstrap of {} {} failed: the {} end-to-end tests need it (is the Debian mirror \
             {mirror} reachable?); last lines of {}:\n{}",
            chroot.suite,
            chroot.package,
            chroot.package,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    if foreign {
        // The second stage runs the root's own dpkg: arm64 programs, run
        // through binfmt_misc by qemu's user-mode emulator.
        crate::arch::ensure_binfmt(chroot.arch)?;
        let output = fs::OpenOptions::new().append(true).open(&log)?;
        run(Command::new("chroot")
            .arg(&partial)
            .args(["/debootstrap/debootstrap", "--second-stage"])
            .stdout(output.try_clone()?)
            .stderr(output))
        .with_context(|| format!("debootstrap's second stage failed (see {})", log.display()))?;
    }
    if !partial.join(chroot.python).exists() {
        bail!(
            "debootstrap finished but {} has no {}",
            partial.display(),
            chroot.python
        );
    }
    let extra: Vec<&str> = chroot.extra.iter().map(|(package, _)| *package).collect();
    if !extra.is_empty() {
        apt_in_root(&partial, &extra, &log)?;
    }
    let _ = fs::remove_dir_all(root);
    fs::rename(&partial, root).with_context(|| format!("moving the root to {}", root.display()))
}

/// `apt-get install PACKAGES` inside `root` (its own sources, the mirror
/// debootstrap used), output appended to `log`.
fn apt_in_root(root: &Path, packages: &[&str], log: &Path) -> Result<()> {
    let output = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let apt = |args: &[&str]| -> Result<()> {
        let mut apt = Command::new("chroot");
        apt.arg(root)
            .args(["apt-get", "-o", "Acquire::Check-Valid-Until=false"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?);
        run(&mut apt)
    };
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(packages);
    // The root's package lists may be older than the mirror (a root made
    // months ago): refreshed once if the install fails.
    apt(&install)
        .or_else(|_| apt(&["update", "-q"]).and_then(|()| apt(&install)))
        .with_context(|| {
            format!(
                "installing {} into {} failed (see {}; is the Debian mirror reachable?)",
                packages.join(" "),
                root.display(),
                log.display()
            )
        })?;
    for package in packages {
        eprintln!("ok {package} in {}", root.display());
    }
    Ok(())
}

/// The first `URIs:` (deb822) or `deb URL` (one-line) entry of apt's sources.
fn debian_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut extra: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        extra.sort();
        files.extend(extra);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(mirror) = mirror_in(&text) {
            return Ok(mirror);
        }
    }
    bail!("no Debian mirror found in apt's sources (/etc/apt/sources.list, sources.list.d)")
}

/// A Debian archive URL in one sources file (not the security archive).
pub fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.strip_prefix("URIs:")
                .and_then(|rest| rest.split_whitespace().next())
                .or_else(|| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("deb"))
                        .then(|| words.find(|w| w.contains("://")))
                        .flatten()
                })
        })
        .find(|url| url.contains("debian") && !url.contains("security"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_named_after_suite_and_package_and_have_their_own_variable() {
        let mut envs: Vec<&str> = CHROOTS.iter().map(|c| c.env).collect();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(envs.len(), CHROOTS.len());
        for c in CHROOTS {
            assert_eq!(c.python, format!("usr/bin/{}", c.package));
        }
        let ok = Root {
            env: "TRACER_PY39_ROOT",
            result: Ok(PathBuf::from("/var/cache/tracer-tests/bullseye-python3.9")),
        };
        assert_eq!(
            ok.env_var(),
            (
                "TRACER_PY39_ROOT".to_owned(),
                "/var/cache/tracer-tests/bullseye-python3.9".into()
            )
        );
        let failed = Root {
            env: "TRACER_PY39_ROOT",
            result: Err("debootstrap of bullseye python3.9 failed".into()),
        };
        assert_eq!(
            failed.env_var(),
            (
                "TRACER_PY39_ROOT_ERROR".to_owned(),
                "debootstrap of bullseye python3.9 failed".into()
            )
        );
    }

    #[test]
    fn finds_the_mirror_in_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let one_line = "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_in("deb http://security.debian.org/debian-security x main"),
            None
        );
    }
}

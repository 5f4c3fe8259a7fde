//! `cargo xtask dist --check`: each artifact installed the way a user
//! installs it, then run for real:
//!
//! * the static binary: `--version` and a trace of Python 3.9 inside the
//!   Debian bullseye root (glibc 2.31; the root of the end-to-end tests,
//!   seen through an overlay so it is never changed), and a trace of
//!   Python 3.11 on this host;
//! * the wheel: `pip install --no-index` into a new venv, then its `tracer`
//!   on PATH traces Python;
//! * the image: built from `image/` with podman, `--version`, then a trace
//!   of Python 3.11 from inside the container (`--pid=host --privileged`,
//!   the host's /usr given read-only for the interpreter);
//! * the .deb: `dpkg -i` into another overlay of the bullseye root, then
//!   `tracer` from PATH, `man tracer` (man-db with groff's warnings on),
//!   bash and fish completing `tracer --form`, zsh's script parsed, and
//!   `dpkg --purge` removing every file.
//!
//! A trace is checked against what the workload knows it did: 37 one-byte
//! `os.read`s of one file, and CPU time in `burn`. Every check runs, failed
//! ones are named at the end.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{PYTHON, chroots, dist::Artifacts, dist::VERSION, setup};

/// The workload: 37 reads of one byte from the file it is given, then a
/// known function on the CPU for a while (the sampler's row to find).
const WORKLOAD: &str = "\
import os, sys

def burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(37):
    os.read(fd, 1)
os.close(fd)
burn(3_000_000)
";
const READS: u64 = 37;
/// The data file's name, unique enough to find its row among the
/// interpreter's own reads.
const DATA: &str = "tracer-dist-data";

pub fn check(artifacts: &Artifacts) -> Result<()> {
    setup::ensure_apt(crate::packages::DIST_CHECK)?;
    let bullseye = chroots::ensure_root("TRACER_PY39_ROOT")?;
    let work = artifacts.dir.join("check");
    // The last run's mounts went with its mount namespace: plain directories.
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("emptying {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;
    fs::write(work.join("workload.py"), WORKLOAD)?;
    fs::write(work.join(DATA), "x".repeat(100))?;
    // Overlays and the /proc and /sys of the chroots are mounted in
    // a mount namespace of our own: they go away with this process,
    // whatever happens.
    private_mounts()?;

    let checks: [(&str, &dyn Fn() -> Result<()>); 5] = [
        ("static binary in Debian bullseye (glibc 2.31)", &|| {
            static_in_bullseye(artifacts, &bullseye, &work)
        }),
        ("static binary on this host", &|| {
            trace_checked(&artifacts.binary, &work, "host")
        }),
        ("wheel in a new venv", &|| wheel_in_venv(artifacts, &work)),
        ("image with podman", &|| image_with_podman(artifacts, &work)),
        (".deb in Debian bullseye", &|| {
            deb_in_bullseye(artifacts, &bullseye, &work)
        }),
    ];
    let mut checks: Vec<(String, &dyn Fn() -> Result<()>)> = checks
        .into_iter()
        .map(|(name, check)| (name.to_string(), check))
        .collect();
    let packed: Vec<Box<dyn Fn() -> Result<()>>> = artifacts
        .others
        .iter()
        .map(|other| Box::new(move || other_arch_packages(other)) as Box<dyn Fn() -> Result<()>>)
        .collect();
    for (other, check) in artifacts.others.iter().zip(&packed) {
        checks.push((
            format!("{} wheel and .deb", other.arch.debian()),
            check.as_ref(),
        ));
    }
    let archive_check = || -> Result<()> {
        let Some(archive) = &artifacts.image_archive else {
            return Ok(());
        };
        let platforms = crate::dist_image::archive_platforms(archive)?;
        let mut wanted = vec![format!("linux/{}", crate::arch::Arch::HOST.debian())];
        wanted.extend(
            artifacts
                .others
                .iter()
                .map(|o| format!("linux/{}", o.arch.debian())),
        );
        ensure!(
            platforms == wanted,
            "{} lists {platforms:?}, not {wanted:?}",
            archive.display()
        );
        Ok(())
    };
    if artifacts.image_archive.is_some() {
        checks.push(("multi-arch image archive".to_string(), &archive_check));
    }
    let mut failed = Vec::new();
    for (name, check) in &checks {
        eprintln!("check {name} ...");
        match check() {
            Ok(()) => eprintln!("check {name} ... ok"),
            Err(err) => {
                eprintln!("check {name} ... FAILED: {err:#}");
                failed.push(name.as_str());
            }
        }
    }
    eprintln!(
        "dist checks: {} passed, {} failed",
        checks.len() - failed.len(),
        failed.len()
    );
    // The files stay until the next run removes them, before it mounts
    // anything: removed now, the walk would go into the mounted roots.
    if !failed.is_empty() {
        bail!(
            "failed: {} (files in {})",
            failed.join("; "),
            work.display()
        );
    }
    Ok(())
}

/// Moves this process into a mount namespace of its own, private.
fn private_mounts() -> Result<()> {
    // SAFETY: unshare and mount with constant arguments; xtask has no
    // other thread here (CLONE_NEWNS needs a single-threaded caller).
    unsafe {
        ensure!(
            libc::unshare(libc::CLONE_NEWNS) == 0,
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        );
        ensure!(
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0,
            "making / private: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `root` seen through an overlay at `DIR/root` (writes go to `DIR/upper`),
/// with a /proc and the host's /sys when `live` (to trace in it).
fn overlay(root: &Path, dir: &Path, live: bool) -> Result<PathBuf> {
    let (upper, workdir, merged) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    for d in [&upper, &workdir, &merged] {
        fs::create_dir_all(d)?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        root.display(),
        upper.display(),
        workdir.display()
    );
    checked(
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&merged),
    )?;
    if live {
        checked(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(merged.join("proc")),
        )?;
        // sysfs alone (BTF, the CPU list), not --rbind: nothing below it
        // (cgroups, bpffs pins) is in reach of the root; the root's own
        // /dev (debootstrap's nodes) is enough.
        checked(
            Command::new("mount")
                .args(["--bind", "/sys"])
                .arg(merged.join("sys")),
        )?;
    }
    Ok(merged)
}

fn static_in_bullseye(artifacts: &Artifacts, bullseye: &Path, work: &Path) -> Result<()> {
    let root = overlay(bullseye, &work.join("bullseye-static"), true)?;
    let inside = Path::new("/usr/local/bin/tracer");
    fs::copy(&artifacts.binary, root.join(inside.strip_prefix("/")?))?;
    let version = stdout_of(
        Command::new("chroot")
            .arg(&root)
            .arg(inside)
            .arg("--version"),
    )?;
    ensure!(
        version == format!("tracer {VERSION}\n"),
        "--version printed {version:?}"
    );
    // The workload and its data inside the root, the report written there.
    let tmp = root.join("tmp");
    fs::copy(work.join("workload.py"), tmp.join("workload.py"))?;
    fs::copy(work.join(DATA), tmp.join(DATA))?;
    stdout_of(
        Command::new("chroot")
            .arg(&root)
            .arg(inside)
            .args(TRACE_ARGS)
            .args(["-o", "/tmp/report.json", "--"])
            .args(["/usr/bin/python3.9", "/tmp/workload.py"])
            .arg(format!("/tmp/{DATA}")),
    )?;
    check_report(&tmp.join("report.json"))
}

const TRACE_ARGS: [&str; 5] = ["--quiet", "--format", "json", "--rate", "999"];

/// Traces the workload under `/usr/bin/python3.11` with `tracer` and checks
/// the report (kept as `work/report-NAME.json`).
fn trace_checked(tracer: &Path, work: &Path, name: &str) -> Result<()> {
    let report = work.join(format!("report-{name}.json"));
    stdout_of(trace_workload(&mut Command::new(tracer), &report, work))?;
    check_report(&report)
}

/// The tracer's arguments (after the tracer itself) that trace the
/// workload in `work` under `/usr/bin/python3.11` into `report`.
fn trace_workload<'a>(command: &'a mut Command, report: &Path, work: &Path) -> &'a mut Command {
    command
        .args(TRACE_ARGS)
        .arg("-o")
        .arg(report)
        .arg("--")
        .arg(PYTHON)
        .arg(work.join("workload.py"))
        .arg(work.join(DATA))
}

/// The data file's row has the workload's 37 one-byte reads, and the
/// sampler saw `burn`.
fn check_report(path: &Path) -> Result<()> {
    let report: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let rows = report["reads"]
        .as_array()
        .context("no `reads` in the report")?;
    let row = rows
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(DATA)))
        .with_context(|| format!("no row for {DATA} in `reads` ({})", path.display()))?;
    ensure!(
        row["syscalls"] == READS && row["bytes"] == READS,
        "{DATA}: {} syscalls and {} bytes, the workload made {READS} one-byte reads",
        row["syscalls"],
        row["bytes"]
    );
    let burn = report["python"]["hotspots"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["function"] == "burn")
        .with_context(|| format!("no `burn` in python.hotspots ({})", path.display()))?;
    ensure!(
        burn["self_samples"].as_u64() > Some(0),
        "`burn` has no samples"
    );
    Ok(())
}

fn wheel_in_venv(artifacts: &Artifacts, work: &Path) -> Result<()> {
    // Its CRCs and structure, by Python's own zip reader.
    stdout_of(
        Command::new(PYTHON)
            .args(["-m", "zipfile", "-t"])
            .arg(&artifacts.wheel),
    )?;
    let venv = work.join("venv");
    stdout_of(Command::new(PYTHON).args(["-m", "venv"]).arg(&venv))?;
    stdout_of(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--no-index", "--disable-pip-version-check"])
            .arg(&artifacts.wheel),
    )?;
    let show = stdout_of(Command::new(venv.join("bin/pip")).args([
        "show",
        "--disable-pip-version-check",
        crate::wheel::NAME,
    ]))?;
    ensure!(
        show.contains(&format!("Name: {}\n", crate::wheel::NAME))
            && show.contains(&format!("Version: {VERSION}\n")),
        "pip show: {show}"
    );
    // The venv activated, `tracer` is the one pip installed, byte for byte.
    let found = stdout_of(Command::new("sh").arg("-c").arg(format!(
        ". '{}/bin/activate' && command -v tracer && tracer --version",
        venv.display()
    )))?;
    let installed = venv.join("bin/tracer");
    ensure!(
        found == format!("{}\ntracer {VERSION}\n", installed.display()),
        "with the venv active, `command -v tracer; tracer --version` gave {found:?}"
    );
    ensure!(
        fs::read(&installed)? == fs::read(&artifacts.binary)?,
        "{} is not the static binary",
        installed.display()
    );
    ensure!(
        venv.join("share/man/man1/tracer.1").is_file(),
        "no man page in the venv's share/man"
    );
    trace_checked(&installed, work, "wheel")
}

/// Builds the image, runs `--version` in it and traces the workload from
/// inside it. runc, with explicit limits: this kind of VM's hybrid cgroups
/// are refused by crun, and its container init cannot raise rlimits.
fn image_with_podman(artifacts: &Artifacts, work: &Path) -> Result<()> {
    let tag = format!("localhost/tracer-dist-check:{VERSION}");
    stdout_of(
        Command::new("podman")
            .args(["build", "--quiet", "-t", &tag])
            .arg(&artifacts.image),
    )?;
    let run = || {
        let mut cmd = Command::new("podman");
        cmd.args(["--runtime", "runc", "run", "--rm"]).args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        cmd
    };
    let result = (|| {
        let version = stdout_of(run().arg(&tag).arg("--version"))?;
        ensure!(
            version == format!("tracer {VERSION}\n"),
            "--version in the image printed {version:?}"
        );
        let work_mount = format!("{0}:{0}", work.display());
        let report = work.join("report-image.json");
        stdout_of(trace_workload(
            run()
                .args(["--privileged", "--pid=host"])
                .args([
                    "-v",
                    "/usr:/usr:ro",
                    "-v",
                    "/lib:/lib:ro",
                    "-v",
                    "/lib64:/lib64:ro",
                ])
                .args(["-v", &work_mount])
                .arg(&tag),
            &report,
            work,
        ))?;
        check_report(&report)
    })();
    let _ = Command::new("podman").args(["rmi", "-f", &tag]).output();
    result
}

/// Another architecture's wheel and .deb hold its binary (which said its
/// version under qemu when it was built) under its platform tags and
/// Debian architecture; the wheel as pip reads it (`pip install
/// --platform` into a directory: the resolver checks the tags).
fn other_arch_packages(other: &crate::dist::ArchArtifacts) -> Result<()> {
    let binary = fs::read(&other.binary)?;
    let deb = stdout_of(
        Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&other.deb)
            .arg("Architecture"),
    )?;
    ensure!(
        deb.trim() == other.arch.debian(),
        "the .deb says Architecture: {deb}"
    );
    let tree = other.deb.with_extension("check");
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    checked(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&other.deb)
            .arg(&tree),
    )?;
    ensure!(
        fs::read(tree.join("usr/bin/tracer"))? == binary,
        "the .deb's /usr/bin/tracer is not {}",
        other.binary.display()
    );
    let target = other.wheel.with_extension("installed");
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    let platform = other
        .arch
        .wheel_platform()
        .split('.')
        .next()
        .unwrap_or_default();
    checked(
        Command::new(crate::packages::PYTHON)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--only-binary=:all:",
            ])
            .args(["--platform", platform, "--target"])
            .arg(&target)
            .arg(&other.wheel),
    )?;
    ensure!(
        fs::read(target.join("bin/tracer"))? == binary,
        "pip installed no {} binary from {}",
        other.arch.debian(),
        other.wheel.display()
    );
    Ok(())
}

/// Every file the package installs.
const DEB_FILES: [&str; 6] = [
    "/usr/bin/tracer",
    "/usr/share/man/man1/tracer.1.gz",
    "/usr/share/bash-completion/completions/tracer",
    "/usr/share/zsh/vendor-completions/_tracer",
    "/usr/share/fish/vendor_completions.d/tracer.fish",
    "/usr/share/doc/tracer/copyright",
];

fn deb_in_bullseye(artifacts: &Artifacts, bullseye: &Path, work: &Path) -> Result<()> {
    let root = overlay(bullseye, &work.join("bullseye-deb"), false)?;
    fs::copy(&artifacts.deb, root.join("tmp/tracer.deb"))?;
    let in_root = |script: &str| -> Result<String> {
        stdout_of(
            Command::new("chroot")
                .arg(&root)
                .args(["/bin/bash", "-ec", script])
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        )
    };
    in_root("dpkg -i /tmp/tracer.deb")?;
    let found = in_root("command -v tracer && tracer --version")?;
    ensure!(
        found == format!("/usr/bin/tracer\ntracer {VERSION}\n"),
        "after dpkg -i, `command -v tracer; tracer --version` gave {found:?}"
    );
    let listed = in_root("dpkg -L tracer")?;
    for file in DEB_FILES {
        ensure!(
            listed.lines().any(|l| l == file),
            "dpkg -L tracer has no {file}:\n{listed}"
        );
    }
    check_man(&root)?;
    // bash, in the root: the completion function clap wrote, asked for
    // `tracer --form` then `tracer --format `.
    let words = in_root(
        ". /usr/share/bash-completion/completions/tracer
         complete -p tracer
         COMP_WORDS=(tracer --form); COMP_CWORD=1; _tracer tracer --form tracer
         echo \"${COMPREPLY[*]}\"
         COMP_WORDS=(tracer --format ''); COMP_CWORD=2; _tracer tracer '' --format
         echo \"${COMPREPLY[*]}\"",
    )?;
    let lines: Vec<&str> = words.lines().collect();
    ensure!(
        matches!(&lines[..], [spec, "--format", "text json"]
            if spec.contains(" -F _tracer ") && spec.ends_with(" tracer")),
        "bash completion of `tracer --form` / `tracer --format `: {words:?}"
    );
    // fish, on the host (bullseye has no fish): the file dpkg installed.
    let fish_file = root.join("usr/share/fish/vendor_completions.d/tracer.fish");
    let fish = stdout_of(
        Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(format!(
                "source '{}'; complete -C 'tracer --form'",
                fish_file.display()
            )),
    )?;
    ensure!(
        fish.starts_with("--format\t"),
        "fish completion of `tracer --form`: {fish:?}"
    );
    // zsh: parsed (zsh -n), and named for compinit's autoload.
    let zsh_file = root.join("usr/share/zsh/vendor-completions/_tracer");
    stdout_of(Command::new("zsh").arg("-n").arg(&zsh_file))?;
    let zsh = fs::read_to_string(&zsh_file)?;
    ensure!(
        zsh.starts_with("#compdef tracer\n"),
        "{} does not start with `#compdef tracer`",
        zsh_file.display()
    );
    in_root("dpkg --purge tracer")?;
    for file in DEB_FILES {
        ensure!(
            !root.join(&file[1..]).exists(),
            "{file} is still there after dpkg --purge"
        );
    }
    Ok(())
}

/// `man tracer` over the root's man pages (man-db on the host: the bullseye
/// root is minbase, without man), groff's warnings on: the page renders,
/// without a warning, with its name line, options and examples.
fn check_man(root: &Path) -> Result<()> {
    let out = Command::new("man")
        .arg("--warnings")
        .arg("-M")
        .arg(root.join("usr/share/man"))
        .arg("tracer")
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .context("running man")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let warnings = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && warnings.trim().is_empty(),
        "man tracer: {} {warnings}",
        out.status
    );
    for wanted in [
        "tracer - eBPF tracer for Python processes",
        "--pid",
        "--generate",
        "sudo tracer --pid 1234",
    ] {
        ensure!(
            text.contains(wanted),
            "man tracer has no {wanted:?}:\n{text}"
        );
    }
    Ok(())
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn stdout_of(cmd: &mut Command) -> Result<String> {
    let out = checked(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn checked(cmd: &mut Command) -> Result<Output> {
    let shown = crate::util::display(cmd);
    eprintln!("$ {shown}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

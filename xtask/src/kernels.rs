//! `cargo xtask kernels`: the tracer run on Debian's other kernels, each
//! booted in qemu as aya's CI boots its test kernels (`xtask/src/run.rs`
//! there): the kernel's vmlinuz (`kernel_images`), an initramfs holding
//! the bullseye root (python3.9), trixie's python3.13 under /roots/trixie,
//! the static tracer, tests/kernels/checks.py with the workloads it runs,
//! and an /init that runs the checks, prints each one's output between
//! markers on the serial console and powers off. The console is logged
//! per kernel; what the checks printed is then read back from it and
//! summed up.
//!
//! KVM does not work on this kind of VM, so qemu emulates (TCG): about
//! a minute a kernel, booted one after the other.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::{
    arch::Arch,
    chroots, dist,
    kernel_images::{self, KERNELS, Kernel},
    kernels_arm64, packages, setup,
    util::{self, shell_quote},
    vm_image::{
        BUSYBOX_IN_VM, TCG, TRACER_IN_VM, VCPUS, WORKLOADS, in_new_dir, pack_cpio, pack_cpio_as,
        write_executable,
    },
    vm_run::{
        self, MARK, VmRun, failures, parse_console, pass_counts, print_kernel, seconds_table,
        summary_table,
    },
};

#[derive(Args, Default)]
pub struct KernelsArgs {
    /// Boot only this kernel (repeatable): bullseye (5.10), bookworm
    /// (6.1), trixie (6.12), sid (the newest), arm64 (bookworm's arm64
    /// 6.1, with the arm64 tracer), bullseye-arm64 (5.10) or trixie-arm64
    /// (6.12; these two run the scenarios whose code differs by kernel).
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
    /// The static tracer to put in the VM, instead of building it.
    #[arg(long, value_name = "PATH")]
    pub tracer: Option<PathBuf>,
    /// Run only this scenario (repeatable): reads, contended, writes,
    /// zombies, signals, hotspots-3.9, hotspots-3.13, tree, all, serve,
    /// oom, growth, collapse or features; on arm64 hotspots-3.11 and native in place of
    /// the hotspots (a scenario the kernel's architecture has not is not run
    /// there).
    #[arg(long = "check", value_name = "SCENARIO", value_parser = clap::builder::PossibleValuesParser::new(all_scenarios()))]
    pub scenarios: Vec<String>,
    /// Boot each kernel this many times and print how many runs each
    /// scenario passed (a scenario that fails on some runs is a bug to find).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Also run `tracer TRACER-ARGS...` in each VM (a check of its own;
    /// with `RUST_LOG` as set here).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "TRACER-ARGS"
    )]
    pub tracer_args: Vec<String>,
}

/// How long a VM may run before it is killed (boot, checks and all; the
/// slowest, the arm64 VM with every instruction translated and a load
/// beside its checks, powered off after 12-15 minutes on a busy machine:
/// room for a busier one).
const TIMEOUT: Duration = Duration::from_secs(1800);

/// VMs booted at once: each is one host thread (`TCG`), and this kind
/// of machine has two cores.
const PARALLEL_VMS: usize = 2;

/// How long one check may run (the next one runs after it is killed;
/// `timeout` then exits 143).
const CHECK_TIMEOUT: Duration = Duration::from_secs(240);

/// Where trixie's root (python3.13) is inside the VM.
const TRIXIE_IN_VM: &str = "roots/trixie";

/// The end-to-end scenarios tests/kernels/checks.py checks, one VM check
/// each: exact reads, exact writes (a blocked pipe, a synced log, sends),
/// a zombie and its reaper, signals to a Python handler,
/// hotspots on two CPythons, native frames (a C library's under the Python
/// function that called it; said missing before 5.17), a process tree,
/// `--all`, `--serve`, memory (a worker the OOM killer kills in a memory
/// cgroup; memory growth by line; a huge page khugepaged collapses, each
/// a scenario of its own, so that khugepaged's wait on a slow emulated CPU
/// does not eat the other two's time), and what the report says the
/// kernel lacks.
const SCENARIOS: &[&str] = &[
    "reads",
    "contended",
    "threads",
    "writes",
    "zombies",
    "signals",
    "hotspots-3.9",
    "hotspots-3.13",
    "native",
    "tree",
    "all",
    "serve",
    "oom",
    "growth",
    "collapse",
    "features",
];

/// The scenarios on arm64, whose root has one CPython (Debian 12's 3.11):
/// hotspots on it, and native frames (a C library's under the Python
/// function that called it).
const ARM64_SCENARIOS: &[&str] = &[
    "reads",
    "contended",
    "threads",
    "writes",
    "zombies",
    "signals",
    "hotspots-3.11",
    "native",
    "tree",
    "all",
    "serve",
    "oom",
    "growth",
    "collapse",
    "features",
];

/// Every scenario of one architecture or the other, each once.
fn all_scenarios() -> Vec<&'static str> {
    let mut all = SCENARIOS.to_vec();
    all.extend(ARM64_SCENARIOS.iter().filter(|s| !SCENARIOS.contains(s)));
    all
}

/// The interpreter checks.py runs on, and runs the workloads with.
fn checks_python(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "python3.9",
        Arch::Aarch64 => "python3.11",
    }
}

/// One check /init runs: a name, and a shell command (its output and
/// exit status are reported).
struct Check {
    name: String,
    script: String,
}

/// The checks, in order: the tracer starts; each scenario of
/// tests/kernels/checks.py (`scenarios`; empty: all); then `tracer
/// TRACER-ARGS` if given.
fn checks(
    arch: Arch,
    scenarios: &[String],
    tracer_args: &[String],
    rust_log: Option<&str>,
) -> Vec<Check> {
    let mut checks = vec![Check {
        name: "version".into(),
        script: "tracer --version".into(),
    }];
    let python = checks_python(arch);
    let all = if arch == Arch::X86_64 {
        SCENARIOS
    } else {
        ARM64_SCENARIOS
    };
    let named = |scenario: &&&str| scenarios.iter().any(|s| s == **scenario);
    let chosen = all
        .iter()
        .filter(|scenario| scenarios.is_empty() || named(scenario));
    checks.extend(chosen.map(|scenario| Check {
        name: scenario.to_string(),
        script: format!("CHECKS_PYTHON={python} {python} /checks/checks.py {scenario}"),
    }));
    if !tracer_args.is_empty() {
        let words: Vec<String> = tracer_args.iter().map(|a| shell_quote(a)).collect();
        checks.push(Check {
            name: "args".into(),
            // `RUST_LOG` passes on: the tracer's own account of its start.
            script: match rust_log {
                Some(log) => format!("RUST_LOG={} tracer {}", shell_quote(log), words.join(" ")),
                None => format!("tracer {}", words.join(" ")),
            },
        });
    }
    checks
}

pub fn kernels(args: &KernelsArgs) -> Result<()> {
    util::require_root("kernels", "sudo -E cargo xtask kernels")?;
    let _ = fs::remove_file(vm_run::summary_path());
    let chosen = chosen_kernels(&args.kernels)?;
    setup::ensure_apt(packages::KERNELS)?;
    let out_dir = util::target_dir().join("kernels");
    fs::create_dir_all(&out_dir)?;
    // One tracer and initramfs per architecture, made before its first VM.
    let mut initrds: Vec<(Arch, PathBuf)> = Vec::new();
    let mut initrd_for = |arch: Arch| -> Result<PathBuf> {
        if let Some((_, initrd)) = initrds.iter().find(|(a, _)| *a == arch) {
            return Ok(initrd.clone());
        }
        let tracer = match &args.tracer {
            Some(path) if arch == Arch::HOST => path.clone(),
            _ => {
                setup::setup()?;
                if arch != Arch::HOST {
                    setup::ensure_apt(packages::CROSS)?;
                }
                dist::build_static(arch)?
            }
        };
        dist::ensure_static(&tracer, arch)?;
        let checks = checks(
            arch,
            &args.scenarios,
            &args.tracer_args,
            std::env::var("RUST_LOG").ok().as_deref(),
        );
        let initrd = match arch {
            Arch::X86_64 => initramfs(&tracer, &checks, &out_dir)?,
            Arch::Aarch64 => kernels_arm64::initramfs(&tracer, &init_script(&checks), &out_dir)?,
        };
        initrds.push((arch, initrd.clone()));
        Ok(initrd)
    };
    // Each kernel's image and initramfs, made one after the other; then
    // the VMs, `PARALLEL_VMS` at a time (each is one host thread).
    let prepared: Vec<(&Kernel, Prepared)> = chosen
        .iter()
        .map(|&kernel| {
            let ready = initrd_for(kernel.arch).and_then(|initrd| {
                kernel_images::ensure_image(kernel)
                    .with_context(|| format!("the {} kernel could not be fetched", kernel.name))
                    .map(|image| (image, initrd))
            });
            (kernel, ready.map_err(|err| format!("{err:#}")))
        })
        .collect();
    let repeat = args.repeat.max(1);
    // The slowest VM first (arm64's, every instruction translated), so
    // that the others run beside it rather than after it.
    let mut jobs: Vec<(u32, &(&Kernel, Prepared))> = (1..=repeat)
        .flat_map(|round| prepared.iter().map(move |job| (round, job)))
        .collect();
    jobs.sort_by_key(|&(round, (kernel, _))| (round, kernel.arch == Arch::HOST));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<Option<Result<VmRun, String>>>> =
        std::sync::Mutex::new(jobs.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_VMS.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(round, (kernel, ready))) = jobs.get(i) else {
                        break;
                    };
                    let result = ready.clone().and_then(|(image, initrd)| {
                        let expected = expected_checks(kernel, &args.scenarios, &args.tracer_args);
                        let only = kernel.scenarios.map(|_| expected.join(","));
                        boot(kernel, &image, &initrd, &out_dir, round, only.as_deref())
                            .map(|run| VmRun { expected, ..run })
                            .map_err(|err| format!("{err:#}"))
                    });
                    let mut done = done.lock().expect("no VM thread panics");
                    print_kernel(kernel.name, &result);
                    done[i] = Some(result);
                }
            });
        }
    });
    let results: Vec<(&str, Result<VmRun, String>)> = jobs
        .iter()
        .zip(done.into_inner().expect("no VM thread panics"))
        .map(|(&(_, (kernel, _)), result)| (kernel.name, result.expect("every VM ran")))
        .collect();
    let mut summary = summary_table(&results);
    if repeat > 1 {
        summary.push_str(&pass_counts(&results));
    }
    summary.push_str(&seconds_table(&results));
    print!("{summary}");
    summary.push_str(&failures(&results));
    fs::write(vm_run::summary_path(), summary)?;
    let mut failed: Vec<&str> = Vec::new();
    for (name, result) in &results {
        if !result.as_ref().is_ok_and(VmRun::passed) && !failed.contains(name) {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("the checks failed on {}", failed.join(", "));
    }
    Ok(())
}

/// A kernel's image and initramfs, ready to boot (or why not).
type Prepared = Result<(kernel_images::Image, PathBuf), String>;

/// The checks `kernel`'s VM must report, each ending with status 0: a
/// check missing from its console (the VM died before it, or its markers
/// were garbled) fails the run. Those of its architecture's initramfs,
/// but only its own scenarios when it has a list (`Kernel::scenarios`).
fn expected_checks(kernel: &Kernel, scenarios: &[String], tracer_args: &[String]) -> Vec<String> {
    let its_own = |name: &str| {
        kernel
            .scenarios
            .is_none_or(|only| only.contains(&name) || !all_scenarios().contains(&name))
    };
    checks(kernel.arch, scenarios, tracer_args, None)
        .into_iter()
        .map(|check| check.name)
        .filter(|name| its_own(name))
        .collect()
}

/// The kernels `--kernel` names (all of them when none is named).
fn chosen_kernels(names: &[String]) -> Result<Vec<&'static Kernel>> {
    if names.is_empty() {
        return Ok(KERNELS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            KERNELS.iter().find(|k| k.name == name).with_context(|| {
                let known: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
                format!("no kernel {name}: choose among {}", known.join(", "))
            })
        })
        .collect()
}

/// The initramfs: the cached base (the bullseye root and busybox) with an
/// archive of the tracer and /init appended (the kernel unpacks
/// concatenated gzip'd cpio archives in order), so a re-run only packs
/// the part that changes.
fn initramfs(tracer: &Path, checks: &[Check], out_dir: &Path) -> Result<PathBuf> {
    let base = base_initramfs()?;
    let trixie = trixie_initramfs()?;
    let staging = out_dir.join("overlay");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(staging.join("usr/local/bin"))?;
    fs::copy(tracer, staging.join(TRACER_IN_VM.trim_start_matches('/')))
        .with_context(|| format!("copying {}", tracer.display()))?;
    write_executable(&staging.join("init"), &init_script(checks))?;
    let tests = util::repo_root().join("tests");
    fs::copy(
        tests.join("kernels/checks.py"),
        in_new_dir(staging.join("checks/checks.py"))?,
    )?;
    for dir in [
        "checks/workloads",
        &format!("{TRIXIE_IN_VM}/checks/workloads"),
    ] {
        for workload in WORKLOADS {
            let from = tests.join("workloads").join(workload);
            let name = Path::new(workload).file_name().expect("a file name");
            fs::copy(&from, in_new_dir(staging.join(dir).join(name))?)
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    let overlay = out_dir.join("overlay.cpio.gz");
    pack_cpio(&staging, &overlay, &[])?;
    let initrd = out_dir.join("initrd.cpio.gz");
    let mut out = fs::File::create(&initrd)?;
    // The overlay makes /roots/trixie before trixie's part fills it.
    for part in [&base, &overlay, &trixie] {
        std::io::copy(&mut fs::File::open(part)?, &mut out)
            .with_context(|| format!("appending {}", part.display()))?;
    }
    Ok(initrd)
}

/// The bullseye root (python3.9) and busybox as one gzip'd cpio archive,
/// made once (about 250 MB of files; delete it to make it again).
fn base_initramfs() -> Result<PathBuf> {
    let base = kernel_images::cache_dir().join("base-bullseye.cpio.gz");
    if base.is_file() {
        eprintln!("ok base initramfs {}", base.display());
        return Ok(base);
    }
    let root = chroots::ensure_root("TRACER_PY39_ROOT")?;
    let busybox = root.join(BUSYBOX_IN_VM.trim_start_matches('/'));
    fs::create_dir_all(busybox.parent().expect("a path in /usr/local/bin"))?;
    fs::copy("/bin/busybox", &busybox).context("copying busybox-static's /bin/busybox")?;
    eprintln!("packing {} into {}", root.display(), base.display());
    fs::create_dir_all(kernel_images::cache_dir())?;
    let partial = base.with_extension("partial");
    // What apt keeps (lists, .debs, the kernel download) is not needed in the VM.
    pack_cpio(
        &root,
        &partial,
        &["./tmp/*", "./var/lib/apt/lists/*", "./var/cache/apt/*"],
    )?;
    fs::rename(&partial, &base)?;
    Ok(base)
}

/// Trixie's root (python3.13) as /roots/trixie, one gzip'd cpio archive
/// made once: what python3.13 needs to run, without the documentation,
/// the debug build and apt's files.
fn trixie_initramfs() -> Result<PathBuf> {
    let part = kernel_images::cache_dir().join("roots-trixie.cpio.gz");
    if part.is_file() {
        eprintln!("ok trixie initramfs {}", part.display());
        return Ok(part);
    }
    let root = chroots::ensure_root("TRACER_PY313_ROOT")?;
    eprintln!("packing {} into {}", root.display(), part.display());
    fs::create_dir_all(kernel_images::cache_dir())?;
    let partial = part.with_extension("partial");
    pack_cpio_as(
        &root,
        TRIXIE_IN_VM,
        &partial,
        &[
            "./tmp/*",
            "./var/*",
            "./usr/share/doc/*",
            "./usr/share/locale/*",
            "./usr/share/man/*",
            "./usr/lib/debug/*",
            "./usr/bin/python3.13d",
            "./usr/bin/python3.13-dbg",
            "./usr/lib/python3.13/test/*",
        ],
    )?;
    fs::rename(&partial, &part)?;
    Ok(part)
}

/// The VM's /init: mounts what the tracer reads (proc, sysfs with
/// /sys/kernel/btf, tracefs, the bpf fs, cgroup2), runs each check between
/// markers, powers off.
fn init_script(checks: &[Check]) -> String {
    let mut script = format!(
        "#!{BUSYBOX_IN_VM} sh\n\
         export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         bb={BUSYBOX_IN_VM}\n\
         $bb mount -t proc proc /proc\n\
         $bb mount -t sysfs sysfs /sys\n\
         $bb mount -t devtmpfs devtmpfs /dev\n\
         $bb mount -t tracefs tracefs /sys/kernel/tracing\n\
         $bb mount -t debugfs debugfs /sys/kernel/debug\n\
         $bb mount -t bpf bpf /sys/fs/bpf\n\
         $bb mount -t cgroup2 cgroup2 /sys/fs/cgroup\n\
         $bb mount -t tmpfs tmpfs /tmp\n\
         $bb ip link set lo up\n\
         echo \"{MARK} uname $(uname -r)\"\n\
         {ONLY}\
         {LOAD}"
    );
    for check in checks {
        let name = &check.name;
        writeln!(
            script,
            "case \"${{only:-,{name},}}\" in *,{name},*)\n\
             read up _ </proc/uptime; echo \"{MARK} begin {name} $up\"\n\
             $bb timeout {} $bb sh -c {} </dev/null 2>&1\n\
             status=$?; read up _ </proc/uptime; echo \"{MARK} end {name} $status $up\";;\n\
             esac",
            CHECK_TIMEOUT.as_secs(),
            shell_quote(&check.script)
        )
        .unwrap();
    }
    writeln!(
        script,
        "echo \"{MARK} done\"\n$bb sync\necho o > /proc/sysrq-trigger\n$bb sleep 30"
    )
    .unwrap();
    script
}

/// The checks a kernel runs of those in the initramfs (shared by the
/// kernels of an architecture), when not all: `tracer.checks=A,B` on its
/// command line (`Kernel::scenarios`).
const ONLY: &str = "only=\n\
     for word in $($bb cat /proc/cmdline); do\n\
     case $word in tracer.checks=*) only=\",${word#tracer.checks=},\";; esac\n\
     done\n";

/// The load beside every check: an untraced process opening and reading
/// a /proc file in a loop (busybox's shell: no fork), so that the syscall
/// hooks run for others too and the checks' tasks are preempted, as on a
/// busy node.
const LOAD: &str =
    "$bb sh -c 'while :; do read -r x </proc/self/stat; done' </dev/null >/dev/null 2>&1 &\n";

/// Boots `image` with `initrd`, the serial console logged to
/// `out_dir/NAME.log`; reads the checks back from it. `only`: the checks
/// it runs, when not every one in `initrd` (comma-separated).
fn boot(
    kernel: &Kernel,
    image: &kernel_images::Image,
    initrd: &Path,
    out_dir: &Path,
    round: u32,
    only: Option<&str>,
) -> Result<VmRun> {
    let log = match round {
        1 => out_dir.join(format!("{}.log", kernel.name)),
        _ => out_dir.join(format!("{}.{round}.log", kernel.name)),
    };
    let console = fs::File::create(&log)?;
    let (mut qemu, console_device) = match kernel.arch {
        Arch::X86_64 => {
            let mut qemu = Command::new("qemu-system-x86_64");
            qemu.args(["-accel", TCG, "-cpu", "max", "-smp", VCPUS, "-m", "3072"]);
            (qemu, "ttyS0")
        }
        Arch::Aarch64 => kernels_arm64::qemu(),
    };
    let mut command_line = format!("console={console_device} panic=-1 rdinit=/init");
    if let Some(only) = only {
        write!(command_line, " tracer.checks={only}")?;
    }
    qemu.args(["-nographic", "-no-reboot", "-kernel"])
        .arg(&image.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &command_line])
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console);
    eprintln!(
        "booting {} (Debian {}'s {}; console in {})",
        kernel.name,
        kernel.debian,
        image.package,
        log.display()
    );
    eprintln!("$ {}", util::display(&qemu));
    let started = Instant::now();
    let mut child = qemu
        .spawn()
        .with_context(|| format!("starting {}", util::display(&qemu)))?;
    let timed_out = loop {
        if child.try_wait()?.is_some() {
            break false;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "{} {} after {:.1} s",
        kernel.name,
        if timed_out { "killed" } else { "powered off" },
        started.elapsed().as_secs_f64()
    );
    let text = fs::read(&log)?;
    let mut run = parse_console(&String::from_utf8_lossy(&text));
    run.log = log;
    run.wall = Some(started.elapsed());
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_runs_every_check_between_markers_and_powers_off() {
        let script = init_script(&checks(
            Arch::X86_64,
            &[],
            &["--pid".into(), "1 2".into()],
            None,
        ));
        assert!(script.starts_with("#!/usr/local/bin/busybox sh\n"));
        for name in ["version", "reads", "hotspots-3.13", "features", "args"] {
            assert!(
                script.contains(&format!("{MARK} begin {name} $up\"")),
                "{name}"
            );
            assert!(
                script.contains(&format!("{MARK} end {name} $status $up\"")),
                "{name}"
            );
        }
        assert!(script.contains(r#"sh -c 'tracer --pid '\''1 2'\''' </dev/null"#));
        assert!(script.contains(
            "sh -c 'CHECKS_PYTHON=python3.9 python3.9 /checks/checks.py hotspots-3.13' </dev/null"
        ));
        // Every check runs unless the command line names those to run.
        assert!(script.contains("tracer.checks=*) only="));
        assert!(script.contains("case \"${only:-,reads,}\" in *,reads,*)\n"));
        assert!(script.contains("ip link set lo up"));
        assert!(script.contains("mount -t cgroup2 cgroup2 /sys/fs/cgroup"));
        assert!(script.ends_with("echo o > /proc/sysrq-trigger\n$bb sleep 30\n"));
    }

    #[test]
    fn only_the_scenarios_asked_for_run_and_the_log_level_passes() {
        let names = |checks: Vec<Check>| checks.into_iter().map(|c| c.name).collect::<Vec<_>>();
        let some = checks(Arch::X86_64, &["tree".into(), "reads".into()], &[], None);
        assert_eq!(names(some), ["version", "reads", "tree"]);
        let logged = checks(
            Arch::X86_64,
            &["serve".into()],
            &["-v".into()],
            Some("debug"),
        );
        assert_eq!(logged[2].script, "RUST_LOG=debug tracer -v");
        // arm64 runs its own scenarios, on its root's python3.11: a scenario
        // only the other has is not run.
        let arm64 = checks(
            Arch::Aarch64,
            &["native".into(), "hotspots-3.9".into()],
            &[],
            None,
        );
        assert_eq!(
            names(checks(Arch::Aarch64, &[], &[], None)).len(),
            1 + ARM64_SCENARIOS.len()
        );
        assert_eq!(arm64.len(), 2);
        assert_eq!(
            arm64[1].script,
            "CHECKS_PYTHON=python3.11 python3.11 /checks/checks.py native"
        );
    }

    #[test]
    fn a_kernel_with_a_list_of_scenarios_expects_only_those() {
        let bullseye_arm64 = chosen_kernels(&["bullseye-arm64".into()]).unwrap()[0];
        let only = bullseye_arm64.scenarios.expect("a list");
        assert!(only.iter().all(|s| ARM64_SCENARIOS.contains(s)), "{only:?}");
        let expected = expected_checks(bullseye_arm64, &[], &["-V".into()]);
        assert_eq!(expected.len(), 2 + only.len(), "{expected:?}");
        assert_eq!(expected[0], "version");
        assert_eq!(expected.last().map(String::as_str), Some("args"));
        assert!(!expected.contains(&"tree".to_owned()));
        // Those asked for, of its own.
        let asked = expected_checks(bullseye_arm64, &["tree".into(), "reads".into()], &[]);
        assert_eq!(asked, ["version", "reads"]);
        // A kernel without a list runs every scenario of its architecture.
        let arm64 = chosen_kernels(&["arm64".into()]).unwrap()[0];
        assert_eq!(
            expected_checks(arm64, &[], &[]).len(),
            1 + ARM64_SCENARIOS.len()
        );
    }

    #[test]
    fn kernels_are_chosen_by_name() {
        assert_eq!(chosen_kernels(&[]).unwrap().len(), KERNELS.len());
        let sid = chosen_kernels(&["sid".into()]).unwrap();
        assert_eq!(sid.len(), 1);
        assert_eq!(sid[0].name, "sid");
        let err = chosen_kernels(&["buster".into()]).unwrap_err();
        assert!(format!("{err}").contains("bullseye, bookworm, trixie, sid, arm64"));
    }
}

//! `cargo xtask <command>`: developer tasks for the `tracer` workspace.
//!
//! * `setup`  install what a fresh Debian machine lacks (`packages.rs` lists it)
//! * `build`  setup, then `cargo build --release -p tracer`
//! * `demo`   build, then trace `demo/service.py` (root)
//! * `test`   build, make the other-CPython roots (debootstrap, cached), then
//!   run the workspace tests, end-to-end ones included (root)
//! * `chroots` make (or reuse) those roots only, and print their variables
//! * `bench`  build, then compare tracer / strace / bpftrace overhead (root)
//! * `fuzz`   run the fuzz targets of the parsers (`fuzz/`, cargo-fuzz)
//! * `dist`   the static binary, the wheel, the .deb, the man page and
//!   completions in `target/dist/`; `--check` installs and runs each (root)
//! * `kernels` boot Debian's 5.10, 6.1, 6.12 and newest kernels in qemu and
//!   run the static tracer in each (root)
//!
//! Status lines ("ok X", "installing X", "$ command") go to stderr, so that
//! stdout carries only what the tracer prints (its report, in `demo`).

mod arch;
mod bench;
mod bench_util;
mod chroots;
mod dist;
mod dist_bench;
mod dist_check;
mod dist_image;
mod floor;
mod fuzz;
mod io_bench;
mod kernel_images;
mod kernels;
mod kernels_arm64;
mod node_bench;
mod packages;
mod proc_bench;
mod scale_bench;
mod serve_bench;
mod setup;
mod test_summary;
#[cfg(test)]
mod tidy;
mod util;
mod vm_image;
mod vm_run;
mod wheel;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::arch::Arch;
use crate::test_summary::TestTotals;
use crate::util::{CommandFailed, repo_root, require_root, run, tool_command};

/// The interpreter the demo and the benchmark run (Debian's static build, which
/// the tracer's Python support is checked against).
pub const PYTHON: &str = "/usr/bin/python3.11";

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer tasks for the tracer workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing to build, demo, test, package and benchmark
    /// the tracer (apt packages, nightly + rust-src, bpf-linker).
    /// Idempotent; fast when everything is present.
    Setup,
    /// Setup, then build the tracer (release).
    Build,
    /// Build, then run `tracer [EXTRA...] -- python3.11 demo/service.py` (needs root).
    Demo {
        /// Extra arguments for the tracer, e.g. `cargo xtask demo -- --format json`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "EXTRA"
        )]
        extra: Vec<String>,
    },
    /// Build, then run every workspace test, end-to-end tests included (needs root).
    Test,
    /// Make the Debian roots of the other CPython versions the end-to-end
    /// tests need (debootstrap, cached; reused when present) and print the
    /// variables to run the tests by hand (needs root).
    Chroots,
    /// Build, then benchmark the tracer against strace and bpftrace (needs root).
    Bench(bench::BenchArgs),
    /// Run the fuzz targets of every parser of untrusted bytes for a while
    /// each (cargo-fuzz, installed once) and sum up what they found.
    Fuzz(fuzz::FuzzArgs),
    /// Build what users install into target/dist/: the tracer linked
    /// statically, a wheel, a .deb, the man page and shell completions.
    Dist(dist::DistArgs),
    /// Boot Debian's cloud kernels (bullseye's 5.10, bookworm's 6.1,
    /// trixie's 6.12, sid's newest) in qemu, each with the static tracer
    /// and python3.9 in its initramfs, and report what the tracer does on
    /// each (needs root; kernels and the base initramfs are cached).
    Kernels(kernels::KernelsArgs),
    /// (For the benchmark) run CMD with empty programs on the tracer's hooks.
    #[command(hide = true)]
    BenchFloor {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// (For the benchmark) run CMD while TRACER traces an idle process:
    /// `bench-beside -- TRACER [ARGS] -- CMD`.
    #[command(hide = true)]
    BenchBeside {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        words: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::setup_all(),
        Command::Build => build(),
        Command::Demo { extra } => demo(&extra),
        Command::Test => test(),
        Command::Chroots => make_chroots(),
        Command::Bench(args) => bench::bench(&args),
        Command::Fuzz(args) => fuzz::fuzz(&args),
        Command::Dist(args) => dist::dist(&args).and_then(|artifacts| {
            if args.check {
                dist_check::check(&artifacts)
            } else {
                Ok(())
            }
        }),
        Command::Kernels(args) => kernels::kernels(&args),
        Command::BenchFloor { command } => floor::floor(&command),
        Command::BenchBeside { words } => floor::beside(&words),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = err
                .downcast_ref::<CommandFailed>()
                .and_then(|failed| failed.code)
                .filter(|code| (1..=255).contains(code))
                .unwrap_or(1);
            ExitCode::from(code as u8)
        }
    }
}

/// Setup, then `cargo build --release -p tracer`.
fn build() -> Result<()> {
    setup::setup()?;
    build_tracer()
}

/// `cargo build --release -p tracer` (its build.rs builds the eBPF side with
/// nightly and bpf-linker, both found through the PATH set by `tool_command`).
pub fn build_tracer() -> Result<()> {
    let mut cmd = tool_command("cargo");
    cmd.args(["build", "--release", "-p", "tracer"]);
    run(&mut cmd)
}

fn demo(extra: &[String]) -> Result<()> {
    require_root("demo", "sudo -E cargo xtask demo")?;
    build()?;
    setup::ensure_apt(packages::DEMO)?;
    let root = repo_root();
    let tracer = util::tracer_binary()?;
    let mut cmd = tool_command(&tracer);
    cmd.args(extra)
        .arg("--")
        .arg(PYTHON)
        .arg(root.join("demo/service.py"));
    run(&mut cmd)
}

fn test() -> Result<()> {
    require_root("test", "sudo -E cargo xtask test")?;
    // CI prints the summary last: never one left from an earlier run, and
    // one saying why when the tests never ran.
    test_summary::remove();
    let result = test_everything();
    if let Err(err) = &result
        && !test_summary::path().exists()
    {
        test_summary::write_stopped(err);
    }
    result
}

fn test_everything() -> Result<()> {
    setup::setup()?;
    setup::ensure_apt(packages::TEST)?;
    // The arm64 unwind-table test reads arm64's glibc.
    setup::ensure_apt(packages::CROSS)?;
    let mut cmd = tool_command("cargo");
    for root in chroots::ensure_chroots() {
        let (name, value) = root.env_var();
        cmd.env(name, value);
    }
    // Release, static, for the host's target: the end-to-end tests run the
    // tracer users install (`cargo xtask dist`'s binary), at its speed (a
    // debug build is several times slower on the paths that race a
    // short-lived process); and the x86-64 VMs below boot that same build,
    // so the tracer and its dependencies are compiled once, not twice.
    // --no-fail-fast: every test binary runs even when one fails, so one
    // failure does not hide the state of the others.
    arch::ensure_rust_target(Arch::HOST)?;
    cmd.args([
        "test",
        "--release",
        "--target",
        Arch::HOST.rust_target(),
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
        "--",
        "--test-threads=1",
    ])
    .envs(Arch::HOST.cargo_env());
    // The arm64 VMs' tracer is cross-built while the host tests run: they
    // leave about one of this kind's two CPUs idle, and the build would
    // otherwise stand alone between them and the VMs (5-6 minutes on a
    // fresh machine). `cargo test` holds no lock once its binaries run;
    // the VMs' own build below then finds it done (or waits for it).
    let (compiled, tests_running) = std::sync::mpsc::channel::<()>();
    let (totals, tests) = std::thread::scope(|scope| {
        scope.spawn(move || {
            if tests_running.recv().is_ok() {
                // What the VMs need from apt (qemu), while at it.
                if let Err(err) = setup::ensure_apt(packages::KERNELS) {
                    eprintln!("note: {err:#} (tried again before the VMs)");
                }
                dist::build_static_in_background(Arch::Aarch64);
            }
        });
        run_counting_tests(&mut cmd, move || {
            let _ = compiled.send(());
        })
    });
    // The end-to-end scenarios again on Debian 11's, 12's and 13's kernels
    // and the newest (sid's), and on Debian 11's, 12's and 13's arm64
    // kernels with the arm64 tracer, each booted in qemu, whichever way the
    // tests went. The arm64 ones boot first (emulated instruction by
    // instruction: ~850 s for 6.1's every scenario, ~400 and ~260 for
    // 5.10's and 6.12's), then the x86-64 ones longest first (5.10 ~400 s,
    // 6.1 ~200, 7.x ~280, 6.12 ~160 under TCG).
    let kernels = kernels::kernels(&kernels::KernelsArgs {
        kernels: TEST_KERNELS.map(String::from).to_vec(),
        ..Default::default()
    });
    test_summary::write(&totals, &tests, &kernels);
    tests.and(kernels)
}

/// The kernels `cargo xtask test` boots: every one `cargo xtask kernels`
/// knows (a test checks it), in the order they start in.
const TEST_KERNELS: [&str; 7] = [
    "arm64",
    "bullseye-arm64",
    "trixie-arm64",
    "bullseye",
    "sid",
    "bookworm",
    "trixie",
];

fn make_chroots() -> Result<()> {
    require_root("chroots", "sudo -E cargo xtask chroots")?;
    let started = std::time::Instant::now();
    let roots = chroots::ensure_chroots();
    eprintln!("roots ready in {:.1} s", started.elapsed().as_secs_f64());
    let mut failed = false;
    for root in &roots {
        let (name, value) = root.env_var();
        failed |= root.result.is_err();
        println!("{name}={}", util::shell_quote(&value.to_string_lossy()));
    }
    if failed {
        anyhow::bail!("some roots could not be made (the tests that need them will fail)");
    }
    Ok(())
}

/// Runs `cargo test`, echoing its output, and ends with the names of the
/// failed tests and one line of totals over every test binary ("tests: N
/// passed, N failed, N ignored"), so the last line says what ran rather than
/// the last (possibly empty) binary.
fn run_counting_tests(
    cmd: &mut std::process::Command,
    on_first_test: impl FnOnce(),
) -> (TestTotals, Result<()>) {
    use std::io::{BufRead, BufReader};
    let shown = util::display(cmd);
    eprintln!("$ {shown}");
    let mut totals = TestTotals::default();
    let mut child = match cmd.stdout(std::process::Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(err) => {
            return (
                totals,
                Err(anyhow::anyhow!("could not start `{shown}`: {err}")),
            );
        }
    };
    let mut on_first_test = Some(on_first_test);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest's "running N tests": cargo has compiled everything.
            if line.starts_with("running ")
                && let Some(call) = on_first_test.take()
            {
                call();
            }
            println!("{line}");
            totals.add_line(&line);
        }
    }
    print!("{}", totals.summary());
    let status = child
        .wait()
        .map_err(anyhow::Error::from)
        .and_then(|status| util::check_status(shown, status));
    (totals, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_command_boots_every_kernel() {
        let mut names: Vec<&str> = kernel_images::KERNELS.iter().map(|k| k.name).collect();
        let mut booted = TEST_KERNELS.to_vec();
        names.sort_unstable();
        booted.sort_unstable();
        assert_eq!(booted, names);
    }

    /// The static build after the tests (`cargo build -p tracer`) reuses
    /// what they compiled only if every crate has the same features in
    /// both; `cargo test --workspace` turns a member's `default` feature
    /// on, a dependency's `default-features = false` leaves it off.
    #[test]
    fn the_tracers_own_libraries_declare_no_default_feature() {
        for library in [
            "tracer-common",
            "tracer-host",
            "tracer-python",
            "tracer-report",
        ] {
            let path = util::repo_root().join(library).join("Cargo.toml");
            let manifest = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let declared = manifest.lines().any(|line| {
                line.split('=')
                    .next()
                    .is_some_and(|key| key.trim() == "default")
            });
            assert!(
                !declared,
                "{library} declares a `default` feature: the tracer would be compiled twice"
            );
        }
    }

    fn demo_extra(args: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(["xtask", "demo"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Demo { extra } => extra,
            _ => panic!("not demo"),
        }
    }

    #[test]
    fn demo_passes_extra_args_through() {
        assert!(demo_extra(&[]).is_empty());
        assert_eq!(
            demo_extra(&["--", "--format", "json"]),
            ["--format", "json"]
        );
        assert_eq!(
            demo_extra(&["--format", "json", "-o", "x"]),
            ["--format", "json", "-o", "x"]
        );
        assert_eq!(
            demo_extra(&["--", "--pid", "1", "--"]),
            ["--pid", "1", "--"]
        );
    }

    #[test]
    fn bench_defaults() {
        let cli = Cli::try_parse_from(["xtask", "bench"]).unwrap();
        assert!(matches!(cli.command, Command::Bench(_)));
        assert!(
            Cli::try_parse_from(["xtask", "bench", "--iterations", "10", "--rss-seconds", "2"])
                .is_ok()
        );
        assert!(Cli::try_parse_from(["xtask", "bench", "--iterations", "x"]).is_err());
    }
}

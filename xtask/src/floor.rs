//! Two helpers the benchmark times commands under (hidden subcommands, so
//! hyperfine can run them as commands):
//!
//! * `bench-floor -- CMD`: CMD with an empty BPF program (`r0 = 0; exit`)
//!   on every raw tracepoint the tracer uses. Its overhead is the kernel's
//!   floor on those hooks, under any tool that uses them, before any work
//!   of its own. Two instructions need no compiler: they are loaded with the
//!   bpf(2) syscall directly.
//! * [`attach_empty_sampler`]: an empty program on a CPU-clock perf event
//!   per online CPU, the node-wide sampler's floor (`--suite node`).
//! * `bench-beside -- TRACER -- CMD`: CMD while TRACER traces an idle
//!   process (`sleep`) that CMD has nothing to do with: what a tracer
//!   running on the machine costs everybody else (the host-wide tax).

use std::{
    ffi::CString,
    io::{BufRead as _, BufReader},
    os::fd::{FromRawFd as _, OwnedFd},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail, ensure};

/// The raw tracepoints the tracer attaches to (`tracer/src/kernel/probes/mod.rs`).
pub const TRACER_HOOKS: &[&str] = &[
    "sys_enter",
    "sys_exit",
    "sched_switch",
    "sched_process_fork",
    "sched_process_exit",
    "sched_process_exec",
    "sched_process_free",
    "signal_generate",
    "signal_deliver",
];

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `perf_event_attr` flags: `disabled` (bit 0) and `freq` (bit 10).
const PERF_DISABLED_FREQ: u64 = 1 | 1 << 10;
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `r0 = 0; exit`.
const EMPTY_PROGRAM: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];

fn bpf(command: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a zero-padded `union bpf_attr` prefix of the size given.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), attr.len()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn load_empty(program_type: u32) -> std::io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&program_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&(EMPTY_PROGRAM.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(EMPTY_PROGRAM.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    bpf(BPF_PROG_LOAD, &mut attr)
}

/// Attaches an empty program to each raw tracepoint in `hooks`; they stay
/// attached while the returned descriptors are open.
pub fn attach_empty(hooks: &[&str]) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for hook in hooks {
        let program = load_empty(BPF_PROG_TYPE_RAW_TRACEPOINT)
            .with_context(|| format!("loading an empty raw tracepoint program for {hook}"))?;
        let name = CString::new(*hook)?;
        let mut attr = [0u8; 128];
        attr[0..8].copy_from_slice(&(name.as_ptr() as u64).to_ne_bytes());
        attr[8..12]
            .copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&program) as u32).to_ne_bytes());
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr)
            .with_context(|| format!("attaching an empty program to the raw tracepoint {hook}"))?;
        fds.extend([program, link]);
    }
    Ok(fds)
}

/// An empty program on a CPU-clock perf event at `rate` Hz on every online
/// CPU, as `tracer --all` samples: the timer interrupt and a BPF program
/// run per tick, whatever the program does. Attached while the descriptors
/// are open.
pub fn attach_empty_sampler(rate: u64) -> Result<Vec<OwnedFd>> {
    let program =
        load_empty(BPF_PROG_TYPE_PERF_EVENT).context("loading an empty perf_event program")?;
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .context("reading /sys/devices/system/cpu/online")?;
    let mut fds = Vec::new();
    for cpu in cpu_list(&online)? {
        // perf_event_attr: type, size, config, sample_freq, ..., flags.
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&PERF_TYPE_SOFTWARE.to_ne_bytes());
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
        attr[8..16].copy_from_slice(&PERF_COUNT_SW_CPU_CLOCK.to_ne_bytes());
        attr[16..24].copy_from_slice(&rate.to_ne_bytes());
        attr[40..48].copy_from_slice(&PERF_DISABLED_FREQ.to_ne_bytes());
        // SAFETY: `attr` is a zero-padded perf_event_attr of the size it states.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                attr.as_ptr(),
                -1,
                cpu,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("perf_event_open (CPU clock, CPU {cpu})"));
        }
        // SAFETY: the kernel returned a new file descriptor we now own.
        let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let raw = std::os::fd::AsRawFd::as_raw_fd(&event);
        let prog = std::os::fd::AsRawFd::as_raw_fd(&program);
        // SAFETY: ioctls on a perf event descriptor we own, with an int argument.
        if unsafe { libc::ioctl(raw, PERF_EVENT_IOC_SET_BPF, prog) } < 0
            || unsafe { libc::ioctl(raw, PERF_EVENT_IOC_ENABLE, 0) } < 0
        {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("attaching the empty program to CPU {cpu}'s event"));
        }
        fds.push(event);
    }
    fds.push(program);
    Ok(fds)
}

/// `0-3,5` -> 0, 1, 2, 3, 5.
fn cpu_list(text: &str) -> Result<Vec<i32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (i32, i32) = (first.parse()?, last.parse()?);
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// Runs `command` to its end; fails unless it exits 0.
fn run_to_end(command: &[String]) -> Result<()> {
    let (program, args) = command.split_first().context("no command given")?;
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("starting {program}"))?;
    ensure!(status.success(), "{program} failed: {status}");
    Ok(())
}

/// `bench-floor -- CMD`.
pub fn floor(command: &[String]) -> Result<()> {
    let attached = attach_empty(TRACER_HOOKS)?;
    let result = run_to_end(command);
    drop(attached);
    result
}

/// `bench-beside -- TRACER [ARGS] -- CMD`: `TRACER ARGS --pid IDLE` runs
/// (and has said it is tracing) for as long as CMD runs.
pub fn beside(words: &[String]) -> Result<()> {
    let split = words
        .iter()
        .position(|w| w == "--")
        .context("usage: bench-beside -- TRACER [ARGS] -- CMD")?;
    let (tracer, command) = (&words[..split], &words[split + 1..]);
    let (tracer_program, tracer_args) = tracer.split_first().context("no tracer given")?;
    let mut idle = Command::new("sleep")
        .arg("infinity")
        .spawn()
        .context("starting sleep")?;
    let mut tracing = Command::new(tracer_program)
        .args(tracer_args)
        .arg("--pid")
        .arg(idle.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {tracer_program}"))?;
    // "tracer: tracing pid N (...)": attached, from then on it counts.
    let mut stderr = BufReader::new(tracing.stderr.take().context("piped")?);
    let mut line = String::new();
    let attached = loop {
        line.clear();
        if stderr.read_line(&mut line)? == 0 {
            break false;
        }
        if line.contains("tracing pid") {
            break true;
        }
    };
    let result = if attached {
        run_to_end(command)
    } else {
        Err(anyhow::anyhow!("{tracer_program} did not start tracing"))
    };
    // SAFETY: plain kill of our own child.
    unsafe { libc::kill(tracing.id() as libc::pid_t, libc::SIGINT) };
    // Drain its stderr so it never blocks on a full pipe while stopping.
    std::io::copy(&mut stderr, &mut std::io::sink())?;
    let status = tracing.wait()?;
    let _ = idle.kill();
    let _ = idle.wait();
    result?;
    if !status.success() {
        bail!("{tracer_program} failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-1\n").unwrap(), vec![0, 1]);
        assert_eq!(cpu_list("0,2-3,7").unwrap(), vec![0, 2, 3, 7]);
        assert!(cpu_list("x").is_err());
    }
}

//! Command-line arguments.

use std::{ffi::OsString, path::PathBuf};

use clap::{CommandFactory as _, Parser, ValueEnum};

use crate::native::NativeMode;

const EXAMPLES: &str = "\
Examples:
  sudo tracer --pid 1234                 trace a running process until Ctrl-C or it exits
  sudo tracer --pid 1234 --duration 30   trace for 30 seconds, then print the report
  sudo tracer -- python3 app.py          launch app.py and trace it from its first instruction
  sudo tracer --format json -o r.json -- python3 app.py
  sudo tracer --pid 1234 --dump          where is it stuck? every thread's Python stack now
  sudo tracer --pid $(cat gunicorn.pid) --duration 30 --flamegraph workers.svg
                                         a pre-fork server: the master and every worker,
                                         each sampled on its own (a root frame per process)
  sudo tracer --flamegraph z.svg -- python3 compress.py
                                         where the C code under each Python line spends its time
                                         (deflate [libz.so.1] under compress_loop); add
                                         --native=all for the interpreter's own frames too
  sudo tracer --memory-flamegraph mem.svg -- python3 etl.py
                                         which Python lines grew its resident memory (sampled
                                         per 256 KiB a thread faults in), and its peak RSS
  sudo tracer --perfetto app.pftrace -- python3 app.py
                                         also a timeline of every read, context switch,
                                         signal, fork and sample: open it at ui.perfetto.dev
  sudo tracer --pid 1234 --serve 127.0.0.1:9464
                                         keep tracing; Prometheus scrapes :9464/metrics, and
  go tool pprof http://127.0.0.1:9464/debug/pprof/profile?seconds=5
                                         pulls the next 5 s of Python samples (Parca, Alloy)
  sudo tracer --pid 1234 --every 60 -o /var/log/tracer
                                         keep tracing; a JSON report per minute, the last 24 kept
  sudo tracer --all --duration 30        every process on this host, each Python one sampled
                                         in its own row, labelled with its container
  sudo tracer --container web --duration 30
                                         one container's processes (podman, docker, containerd,
                                         CRI-O: its id, an id prefix or its name)
  sudo tracer --pid $(pgrep -f uvicorn) --duration 30 --loop-stall 50
                                         an asyncio service: which code froze its event loop
                                         for 50 ms or more, and how often
  sudo tracer --pid 1234 --live          a full-screen view, refreshed every second: hot
                                         functions, I/O per file, scheduling, signals,
                                         processes and zombies, loop stalls (q quits)
  sudo tracer --all --serve :9464        the node agent: Prometheus scrapes /metrics, Parca or
                                         `go tool pprof` pull /debug/pprof/profile?seconds=N
  sudo tracer --all --otlp http://otel-collector:4318
                                         push each 10 s window's Python samples as OTLP
                                         profiles (an OpenTelemetry Collector, Pyroscope)
  sudo tracer --all --serve :9464 --web-config web.yml
                                         the same behind TLS and basic auth (node_exporter's
                                         web config file works as it is)

What it reports:
  reads       per file and socket (TCP, UDP, unix; by its addresses): read and recv
              syscalls, request sizes, bytes, time in the kernel, and the context
              switches that happened inside those reads
  writes      the same for write and send syscalls, with each file's fsyncs; a writer
              blocked on a full pipe or socket (and who reads the other end), a
              write per line, an fsync per record
  scheduling  per thread: voluntary / involuntary context switches, on/off-CPU time
  processes   the target and its children (followed by default): argv, exit code or signal
  zombies     children that exited: how long each stayed a zombie, who reaped it and how
  signals     who sent which signal to whom, the kernel's result, the disposition it was
              delivered with, generation-to-delivery latency, signals never delivered,
              and the Python line that ignored, handled or blocked a signal; a process
              a signal killed: each thread's Python stack as it died
  memory      the OOM killer's kills: the victim, the cgroup limit (or the node) it
              hit, its resident memory at the kill; its SIGKILL said as the killer's
  python      hot functions and lines (self / total share, per thread, per process
              and in total), from CPU-clock sampling of the Python stack of every
              Python process in the tree (CPython 3.8 and later, free-threaded too),
              with the native frames (C extensions, libraries) under and between them
  gil         per thread: samples that held the GIL and time waiting for it (futex waits
              on the interpreter's own GIL, apart from other sleeps), the lines waited
              at and the lines that held it (free-threaded builds: no GIL, said so)
  loops       event loops (asyncio...): iterations, and each stall of --loop-stall MS or
              more with the Python code that ran in it
  requests    the HTTP/1.x requests a traced server answered, from its sockets (no code
              in the process): per route (ids folded: /orders/{id}) count, 5xx, 4xx,
              latency p50/p95/p99/max, bytes; the slowest one by one

Python sampling: a CPU-clock perf_event on each thread of the target
(inherited by the threads and children it starts; other processes and idle
CPUs are never interrupted) runs a BPF program that walks the interrupted
thread's Python frames (at most 128) in the kernel; no ptrace, no stop.
Cost: one ring-buffer record per tick of target CPU time, no wake-up of
the tracer per sample (it drains every 50 ms).

Syscalls (user->kernel mode switches) and scheduler context switches are
counted separately and never mixed.

Output files (-o, --flamegraph, --folded, --speedscope, --pprof, --memory-flamegraph,
--memory-pprof, --perfetto) are opened before
tracing starts, so a bad path fails at once. They are never written through
a symbolic link, nor as a regular file with other hard links, nor as another
user's FIFO or device; a new file gets mode 0644. /dev/stdout and /dev/fd/N
(a shell's >(...)) are used as they are.

Kernels (what one lacks is said in the report):
  5.10         the oldest supported; BTF (/sys/kernel/btf/vmlinux) required
  before 5.12  no fetching atomics: reads are counted per file in a shared
               table rather than per descriptor
  before 5.17  no bpf_loop: Python stacks walked in tail-called pieces (a
               thread found in the kernel among its interpreter's first
               32); no native frames under them (--native)
  6.14+ that preempts kernel code (7.x's lazy preemption, preempt=full, RT):
               a preempted run of the syscall, fork or exit programs makes
               other tasks' events on its CPU skip them: a second copy of
               each, on the perf-event path, takes those (what both miss is
               counted). TRACER_SYSCALL_HOOKS=raw: no copies (the skipped
               runs counted); =perf: perf-event tracepoints alone (none
               skipped, but CPU samples landing inside them are lost)

Exit status:
  0  report written
  1  other error
  2  bad command line
  3  not root (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)
  4  no such process, container or cgroup, a kernel thread, or command not started
  5  kernel lacks BPF, BTF or a tracepoint, or is too old
  6  the kernel rejected a BPF program (verifier log shown)
  7  an output file cannot be opened or written (checked before tracing)
  8  --serve: the address cannot be listened on (in use, not ours), or --web-config is
     malformed, names a missing or expiring certificate, or a weak bcrypt hash
  9  --live: standard output is not a terminal";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// What `--generate` prints: the man page (roff) or a shell's completion
/// script. (No doc comment per value: clap would lay the whole `--help`
/// out in its long form for them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version,
    about = "eBPF tracer for Python processes: what the kernel did to a process, and why",
    after_help = EXAMPLES,
    arg_required_else_help = true
)]
pub struct Args {
    /// Trace this running process (all its threads)
    #[arg(short, long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,

    /// Trace every process on this host: those running now and every
    /// program started later, in any container; each Python process is
    /// sampled in its own row, with its container
    #[arg(long, conflicts_with_all = ["pid", "command", "container", "cgroup"])]
    pub all: bool,

    /// Trace the processes of one container: its runtime's id (or a unique
    /// prefix of it) or its name (podman, docker, containerd, CRI-O); those
    /// that join it later (`podman exec`) too. Stops when its init exits
    #[arg(long, value_name = "ID|NAME", conflicts_with_all = ["pid", "command", "cgroup"])]
    pub container: Option<String>,

    /// Trace the processes of a cgroup and of every cgroup below it (a
    /// path under the cgroup v2 mount, e.g. /system.slice/app.service, or
    /// as /proc/PID/cgroup writes it); processes that start there later too
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pid", "command"])]
    pub cgroup: Option<String>,

    /// With --pid: print where every Python thread of the process (and of
    /// its descendants) is now - state, system call, whole Python stack -
    /// and exit, without tracing (like py-spy dump)
    #[arg(long, requires = "pid", conflicts_with_all = ["all", "container", "cgroup"])]
    pub dump: bool,

    /// Stop after this many seconds (default: when the target exits or on Ctrl-C)
    #[arg(short, long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<f64>,

    /// Report format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to FILE instead of standard output (never through a
    /// symbolic link; see "Output files" below). With --every: the
    /// directory the window reports go to, which must exist
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Python stack sampling frequency, in Hz of each target thread's CPU
    /// time (CPU clock; node-wide: of each CPU). Each tick walks that
    /// thread's Python stack in the kernel. Default: 99, or 19 for an
    /// always-on node-wide agent (--all, --cgroup or --container with
    /// --serve or --every), as the fleet profilers
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub rate: Option<u64>,

    /// Attach the Python stack (top 4 frames) to 1 in N read, write and
    /// sync syscalls, per CPU (0: never). Every voluntary context switch
    /// gets its stack too
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub read_stacks: u32,

    /// Count exact entries into _PyEval_EvalFrameDefault per function with a
    /// uprobe ("entries from C": from 3.11 on, Python-to-Python calls do not
    /// re-enter it). Costs a trap per entry, ~0.6-0.9 us each: a call-heavy
    /// program before 3.11 can slow down several-fold
    #[arg(long)]
    pub count_entries: bool,

    /// Native frames under and between the Python frames of each sample,
    /// unwound in the kernel from tables made of each binary's .eh_frame
    /// (no ptrace, the program never stops), named from the ELF symbols or
    /// as binary+0xADDRESS; the eval loop's frames are replaced by the
    /// Python frames they run. MODE `libraries` (the default; a bare
    /// --native too): C extensions and libraries (zlib, libcrypto...), and
    /// the C library as they call it; the interpreter's own frames are
    /// left out, so a pure-Python function's time stays its own. `all`:
    /// the interpreter's frames too. `off`: Python frames only
    #[arg(
        long,
        value_parser = native_mode(),
        hide_possible_values = true,
        value_name = "MODE",
        default_value = "libraries",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "libraries"
    )]
    pub native: NativeMode,

    /// Memory growth by Python line: sample the Python stack once per KIB
    /// each thread faults in (minor page faults: new anonymous memory, file
    /// pages mapped, copy-on-write copies), and charge each rise of the
    /// process's resident memory to the stack sampled at its end. What is
    /// freed is not taken off. Rounded to whole pages; 0: off
    #[arg(long, value_name = "KIB", default_value_t = 256)]
    pub memory_sample: u64,

    /// Also write memory growth by Python stack (bytes of resident memory
    /// grown, see --memory-sample) as a flame graph (SVG) to FILE
    #[arg(long, value_name = "FILE.svg")]
    pub memory_flamegraph: Option<PathBuf>,

    /// Also write memory growth by Python stack as a gzipped pprof profile
    /// to FILE: values `space` (bytes grown, the default) and
    /// `samples`, labelled by pid, comm (and container)
    #[arg(long, value_name = "FILE.pb.gz")]
    pub memory_pprof: Option<PathBuf>,

    /// Do not sample Python stacks (kernel sections only)
    #[arg(long)]
    pub no_python: bool,

    /// Also write the sampled Python stacks as a flame graph (SVG) to FILE
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,

    /// Also write the sampled Python stacks in Brendan Gregg's folded format
    /// (`outer;inner COUNT`, outermost first) to FILE
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,

    /// Also write the sampled Python stacks as a speedscope JSON profile to FILE (one profile
    /// per thread, samples in time order)
    #[arg(long, value_name = "FILE.json")]
    pub speedscope: Option<PathBuf>,

    /// Also write the sampled Python stacks as a gzipped pprof profile to FILE
    /// (`go tool pprof`, Pyroscope, Parca, Grafana): pid, comm, tid,
    /// thread_name (and container_id, pod_uid) labels, function / file / line
    /// locations
    #[arg(long, value_name = "FILE.pb.gz")]
    pub pprof: Option<PathBuf>,

    /// Also write a Perfetto trace to FILE (open it at ui.perfetto.dev): a
    /// track per process and thread with on/off-CPU slices, read syscalls,
    /// signals from generation to delivery to the Python handler (flows),
    /// forks, execs, exits, zombies and the Python samples. Every read and
    /// context switch is then sent to the tracer (more overhead than the
    /// report alone)
    #[arg(long, value_name = "FILE.pftrace")]
    pub perfetto: Option<PathBuf>,

    /// Continuous mode: trace until stopped with bounded memory, serving
    /// Prometheus metrics at http://ADDR/metrics (ADDR: HOST:PORT, or :PORT
    /// for every address), and at http://ADDR/debug/pprof/profile?seconds=N
    /// a pprof profile of the next N seconds' Python samples, as a Go
    /// service's (Parca, Grafana Alloy, `go tool pprof`). The report at the
    /// end is the final metrics
    #[arg(
        long,
        value_name = "ADDR",
        value_parser = crate::serve::parse_address,
        conflicts_with_all = ["dump", "perfetto", "pprof", "flamegraph", "folded", "speedscope", "memory_flamegraph", "memory_pprof"]
    )]
    pub serve: Option<std::net::SocketAddr>,

    /// With --serve: TLS and credentials for every path served, from a web
    /// config file in the format of Prometheus's exporter-toolkit (as
    /// node_exporter's --web.config.file): tls_server_config (cert_file,
    /// key_file, client_ca_file, client_auth_type, min_version),
    /// basic_auth_users (bcrypt hashes), http_server_config.headers. Checked
    /// before tracing (exit status 8); read again when it changes
    #[arg(long, value_name = "FILE", requires = "serve")]
    pub web_config: Option<PathBuf>,

    /// Continuous mode: a file path under one of these directories is
    /// labelled with the directory alone (`/home/alice/notes.txt` under
    /// `/home` is `path="/home"`), in --serve's metrics and --every's
    /// reports, for sites whose file names are sensitive
    #[arg(long, value_name = "PREFIX", num_args = 1.., value_parser = parse_redact_prefix)]
    pub redact_paths: Vec<String>,

    /// Continuous mode: every SECS seconds, write the figures of that
    /// window (those of --serve's metrics, as JSON) to DIR/report-<start
    /// ms>.json, DIR (an existing directory) given with -o; with or
    /// without --serve. With --otlp:
    /// the windows pushed (default 10 s), -o DIR optional
    #[arg(
        long,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        conflicts_with_all = ["dump", "perfetto", "pprof", "flamegraph", "folded", "speedscope", "memory_flamegraph", "memory_pprof"]
    )]
    pub every: Option<u64>,

    /// Continuous mode: push each window's Python samples (--every SECS,
    /// default 10) as OTLP/HTTP profiles (protobuf) to
    /// URL/v1development/profiles: an OpenTelemetry Collector, Pyroscope.
    /// Without URL: OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT (as is), else
    /// OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318;
    /// OTEL_EXPORTER_OTLP_HEADERS are sent. A collector that is down is
    /// retried with backoff; what could not wait is dropped and counted
    /// (/metrics, the window reports)
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with_all = ["dump", "perfetto", "pprof", "flamegraph", "folded", "speedscope", "memory_flamegraph", "memory_pprof", "no_python"]
    )]
    pub otlp: Option<String>,

    /// With --otlp https://...: verify the collector's certificate against
    /// the CA certificates (PEM) in FILE instead of the system's roots
    #[arg(long, value_name = "FILE", requires = "otlp")]
    pub otlp_ca: Option<PathBuf>,

    /// With --every: how many window reports to keep in DIR (the oldest
    /// this run wrote are removed)
    #[arg(long, value_name = "N", default_value_t = 24, requires = "every")]
    pub keep: usize,

    /// In --flamegraph and --folded, merge the stacks of every process into
    /// one tree (default: a root frame per process, `python3.11 (pid N)`,
    /// when more than one was sampled or one runs in a container)
    #[arg(long)]
    pub merge_processes: bool,

    /// An event loop iteration (from one selector wait's return to the next
    /// wait: epoll_wait, select, poll) this long or longer is a stall,
    /// reported with the Python code that ran in it (asyncio debug mode's
    /// slow_callback_duration is 100 ms)
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000)
    )]
    pub loop_stall: u64,

    /// Do not follow processes forked by the target (followed by default:
    /// their reads, scheduling, exits and signals are reported too)
    #[arg(long)]
    pub no_children: bool,

    /// A full-screen view in the terminal, refreshed every --refresh
    /// seconds: Python functions (own and total share, by thread, process
    /// or in all), reads and writes per file (syscalls and bytes a second,
    /// request sizes, syncs), scheduling, the last signals and their fate, processes and
    /// zombies, event loop stalls. Keys: q quit, p pause, s sort, tab view,
    /// g group, / filter. The report is written at the end as without it
    /// (-o FILE). A launched command's output is discarded
    #[arg(
        long,
        conflicts_with_all = ["dump", "serve", "every", "otlp"]
    )]
    pub live: bool,

    /// With --live: seconds between refreshes
    #[arg(long, value_name = "SECS", default_value_t = 1.0, requires = "live", value_parser = parse_duration)]
    pub refresh: f64,

    /// No live status line on standard error
    #[arg(long)]
    pub quiet: bool,

    /// Fit the text report to COLS columns (tables leave out their least needed columns, stacks
    /// show file names without directories and as many frames as fit). Default: the terminal's
    /// width when the report goes to one, else no limit; 0: no limit
    #[arg(long, value_name = "COLS")]
    pub width: Option<usize>,

    /// Log what the tracer does (attach times, first event) to standard error
    #[arg(short, long)]
    pub verbose: bool,

    /// Print the man page or a completion script for bash, zsh or fish and
    /// exit (for a copy that came without them, e.g. `tracer --generate
    /// bash > /etc/bash_completion.d/tracer`)
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,

    /// Command to launch and trace (after `--`; any bytes, UTF-8 or not)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// A `--redact-paths` prefix: an absolute path, kept without its trailing
/// slashes (`/` alone redacts every path).
fn parse_redact_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("`{text}` is not an absolute path"));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// The longest `--duration`: a year.
const MAX_DURATION_S: f64 = 365.0 * 24.0 * 3600.0;

fn parse_duration(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_S => Ok(secs),
        Ok(secs) if secs > MAX_DURATION_S => Err(format!(
            "`{text}` seconds is more than a year (at most {MAX_DURATION_S})"
        )),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

/// The default sampling rate of a one-off trace.
pub const DEFAULT_RATE_HZ: u64 = 99;
/// The default of an always-on node-wide agent: what Parca Agent uses
/// (19 Hz; the OpenTelemetry profiler 20 Hz), a prime so that the ticks do
/// not beat with periodic work. See docs/node.md for its cost.
pub const AGENT_RATE_HZ: u64 = 19;

/// `--otlp`'s windows when `--every` does not say.
pub const DEFAULT_OTLP_EVERY: u64 = 10;

impl Args {
    /// Checks what clap cannot express: exactly one of `--pid`, a command,
    /// `--all`, `--container` and `--cgroup`.
    pub fn validate(&self) -> Result<(), String> {
        let node_wide = self.node_wide();
        match (self.pid, self.command.is_empty()) {
            (None, _) if self.dump => {
                Err("--dump shows a running process: give it with --pid PID".into())
            }
            (None, true) if !node_wide => Err(
                "give what to trace: --pid PID, -- CMD ARGS..., --all, --container ID|NAME or --cgroup PATH"
                    .into(),
            ),
            _ if self.every.is_some() && self.output.is_none() && self.otlp.is_none() => {
                Err("--every writes its window reports to a directory: give it with -o DIR".into())
            }
            _ if !self.redact_paths.is_empty() && self.serve.is_none() && self.every.is_none() => {
                Err("--redact-paths applies to the continuous mode's labels: give --serve or --every".into())
            }
            _ => Ok(()),
        }
    }

    /// The windows' length: `--every`, or 10 s with `--otlp`.
    pub fn every(&self) -> Option<u64> {
        self.every
            .or(self.otlp.is_some().then_some(DEFAULT_OTLP_EVERY))
    }

    /// `--serve`, `--every` or `--otlp`: trace until stopped with bounded
    /// memory.
    pub fn continuous(&self) -> bool {
        self.serve.is_some() || self.every().is_some()
    }

    /// `--all`, `--container` or `--cgroup`: processes found by where they
    /// run, not by descent from one process.
    pub fn node_wide(&self) -> bool {
        self.all || self.container.is_some() || self.cgroup.is_some()
    }

    /// Minor page faults per memory-growth sample (`--memory-sample`, in
    /// pages); `None`: off (0, or `--no-python`).
    pub fn fault_period(&self) -> Option<u64> {
        let page_kib = (crate::host::page_size() / 1024).max(1);
        (!self.no_python && self.memory_sample > 0)
            .then(|| self.memory_sample.div_ceil(page_kib).max(1))
    }

    /// The sampling rate: `--rate`, or the default for this kind of trace.
    pub fn rate(&self) -> u64 {
        let agent = self.node_wide() && self.continuous();
        self.rate.unwrap_or(if agent {
            AGENT_RATE_HZ
        } else {
            DEFAULT_RATE_HZ
        })
    }
}

/// Writes what `--generate` asks for, made from this very definition (so
/// the man page and completions can never lag behind the options).
pub fn generate(kind: Generate, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_complete::{Generator as _, Shell};
    let mut cmd = Args::command();
    let shell = match kind {
        Generate::Man => return crate::manpage::render(cmd, out),
        Generate::Bash => Shell::Bash,
        Generate::Zsh => Shell::Zsh,
        Generate::Fish => Shell::Fish,
    };
    cmd.set_bin_name("tracer");
    cmd.build();
    shell.try_generate(&cmd, out)
}

/// A hint for a command line clap refused, when the mistake is a common one:
/// a command given without `--` before it.
pub fn hint(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    (!arg.starts_with('-')).then(|| {
        format!(
            "tip: to launch a command and trace it, put it after `--`: tracer [OPTIONS] -- {arg} ..."
        )
    })
}

/// `--native=MODE`: the modes by name (offered to the shells' completions).
fn native_mode() -> impl clap::builder::TypedValueParser<Value = NativeMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["libraries", "all", "off"]).map(|mode| {
        match mode.as_str() {
            "all" => NativeMode::All,
            "off" => NativeMode::Off,
            _ => NativeMode::Libraries,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("tracer").chain(args.iter().copied()))
    }

    #[test]
    fn dump_needs_a_pid() {
        assert!(
            parse(&["--pid", "42", "--dump"])
                .unwrap()
                .validate()
                .is_ok()
        );
        let without_pid = parse(&["--dump", "--", "python3"]);
        assert!(without_pid.is_err() || without_pid.unwrap().validate().is_err());
    }

    #[test]
    fn a_command_without_dashes_gets_a_hint() {
        let err = parse(&["python3", "app.py"]).unwrap_err();
        assert_eq!(
            hint(&err).as_deref(),
            Some(
                "tip: to launch a command and trace it, put it after `--`: tracer [OPTIONS] -- python3 ..."
            )
        );
        assert_eq!(hint(&parse(&["--bogus"]).unwrap_err()), None);
    }

    #[test]
    fn pid_mode() {
        let a = parse(&["--pid", "42", "--duration", "1.5", "--format", "json"]).unwrap();
        assert_eq!(a.pid, Some(42));
        assert_eq!(a.duration, Some(1.5));
        assert_eq!(a.format, Format::Json);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn launch_mode_keeps_command_flags() {
        let a = parse(&["-o", "r.json", "--", "python3", "-c", "print(1)", "--pid"]).unwrap();
        assert_eq!(a.command, ["python3", "-c", "print(1)", "--pid"]);
        assert_eq!(a.pid, None);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&["--pid", "abc"]).is_err());
        assert!(parse(&["--pid", "1", "--duration", "-3"]).is_err());
        for huge in ["1e30", "inf", "NaN", "31536001"] {
            assert!(
                parse(&["--pid", "1", "--duration", huge]).is_err(),
                "{huge}"
            );
        }
        assert!(parse(&["--pid", "1", "--duration", "31536000"]).is_ok());
        assert!(parse(&["--pid", "1", "--", "python3"]).is_err());
        assert!(parse(&["--format", "xml", "--pid", "1"]).is_err());
        assert!(parse(&["--quiet"]).unwrap().validate().is_err());
        assert!(parse(&["--pid", "1", "--rate", "0"]).is_err());
        assert!(parse(&["--pid", "1", "--rate", "fast"]).is_err());
    }

    #[test]
    fn python_flags() {
        let a = parse(&[
            "--rate",
            "999",
            "--folded",
            "s.txt",
            "--flamegraph",
            "f.svg",
            "--",
            "python3",
            "x.py",
        ])
        .unwrap();
        assert_eq!(a.rate(), 999);
        assert_eq!(a.folded.as_deref(), Some(std::path::Path::new("s.txt")));
        assert!(!a.no_python);
        assert_eq!(parse(&["--pid", "1"]).unwrap().rate(), 99);
    }

    #[test]
    fn generate_stands_alone_and_writes_each_kind() {
        assert_eq!(
            parse(&["--generate", "zsh"]).unwrap().generate,
            Some(Generate::Zsh)
        );
        assert!(parse(&["--generate", "bash", "--pid", "1"]).is_err());
        assert!(parse(&["--generate", "tcsh"]).is_err());
        let text = |kind| {
            let mut out = Vec::new();
            generate(kind, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(text(Generate::Man).contains(".TH tracer 1"));
        let bash = text(Generate::Bash);
        assert!(bash.contains("_tracer()") && bash.contains("--loop-stall"));
        assert!(text(Generate::Zsh).starts_with("#compdef tracer\n"));
        assert!(text(Generate::Fish).contains("complete -c tracer -s f -l format"));
    }

    #[test]
    fn otlp_windows_and_its_url() {
        let a = parse(&["--all", "--otlp", "http://c:4318"]).unwrap();
        assert!(a.validate().is_ok());
        assert_eq!(a.otlp.as_deref(), Some("http://c:4318"));
        // 10 s windows by default, an agent's rate.
        assert_eq!(a.every(), Some(DEFAULT_OTLP_EVERY));
        assert!(a.continuous());
        assert_eq!(a.rate(), AGENT_RATE_HZ);
        // Without a URL: from the environment (an empty value here).
        let a = parse(&["--all", "--otlp", "--every", "5"]).unwrap();
        assert_eq!((a.otlp.as_deref(), a.every()), (Some(""), Some(5)));
        assert!(a.validate().is_ok());
        let a = parse(&["--otlp", "--", "python3"]).unwrap();
        assert_eq!(a.otlp.as_deref(), Some(""));
        assert_eq!(a.command, ["python3"]);
        // --every without --otlp needs its directory.
        assert!(
            parse(&["--all", "--every", "5"])
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(parse(&["--all", "--otlp-ca", "/ca.pem"]).is_err());
        assert!(parse(&["--all", "--otlp", "--no-python"]).is_err());
        assert!(parse(&["--all", "--otlp", "--pprof", "p.pb.gz"]).is_err());
    }

    #[test]
    fn web_config_and_redact_paths() {
        // --web-config guards --serve's endpoint: nothing without it.
        assert!(parse(&["--pid", "1", "--web-config", "w.yml"]).is_err());
        let a = parse(&[
            "--pid",
            "1",
            "--serve",
            ":9464",
            "--web-config",
            "w.yml",
            "--redact-paths",
            "/home/",
            "/srv",
        ])
        .unwrap();
        assert_eq!(a.web_config.as_deref(), Some(std::path::Path::new("w.yml")));
        assert_eq!(a.redact_paths, ["/home", "/srv"]);
        assert!(a.validate().is_ok());
        assert!(parse(&["--pid", "1", "--serve", ":1", "--redact-paths", "home"]).is_err());
        // Labels are the continuous mode's.
        assert!(
            parse(&["--pid", "1", "--redact-paths", "/home"])
                .unwrap()
                .validate()
                .is_err()
        );
        let every = parse(&[
            "--pid",
            "1",
            "--every",
            "5",
            "-o",
            "d",
            "--redact-paths",
            "//",
        ]);
        assert_eq!(every.unwrap().redact_paths, ["/"]);
    }

    #[test]
    fn node_wide_scopes() {
        assert!(parse(&["--all"]).unwrap().validate().is_ok());
        assert!(parse(&["--container", "web"]).unwrap().validate().is_ok());
        assert!(
            parse(&["--cgroup", "/system.slice"])
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(parse(&["--all", "--pid", "1"]).is_err());
        assert!(parse(&["--all", "--", "python3"]).is_err());
        assert!(parse(&["--all", "--container", "web"]).is_err());
        assert!(parse(&["--container", "web", "--pid", "1"]).is_err());
        assert!(parse(&["--all", "--dump"]).is_err());
        // An always-on agent samples at the fleet profilers' rate.
        assert_eq!(parse(&["--all"]).unwrap().rate(), DEFAULT_RATE_HZ);
        assert_eq!(
            parse(&["--all", "--serve", ":9464"]).unwrap().rate(),
            AGENT_RATE_HZ
        );
        assert_eq!(
            parse(&["--pid", "1", "--serve", ":9464"]).unwrap().rate(),
            99
        );
        assert_eq!(
            parse(&["--all", "--serve", ":9464", "--rate", "49"])
                .unwrap()
                .rate(),
            49
        );
    }
}

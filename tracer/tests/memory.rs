//! End-to-end: memory. A worker grown past its memory cgroup's limit is
//! killed by the OOM killer, and the report says so: the limit, its
//! resident memory, the line it was growing on. Memory faulted in is
//! charged to the Python lines that did it, by the workload's own figures
//! and getrusage's; the pages khugepaged collapses in are no line's. Root
//! only.

mod common;

use common::{
    SHARED_PYTHON, Scratch, pid_of, python_command, require_root, signal_groups, trace_command,
    u64_of, workload,
};
use serde_json::Value;

const LIMIT: u64 = 200 << 20;

/// A memory cgroup of the test's own with a limit, removed when dropped:
/// v1's memory controller where it is mounted, else cgroup v2's.
struct MemoryCgroup {
    dir: std::path::PathBuf,
    /// Its path in its hierarchy, as the kernel names it.
    path: String,
}

impl MemoryCgroup {
    fn new(name: &str, limit: u64) -> Self {
        let name = format!("tracer-test-{name}-{}", std::process::id());
        let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
        let (root, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.to_path_buf(), "memory.limit_in_bytes")
        } else {
            let v2 = std::path::PathBuf::from("/sys/fs/cgroup");
            // The memory controller for the root's children.
            std::fs::write(v2.join("cgroup.subtree_control"), "+memory")
                .expect("enabling cgroup v2's memory controller");
            (v2, "memory.max")
        };
        let dir = root.join(&name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).expect("making a memory cgroup");
        std::fs::write(dir.join(limit_file), limit.to_string()).expect("setting its limit");
        if dir.join("memory.swap.max").exists() {
            std::fs::write(dir.join("memory.swap.max"), "0").expect("no swap");
        }
        Self {
            dir,
            path: format!("/{name}"),
        }
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The kernel log's "Killed process PID (...) total-vm:..kB, anon-rss:..kB,
/// ..." line of `pid`'s OOM kill, read from /dev/kmsg (its records so far).
fn kernel_oom_message(pid: u64) -> String {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .expect("opening /dev/kmsg");
    let needle = format!("Killed process {pid} (");
    let mut found = None;
    let mut record = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&record[..n]);
                if text.contains(&needle) {
                    found = Some(text.into_owned());
                }
            }
            // EPIPE: records overwritten while reading; go on.
            Err(err) if err.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    found.unwrap_or_else(|| panic!("no \"{needle}\" in the kernel log"))
}

/// `field:NkB` of a kernel message, as N.
fn kib_in(message: &str, field: &str) -> u64 {
    let at = message.find(&format!("{field}:")).expect(field) + field.len() + 1;
    message[at..]
        .split("kB")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {message}"))
}

/// A pre-fork worker appends 8 MiB bytearrays in a 200 MiB memory cgroup
/// until the OOM killer kills it: one `memory.oom_kills` row with the
/// cgroup, its limit and the worker's resident memory (at least what the
/// worker said it held), the finding, the process row and the SIGKILL's
/// sender say the OOM killer, and the worker's main thread died on the
/// line that grew it.
#[test]
fn a_worker_past_its_memory_limit_is_said_killed_by_the_oom_killer() {
    require_root();
    let cgroup = MemoryCgroup::new("oom", LIMIT);
    let scratch = Scratch::new("oom-worker");
    let facts_path = scratch.path("facts.json");
    let cgroup_dir = cgroup.dir.to_string_lossy().into_owned();
    let command = python_command(SHARED_PYTHON, "oom_worker.py", &[&facts_path, &cgroup_dir]);
    let report = trace_command(&scratch, &[], &command);
    let facts = common::load_json(&facts_path);
    let worker = pid_of(&facts["worker"]);
    assert_eq!(u64_of(&facts["signal"]), 9, "{facts}");
    let held = u64_of(&facts["chunks"]) * u64_of(&facts["chunk_bytes"]);
    assert!(held > 0, "{facts}");

    let kills = report["memory"]["oom_kills"].as_array().expect("oom_kills");
    assert_eq!(kills.len(), 1, "{kills:?}");
    let kill = &kills[0];
    assert_eq!(u64_of(&kill["pid"]), worker, "{kill}");
    assert_eq!(kill["scope"], "cgroup", "{kill}");
    assert_eq!(kill["cgroup"], cgroup.path.as_str(), "{kill}");
    assert_eq!(u64_of(&kill["limit_bytes"]), LIMIT, "{kill}");
    // Memory charged before the worker moved in (the interpreter's start)
    // is resident too, but not in the cgroup.
    let (rss, anon) = (u64_of(&kill["rss_bytes"]), u64_of(&kill["anon_rss_bytes"]));
    assert!(anon >= held && rss >= anon, "held {held}: {kill}");
    assert!(rss < LIMIT + (64 << 20), "{kill}");
    assert_eq!(u64_of(&kill["trigger_pid"]), worker, "{kill}");
    // The kernel's own word: its "Killed process" line says the same, to
    // what each CPU has not yet folded into the counters (per-CPU counters
    // since 6.2, which the kernel's message sums from 6.16 on).
    let said = kernel_oom_message(worker);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let unfolded = cpus * 32.max(2 * cpus) * 4096;
    for (field, key) in [
        ("anon-rss", "anon_rss_bytes"),
        ("file-rss", "file_rss_bytes"),
        ("shmem-rss", "shmem_rss_bytes"),
    ] {
        assert!(
            (kib_in(&said, field) * 1024).abs_diff(u64_of(&kill[key])) <= unfolded,
            "{key}: {said} / {kill}"
        );
    }

    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "oom_kill")
        .expect("an oom_kill finding");
    assert_eq!(u64_of(&finding["figures"]["pid"]), worker);
    assert_eq!(u64_of(&finding["figures"]["limit_bytes"]), LIMIT);
    assert_eq!(u64_of(&finding["figures"]["rss_bytes"]), rss);

    let process = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| u64_of(&p["pid"]) == worker)
        .expect("the worker's row");
    assert_eq!(process["killed_by"], "oom_killer", "{process}");
    assert_eq!(process["exit_signal"], "SIGKILL", "{process}");

    let groups = signal_groups(&report, "SIGKILL", worker);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = groups[0];
    assert_eq!(g["sender"]["oom_killer"], true, "{g}");
    assert_eq!(g["sender"]["comm"], "OOM killer", "{g}");
    let main = g["threads_at_death"]
        .as_array()
        .expect("threads_at_death")
        .iter()
        .find(|t| u64_of(&t["tid"]) == worker)
        .expect("the worker's main thread as it died");
    let grow = format!(
        "grow ({}:{})",
        workload("oom_worker.py"),
        facts["grow_line"]
    );
    assert_eq!(main["python_stack"][0], Value::from(grow.clone()), "{main}");

    // What grew it: its memory row charges the chunks to the line.
    let row = memory_row(&report, worker);
    let line = &row["lines"][0];
    assert_eq!(line["function"], "grow", "{row}");
    assert_eq!(u64_of(&line["line"]), u64_of(&facts["grow_line"]), "{row}");
    assert!(u64_of(&line["bytes"]) >= held, "held {held}: {row}");
    let peak = u64_of(&row["peak_rss_bytes"]);
    assert!(peak >= anon && peak < LIMIT + (64 << 20), "{row}");
}

/// `memory.processes`' row of `pid`.
fn memory_row(report: &Value, pid: u64) -> &Value {
    report["memory"]["processes"]
        .as_array()
        .expect("memory.processes")
        .iter()
        .find(|p| u64_of(&p["pid"]) == pid)
        .unwrap_or_else(|| panic!("no memory row of {pid}: {}", report["memory"]))
}

/// A Python program keeps 48 MiB made on one line of its main thread and
/// 16 MiB on one line of a second thread: each line is charged the growth
/// of its resident memory, to two samples (512 KiB) and glibc's page of
/// header per MiB; the samples add up to the process's own minor faults
/// (getrusage), the kernel's count is its count, and its peak is its
/// `ru_maxrss`.
#[test]
fn resident_memory_grown_is_charged_to_the_lines_that_grew_it() {
    require_root();
    let scratch = Scratch::new("memory-growth");
    let facts_path = scratch.path("facts.json");
    let (pprof, svg) = (scratch.path("memory.pb.gz"), scratch.path("memory.svg"));
    let command = python_command(SHARED_PYTHON, "memory_growth.py", &[&facts_path]);
    let report = trace_command(
        &scratch,
        &["--memory-pprof", &pprof, "--memory-flamegraph", &svg],
        &command,
    );
    let facts = common::load_json(&facts_path);
    let memory = &report["memory"];
    let sample = u64_of(&memory["growth_sample_bytes"]);
    assert_eq!(sample, 256 << 10, "{memory}");
    let row = memory_row(&report, u64_of(&facts["pid"]));
    let line_bytes = |line: &Value| {
        row["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["line"] == *line && l["file"] == workload("memory_growth.py").as_str())
            .map_or(0, |l| u64_of(&l["bytes"]))
    };
    // The huge page a thread's stack gets on some runs (before 6.7, with
    // transparent huge pages always on) is resident memory its line grew.
    let thread_huge = u64_of(&facts["thread_huge_bytes"]);
    let collapsed = u64_of(&row["collapsed_bytes"]);
    for (line, kept, huge) in [
        ("main_line", "main_bytes", 0),
        ("thread_line", "thread_bytes", thread_huge),
    ] {
        let (charged, kept) = (line_bytes(&facts[line]), u64_of(&facts[kept]));
        // A page of malloc's header with each MiB; a sample's worth at each
        // end of the line's run; less what khugepaged mapped (no line's),
        // where it collapsed a block of arrays being filled.
        let most = kept + kept / 256 + 2 * sample + huge;
        assert!(
            charged + 2 * sample + collapsed >= kept && charged <= most,
            "{line}: {charged} for {kept} and {huge} of huge pages: {row}"
        );
    }
    // The kernel's count of the faults since the event opened (before the
    // exec) is the process's own, to the few of its exit; none missed.
    let faults = u64_of(&facts["minflt"]);
    let counted = u64_of(&memory["faults_counted"]);
    assert!(
        counted.abs_diff(faults) * 100 <= faults,
        "{counted} for {faults}: {memory}"
    );
    assert_eq!(u64_of(&memory["fault_samples_missed"]), 0, "{memory}");
    // Held by its exec until its interpreter (in the executable) was
    // known: every fault of its program is sampled with it, from the first.
    assert_eq!(
        u64_of(&memory["fault_samples_without_interpreter"]),
        0,
        "{memory}"
    );
    // Every sample is a fault the process counted.
    let sampled = u64_of(&row["samples"]) * (sample / 4096);
    assert!(
        sampled <= faults + sample / 4096 && sampled * 10 >= faults * 9,
        "{sampled} of {faults} faults sampled: {row}"
    );
    // Its peak as it exited: getrusage's at its end, and the little the
    // interpreter's exit touched since.
    let (peak, maxrss) = (
        u64_of(&row["peak_rss_bytes"]),
        u64_of(&facts["maxrss_bytes"]),
    );
    assert!(
        peak >= maxrss && peak <= maxrss + (1 << 20),
        "{peak} for {maxrss}: {row}"
    );
    // The curve's top holds all 64 MiB, and no point passes the peak. (Its
    // last point may come after the interpreter's exit freed them.)
    let rss = row["rss"].as_array().expect("rss points");
    let top = rss.iter().map(|p| u64_of(&p["bytes"])).max().unwrap_or(0);
    assert!(top >= 64 << 20 && top <= peak, "{row}");

    // The same growth in the official consumer of pprof profiles: each
    // line's share of the bytes, as the report has it.
    let output = std::process::Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=space", &pprof])
        .output()
        .expect("go (Debian's golang-go; `cargo xtask test` installs it)");
    assert!(output.status.success(), "go tool pprof: {output:?}");
    let top = String::from_utf8(output.stdout).unwrap();
    assert!(top.contains("Type: space"), "{top}");
    let grown = u64_of(&row["grown_bytes"]) as f64;
    for (function, line) in [("grow_main", "main_line"), ("grow_thread", "thread_line")] {
        let flat: f64 = top
            .lines()
            .find(|l| l.split_whitespace().last() == Some(function))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|share| share.trim_end_matches('%').parse().ok())
            .unwrap_or_else(|| panic!("no {function} in go tool pprof -top:\n{top}"));
        let share = 100.0 * line_bytes(&facts[line]) as f64 / grown;
        assert!(
            (flat - share).abs() <= 0.5,
            "{function}: {flat}% vs {share:.2}%\n{top}"
        );
    }
    let drawn = std::fs::read_to_string(&svg).expect("the memory flame graph");
    assert!(drawn.contains("grow_main") && drawn.contains("Resident memory grown"));
}

/// khugepaged's scan interval, set for a test and put back when dropped.
struct KhugepagedScanning {
    was: String,
}

const SCAN_SLEEP: &str = "/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs";

impl KhugepagedScanning {
    fn every(ms: u32) -> Self {
        let was = std::fs::read_to_string(SCAN_SLEEP).expect("khugepaged's scan interval");
        std::fs::write(SCAN_SLEEP, ms.to_string()).expect("setting khugepaged's scan interval");
        Self { was }
    }
}

impl Drop for KhugepagedScanning {
    fn drop(&mut self) {
        let _ = std::fs::write(SCAN_SLEEP, self.was.trim());
    }
}

/// khugepaged collapses a 2 MiB range the program touched one page of into
/// a huge page, mapping the other 511 pages with no fault of the program's:
/// the report says them (`collapsed_bytes`), and the line whose samples
/// come next (1 MiB faulted in) is charged its own pages, not those.
#[test]
fn pages_khugepaged_collapsed_in_are_no_lines() {
    require_root();
    let scratch = Scratch::new("memory-collapse");
    let facts_path = scratch.path("facts.json");
    let command = python_command(SHARED_PYTHON, "huge_page_collapse.py", &[&facts_path]);
    let report = {
        let _scanning = KhugepagedScanning::every(10);
        trace_command(&scratch, &[], &command)
    };
    let facts = common::load_json(&facts_path);
    assert_eq!(
        facts["collapsed"], true,
        "khugepaged did not collapse it: {facts}"
    );
    let row = memory_row(&report, u64_of(&facts["pid"]));
    let page = u64_of(&facts["page"]);
    assert!(u64_of(&row["collapsed_bytes"]) >= 511 * page, "{row}");
    let sample = u64_of(&report["memory"]["growth_sample_bytes"]);
    let after = row["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["line"] == facts["after_line"]
                && l["file"] == workload("huge_page_collapse.py").as_str()
        })
        .map_or(0, |l| u64_of(&l["bytes"]));
    let kept = u64_of(&facts["after_bytes"]);
    assert!(
        after + 2 * sample >= kept && after <= kept + 2 * sample,
        "after_line: {after} for {kept}: {row}"
    );
}

/// The tracer's own memory is kept out of khugepaged's reach (a collapse
/// holds the tracer's memory map locked, its loop's page faults waiting);
/// the launched command's is as it would be untraced.
#[test]
fn the_tracer_keeps_small_pages_and_the_command_its_own() {
    require_root();
    let scratch = Scratch::new("small_pages");
    let report = scratch.path("report.txt");
    let read = "import os\n\
        def thp(pid):\n\
        \x20   for line in open('/proc/%s/status' % pid):\n\
        \x20       if line.startswith('THP_enabled:'):\n\
        \x20           return line.split()[1]\n\
        print('command', thp('self'), 'tracer', thp(os.getppid()))";
    let out = common::tracer(&[
        "--quiet",
        "--no-python",
        "-o",
        &report,
        "--",
        common::python(common::STATIC_PYTHON),
        "-c",
        read,
    ]);
    common::assert_exit(&out, 0);
    let untraced = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_owned()))
        .expect("THP_enabled in /proc/self/status (5.0 and later)");
    assert_eq!(
        common::text(&out.stdout).trim(),
        format!("command {untraced} tracer 0")
    );
}

"""The end-to-end checks `cargo xtask kernels` runs inside each Debian kernel
it boots (and so `cargo xtask test`): one scenario per concern, with the exact
figures the workload knows, as the host's tests check them.

    checks.py NAME [TRACER-ARGS...]

NAME is one of the functions in CHECKS below. The VM is the Debian bullseye
root (python3.9) with the static tracer on PATH; /roots/trixie holds
trixie's python3.13 and the workloads under /checks in it. Self-contained:
Python 3.9, no third-party module. Exit 0 when the scenario held, 1 (with the
reason and the report's relevant part) when it did not.

Sampled figures are checked as exactly as emulation allows: qemu without KVM
(TCG) delivers the sampler's timer interrupts late and where it checks for
them (between its translated blocks, often at a syscall), so CPU shares and
sample rates are the host tests' to check; here every stack, name, file,
line and process is checked, and the shares are printed.

Each scenario expects what this kernel can do, by its version (Debian's kernels
backport no BPF feature): before 5.17 (no bpf_loop) the Python stacks are
walked in tail-called pieces and checked as on newer kernels, and no native
frame is unwound, said in a warning; before 5.12 (no fetching atomics)
reads are counted per file rather than per descriptor, said in a warning.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

WORKLOADS = "/checks/workloads"
# The interpreter the workloads run on: the root's (python3.9 in the
# bullseye root of the x86-64 VMs, python3.11 in arm64's bookworm root).
PYTHON = os.environ.get("CHECKS_PYTHON", "python3.9")
TRIXIE = "/roots/trixie"
SCRATCH = "/tmp/checks"
RATE = 499
# Which program a skipped run was of, if one was: the tracer's maps module
# says it at debug level (its other modules at the level of -v, or warn).
SKIPPED_SAID = "tracer::kernel::probes::maps=debug"
# Records the tracer handled late (a stalled ring or a held loop), said
# in every check: the tracer's session::drain at info level.
RING_SAID = "tracer::session::drain=info"
# What the tracer found of each Python process (printed if a check fails).
PYTHON_SAID = "tracer::python=info"
# How many threads' rows came as the threads ended (`analysis/sched.rs`).
ROWS_SAID = "tracer::thread_rows=debug"
# How each huge page collapse's pages were kept from the lines (`growth`).
GROWTH_SAID = "tracer::analysis::memory_growth=trace"
# Each Python sample as the kernel sent it (code objects' addresses) and as
# its process named it.
SAMPLES_SAID = "tracer::samples=trace"
# What the native unwinder read and published, and when (`native`).
NATIVE_SAID = "tracer::native=debug,tracer::session::python_refresh=info,tracer::session::target=info"
# The last trace's stderr.
LAST_LOG = []
# Where the running `trace` logs.
LOG_FILE = []
# The `Tracer` running in the background, if one is.
RUNNING = []
# When the check started (monotonic seconds).
STARTED = []


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


def dump(value):
    """`value` as a failure shows it (4000 characters). Made on every check,
    failing or not, so only a head of each long list or dict is encoded:
    the whole of a report's stacks took a minute each under arm64's TCG."""
    return json.dumps(head(value), indent=1, sort_keys=True)[:4000]


def head(value, room=30):
    """`value` with each list or dict cut to its first `room` items (and a
    word on how many were left out)."""
    if isinstance(value, list):
        kept = [head(v) for v in value[:room]]
        if len(value) > room:
            kept.append("... %d more" % (len(value) - room))
        return kept
    if isinstance(value, dict):
        kept = {k: head(v) for k, v in list(value.items())[:room]}
        if len(value) > room:
            kept["..."] = "%d more" % (len(value) - room)
        return kept
    return value


def workload(name):
    return os.path.join(WORKLOADS, name)


def scratch(name):
    path = os.path.join(SCRATCH, name)
    os.makedirs(path, exist_ok=True)
    return path


def trace(name, command, args=(), log=None):
    """`tracer ARGS --format json -o REPORT -- COMMAND`: the report, once the
    tracer exited 0 with a complete report and no loss. `log`: more of the
    tracer's modules to log (printed if the check fails)."""
    report = os.path.join(scratch(name), "report.json")
    argv = ["tracer", *args, "--format", "json", "-o", report, "--", *command]
    print("$ " + " ".join(argv), flush=True)
    # Which program a skipped run was of, if one was (the tracer says it
    # at debug level from its maps module).
    env = dict(os.environ)
    env.setdefault("RUST_LOG", ",".join(["warn", SKIPPED_SAID, RING_SAID, PYTHON_SAID] + ([log] if log else [])))
    # Its log goes to a file, so that a check killed at its time limit can
    # still print it (`on_time_limit`).
    LOG_FILE[:] = [os.path.join(scratch(name), "tracer.log")]
    RUNNING.clear()
    started = time.monotonic()
    with open(LOG_FILE[0], "w") as log_file:
        code = subprocess.run(argv, stderr=log_file, env=env).returncode
    took = time.monotonic() - started
    size = os.path.getsize(report) >> 10 if os.path.exists(report) else -1
    print("(tracer: %.1f s, report %d KiB)" % (took, size), flush=True)
    stderr = read_log()
    LAST_LOG[:] = stderr.splitlines()
    check(code == 0, "tracer exited %d:\n%s" % (code, stderr))
    print_said(stderr)
    return exact(load(report), stderr)


def trace_after_go(name, command, args, log, ready):
    """`trace`, with `command` started behind a handshake: after_go.py
    waits until the tracer's log has said every line of `ready` (with
    --native, that its process's native mappings are published: the
    interpreter's unwind tables read, on the tracer's thread for them) and
    then execs `command` as the same process. Without it a fixed amount of
    work can end before the tables are read on a loaded VM (sid: the
    interpreter read in 2.6 s, the loop's 751 samples all before)."""
    report = os.path.join(scratch(name), "report.json")
    tracer = Tracer([*args, "--format", "json", "-o", report, "--", PYTHON, workload("after_go.py"), *command],
                    stdin=subprocess.PIPE, log=log)
    started = time.monotonic()
    for line in ready:
        tracer.wait_for(line)
    tracer.process.stdin.write("go\n")
    tracer.process.stdin.close()
    where_if_exec_late(tracer)
    stderr = tracer.wait()
    size = os.path.getsize(report) >> 10 if os.path.exists(report) else -1
    print("(tracer: %.1f s, report %d KiB)" % (time.monotonic() - started, size), flush=True)
    print_said(stderr)
    return exact(load(report), stderr)


def print_said(log):
    """What the kernel skipped (each copy's runs) and the records the
    tracer handled late and the steps that held its loop, printed even
    when nothing was lost: on a preempting kernel, the second copies'
    work; a held loop or ring."""
    for line in log.splitlines():
        if "skipped" in line or "ring:" in line or "loop:" in line:
            print("said: %s" % line.strip())


def where_if_exec_late(tracer, seconds=3):
    """After the go: if the tracer has not said the exec within `seconds`
    (about 2 s on the emulated arm64 CPU where it works), where each of its threads
    and the workload's is, twice a second apart (sid, 2 runs in 26: the
    exec's record was handled only when the loop had ended)."""
    said = lambda: any(line is not None and "exec'd," in line for line in tracer.log)
    deadline = time.monotonic() + seconds
    with tracer.changed:
        while not said() and None not in tracer.log and time.monotonic() < deadline:
            tracer.changed.wait(deadline - time.monotonic())
        if said() or None in tracer.log:
            return
    print("exec not said %d s after the go; where everyone is:" % seconds, flush=True)
    for _ in range(2):
        for line in where_everyone_is():
            print("ps: %s" % line)
        with open("/proc/loadavg") as f:
            print("loadavg: %s" % f.read().strip(), flush=True)
        time.sleep(1)


def read_log():
    """What the running or last `trace` or `Tracer` logged so far."""
    if RUNNING:
        return "".join(line for line in list(RUNNING[0].log) if line)
    if not LOG_FILE:
        return ""
    with open(LOG_FILE[0], errors="replace") as f:
        return f.read()


class TimeLimit(Exception):
    pass


def on_time_limit(signum, frame):
    """`timeout` ends a check at its limit with SIGTERM: say where every
    process was (a hang shows there) while the tracer still runs, then fail
    with the tracer's log (`main`)."""
    print("FAILED: killed at the check's time limit after %.1f s; where everyone was:"
          % (time.monotonic() - STARTED[0]), flush=True)
    for line in where_everyone_is():
        print("ps: %s" % line)
    sys.stdout.flush()
    raise TimeLimit()


def where_everyone_is():
    """Each process and thread but the kernel's: state, wchan, and the
    tracer's and the workloads' kernel stacks."""
    lines = []
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        for tid in sorted(os.listdir("/proc/%s/task" % pid) if os.path.isdir(
                "/proc/%s/task" % pid) else [], key=int):
            base = "/proc/%s/task/%s/" % (pid, tid)
            try:
                with open(base + "stat") as f:
                    stat = f.read()
                with open(base + "wchan") as f:
                    wchan = f.read()
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if not cmdline:
                continue  # a kernel thread
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            state = stat[stat.rindex(")") + 2:].split()[0]
            lines.append("%s/%s %s %s wchan=%s  %s" % (pid, tid, comm, state, wchan, cmdline[:100]))
            if "tracer" in cmdline or "python" in cmdline and "checks.py" not in cmdline:
                try:
                    with open(base + "stack") as f:
                        lines.extend("    " + l for l in f.read().splitlines()[:12])
                except OSError:
                    pass
    return lines


def exact(report, log):
    """The report, once it says nothing was lost or dropped and it is
    complete (`log`: the tracer's stderr, for the skipped runs it names)."""
    check(report["events"]["lost"] == 0, "events lost: %s" % report["events"])
    dropped = {k: v for k, v in report["events"]["dropped"].items() if v}
    skipped = "\n".join(line for line in log.splitlines() if "skipped" in line)
    check(not dropped, "dropped: %s\n%s" % (dropped, skipped))
    check(report["complete"] is True, "report not complete: %s" % report["warnings"])
    return report


def kernel_version():
    """(major, minor) of the running kernel."""
    return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])


def load(path):
    with open(path) as f:
        return json.load(f)


def entry(report, pid, path):
    for row in report["reads"]:
        if row["pid"] == pid and row["path"] == path:
            return row
    have = ["%s %s" % (r["pid"], r["path"]) for r in report["reads"]]
    raise Failed("no reads row for %d %s; the report has %s" % (pid, path, have))


def one(rows, pid, what):
    found = [r for r in rows if r["pid"] == pid]
    check(len(found) == 1, "%s %d: %s" % (what, pid, dump(rows)))
    return found[0]


def line_of(path, needle):
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if needle in line:
                return number
    raise Failed("%r not in %s" % (needle, path))


def reads(name="reads"):
    """matrix_proc.py: 37 os.read(fd, 4096) of /proc/self/stat, and 40
    buffered openings of /proc/self/status in 1 KiB requests (st_blksize):
    ceil(bytes / 1024) + 1 syscalls each, exactly."""
    out = os.path.join(scratch(name), "facts.json")
    report = trace(name, [PYTHON, workload("matrix_proc.py"), out])
    facts = load(out)
    pid = facts["pid"]
    check(report["target"]["pid"] == pid, "target %s" % report["target"])
    check(report["python"]["version"] == facts["version"], dump(report["python"]))
    stat = entry(report, pid, "/proc/self/stat")
    check(stat["syscalls"] == 37, dump(stat))
    check(stat["request_sizes"] == {"4096": 37}, dump(stat))
    check(stat["by_syscall"] == {"read": 37}, dump(stat))
    check(stat["opens"] == 1 and stat["bytes"] == facts["stat_bytes"], dump(stat))
    check((stat["fs"], stat["blksize"]) == ("proc", 1024), dump(stat))
    status = entry(report, pid, "/proc/self/status")
    sizes = facts["status_sizes"]
    syscalls = sum(-(-n // 1024) + 1 for n in sizes)
    check(status["opens"] == 40, dump(status))
    check(status["request_sizes"] == {"1024": syscalls}, dump(status))
    check(status["syscalls"] == syscalls and status["bytes"] == sum(sizes), dump(status))
    print("ok /proc/self/status: %d syscalls of 1 KiB, %d bytes" % (syscalls, sum(sizes)))


def contended():
    """The reads scenario while three untraced processes make syscalls as fast
    as they can on the same CPU: the syscall hooks run for them too, and
    where the kernel preempts the hooks' runs (7.x), theirs and the traced
    process's interleave in the hooks' per-CPU state (the cached answer to
    "is this process traced"). The traced process's figures stay exact,
    nothing lost."""
    spin = "import os\nwhile True:\n    os.getppid()"
    spinners = [subprocess.Popen([PYTHON, "-c", spin]) for _ in range(3)]
    try:
        reads("contended")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def threads():
    """matrix_threads.py: 100 threads, each ended while traced: a scheduling
    row for every one under its process, and for nothing else, each having
    left a CPU asleep at least once (its exit). These are the rows the
    kernel sends as a thread ends (a one-off trace's `thread_rows`, which
    follow the mode alone: on 5.10, which counts reads per file, as on 7.x)."""
    out = os.path.join(scratch("threads"), "facts.json")
    report = trace("threads", [PYTHON, workload("matrix_threads.py"), out], log=ROWS_SAID)
    facts = load(out)
    pid = facts["pid"]
    tids = set(facts["threads"])
    check(len(tids) == 100, "the workload's threads: %d" % len(tids))
    # Every row of the report was sent as its thread ended: none was left
    # for the table read at the end (which alone would give the same rows).
    said = [line for line in LAST_LOG if "rows came as the threads ended" in line]
    ended = "%d threads' rows came" % len(report["sched"]["threads"])
    check(len(said) == 1 and ended in said[0] and "the table held 0 at the end" in said[0],
          "\n".join(said) or "\n".join(LAST_LOG[-20:]))
    rows = {t["tid"]: t for t in report["sched"]["threads"] if t["pid"] == pid}
    missing = sorted(tids - set(rows))
    check(not missing, "no row for %d thread(s), e.g. %s" % (len(missing), missing[:10]))
    check(set(rows) == tids | {pid}, "rows of other threads: %s" % sorted(set(rows) - tids - {pid}))
    for tid in tids:
        row = rows[tid]
        check(row["voluntary"] >= 1 and row["asleep_at_end_ns"] == 0, dump(row))
    print("ok %d threads' rows, each sent as its thread ended" % len(tids))


def writes():
    """writes.py: 400 x 4 KiB into a pipe whose reader is slow (the writer
    blocks), 300 line-buffered lines to a log with 30 fsyncs, 100 sends
    of 1,000 bytes on a TCP connection closed at once (named from the
    kernel's read of its ends), exactly."""
    directory = scratch("writes")
    out = os.path.join(directory, "facts.json")
    report = trace("writes", [PYTHON, workload("writes.py"), out, directory])
    facts = load(out)
    pid = facts["pid"]
    rows = [r for r in report["writes"] if r["pid"] == pid]
    pipe = [r for r in rows if r["fs"] == "pipe"]
    check(len(pipe) == 1, dump(rows))
    pipe = pipe[0]
    check((pipe["syscalls"], pipe["bytes"]) == (400, 400 * 4096), dump(pipe))
    check(pipe["context_switches"]["voluntary"] >= 3, dump(pipe))
    log = [r for r in rows if r["path"] == facts["log"]]
    check(len(log) == 1, dump(rows))
    log = log[0]
    check(log["by_syscall"] == {"write": 300, "fsync": 30}, dump(log))
    check(log["bytes"] == facts["log_bytes"], dump(log))
    peer = "127.0.0.1:%d" % facts["port"]
    tcp = [r for r in rows if r["peer"] == peer]
    check(len(tcp) == 1, dump(rows))
    check(tcp[0]["by_syscall"] == {"sendto": 100} and tcp[0]["bytes"] == 100000, dump(tcp))
    kinds = {f["kind"] for f in report["findings"] if f["concern"] == "writes"}
    check(kinds == {"blocked_writes", "write_per_line", "sync_per_record"}, kinds)
    print("ok pipe: 400 writes, %d blocked; log: 300 writes, 30 fsyncs; TCP: 100 sends"
          % pipe["context_switches"]["voluntary"])


def zombies():
    """matrix_zombies.py: 3 Popen children never waited for, zombies for the
    parent's measured sleep, each spawned from the Popen line, then reaped
    by the traced subreaper they were handed to. The workload forks once
    the tracer samples it (a go-ahead on its standard input)."""
    out = os.path.join(scratch("zombies"), "facts.json")
    report_path = os.path.join(scratch("zombies"), "report.json")
    script = workload("matrix_zombies.py")
    tracer = Tracer(["--format", "json", "-o", report_path, "--", PYTHON, script, out,
                     "--go-on-stdin"], stdin=subprocess.PIPE)
    tracer.wait_for("is sampled from now on")
    tracer.process.stdin.write("go")
    tracer.process.stdin.close()
    log = tracer.wait()
    report = exact(load(report_path), log)
    facts = load(out)
    reaper, parent, children = facts["reaper"], facts["parent"], facts["children"]
    check(len(children) == 3, facts)
    check(len(report["processes"]) == 5, dump(report["processes"]))
    # The children, and the parent for the moment before the subreaper
    # waited for it.
    check(len(report["zombies"]) == 4, dump(report["zombies"]))
    z = one(report["zombies"], parent, "zombie")
    check((z["reaped_how"], z["reaped_by"]) == ("wait4", reaper), dump(z))
    popen = "spawn (%s:%d)" % (script, line_of(script, "subprocess.Popen("))
    for child in children:
        p = one(report["processes"], child, "process")
        check((p["ppid"], p["comm"], p["exit_code"]) == (parent, "true", 0), dump(p))
        z = one(report["zombies"], child, "zombie")
        check(z["ppid"] == parent and z["exit_code"] == 0, dump(z))
        check(z["zombie_ns"] >= facts["sleep_ns"], dump(z))
        check(z["parent_wait_calls"] == 0 and z["sigchld_unanswered"] is True, dump(z))
        # The parent left without waiting: not it, the subreaper reaped them.
        check((z["reaped_how"], z["reaped_by"]) == ("init", reaper), dump(z))
        check(popen in (z.get("spawned_from") or []), "%s not in %s" % (popen, dump(z)))
    print("ok 3 zombies, reaped by their subreaper %d, spawned from %s" % (reaper, popen))


def signals():
    """Signals to a Python handler, then a killed worker's threads."""
    signal_handler()
    killed_worker()


def signal_handler():
    """signals_self.py: 25 kill() and 3 pthread_kill() SIGUSR1 to a Python
    handler, each generated, delivered and handled."""
    out = os.path.join(scratch("signals"), "facts.json")
    report = trace("signals", [PYTHON, workload("signals_self.py"), out])
    facts = load(out)
    pid, n, t = facts["pid"], facts["sent"], facts["sent_to_thread"]
    check((n, t, facts["handled"]) == (25, 3, 28), facts)
    groups = [
        g for g in report["signals"] if g["signal"] == "SIGUSR1" and g["target"]["pid"] == pid
    ]
    check(len(groups) == 2, dump(groups))
    for code, syscall, count in (("SI_USER", "kill", n), ("SI_TKILL", "tgkill", t)):
        g = [g for g in groups if g["code"] == code]
        check(len(g) == 1, "no %s group: %s" % (code, dump(groups)))
        g = g[0]
        check(g["syscall"] == syscall and g["sender"]["pid"] == pid, dump(g))
        check((g["generated"], g["delivered"], g["ignored"]) == (count, count, 0), dump(g))
        check(g["disposition"] == "handler" and g["pending_at_end"] == 0, dump(g))
    check(report["signal_log"]["total"] == 2 * (n + t), dump(report["signal_log"]))
    print("ok SIGUSR1: 25 kill + 3 tgkill generated, delivered to the handler")


def killed_worker():
    """killed_worker.py: a parent SIGKILLs its worker; the worker's three
    threads as they died, each at the line it was on."""
    out = os.path.join(scratch("killed"), "facts.json")
    script = workload("killed_worker.py")
    report = trace("killed", [PYTHON, script, out, "KILL"])
    facts = load(out)
    worker = facts["worker"]
    check(facts["signal"] == 9, facts)
    groups = [
        g for g in report["signals"] if g["signal"] == "SIGKILL" and g["target"]["pid"] == worker
    ]
    check(len(groups) == 1 and groups[0]["killed"] == 1, dump(groups))
    threads = groups[0].get("threads_at_death", [])
    check(len({t["tid"] for t in threads}) == 3, dump(groups[0]))
    main = [t for t in threads if t["tid"] == worker]
    check(main and main[0]["python_stack"][0] == "serve (%s:%d)" % (script, facts["serve_line"]),
          dump(threads))
    wait = "wait_forever (%s:%d)" % (script, facts["wait_line"])
    check(any(wait in t["python_stack"] for t in threads), dump(threads))
    check(any(t["python_stack"][0].startswith("spin (%s:" % script) for t in threads),
          dump(threads))
    print("ok SIGKILL: the worker's 3 threads as they died")


def calibrated(name, python, root, version):
    """python_calibrated.py: `heavy` and `inner` sampled, named with their
    file and def line, and the chains main;heavy and main;outer;inner in
    folded output. `heavy`'s share of the loop's samples is its share of
    the loop's CPU time as the workload measured it, within 4 standard
    errors of a share of that many samples and a point for the measure's
    own error (with ~700 samples under TCG, where the share strays from
    the 70% design: 7.5 points; the host's 5 points assume more samples)."""
    inside = "/checks/workloads/python_calibrated.py"
    out_inside = "/tmp/calibrated.json"
    folded = os.path.join(scratch(name), "stacks.folded")
    command = [python, inside, out_inside, "2"]
    if root:
        command = ["chroot", root] + command
    report = trace(name, command, ["--rate", str(RATE), "--folded", folded])
    facts = load(root + out_inside)
    py = report["python"]
    check(py["status"] == "sampled" and py["version"].startswith(version), dump(py))
    check(py["samples"] >= 100 and py["samples_lost"] == 0, dump(py))
    hotspots = {h["qualname"]: h for h in py["hotspots"]}
    for function, def_line in (("heavy", 16), ("inner", 23)):
        h = hotspots.get(function)
        check(h is not None, "no hotspot %s: %s" % (function, dump(py["hotspots"])))
        check(h["self_samples"] > 0, dump(h))
        check((h["file"], h["line"]) == (inside, def_line), dump(h))
    with open(folded) as f:
        stacks = f.read()
    for chain in (("<module>", "main", "outer", "inner"), ("<module>", "main", "heavy")):
        chain = ";".join("%s (%s)" % (f, inside) for f in chain)
        check(
            any(line.rsplit(" ", 1)[0].endswith(chain) for line in stacks.splitlines()),
            "no %s in\n%s" % (chain, stacks),
        )
    loop = hotspots["heavy"]["self_samples"] + hotspots["inner"]["self_samples"]
    shares = {f: 100.0 * hotspots[f]["self_samples"] / loop for f in ("heavy", "inner")}
    measured = facts["share"]["heavy"]
    bound = 4 * 100.0 * (measured / 100 * (1 - measured / 100) / loop) ** 0.5 + 1
    check(
        abs(shares["heavy"] - measured) <= bound,
        "heavy: %.1f%% of the loop's %d samples, %.1f%% of its CPU (bound %.1f points): %s"
        % (shares["heavy"], loop, measured, bound, dump(py["hotspots"])),
    )
    print(
        "ok %s: of the loop's %d samples heavy %.1f%% (%.1f%% of its CPU), inner %.1f%% (%.1f%%)"
        % (py["version"], loop, shares["heavy"], facts["share"]["heavy"],
           shares["inner"], facts["share"]["inner"])
    )


def hotspots_3_9():
    calibrated("hotspots-3.9", "python3.9", "", "3.9.")


def hotspots_3_13():
    calibrated("hotspots-3.13", "python3.13", TRIXIE, "3.13.")


def hotspots_3_11():
    calibrated("hotspots-3.11", "python3.11", "", "3.11.")


def native():
    """--native: zlib_loop.py spends its time in zlib's C code under
    `compress_loop`; the native frames beneath that Python frame are
    zlib's (`deflate`, named from libz's symbols), unwound in the kernel
    from the binaries' unwind tables. Before 5.17 (no bpf_loop) native
    frames are said missing, and no sample has one."""
    # Before 5.17 nothing is published (native frames are said missing).
    ready = ["is sampled from now on"] + (["native mappings published"] if kernel_version() >= (5, 17) else [])
    report = trace_after_go("native", [PYTHON, workload("zlib_loop.py"), "60"],
                            ["--native", "--rate", str(RATE)], NATIVE_SAID, ready)
    py = report["python"]
    check(py["status"] == "sampled" and py["samples_lost"] == 0, dump(py))
    if kernel_version() < (5, 17):
        said = [w for w in report["warnings"] if "native frames" in w]
        check(len(said) == 1, "native frames not said missing: %s" % report["warnings"])
        with_native = sum(s["samples"] for s in py["stacks"]
                          if any(f.get("native") for f in s["frames"]))
        check(with_native == 0, "%d samples with native frames: %s" % (with_native, dump(py["stacks"])))
        print("ok native: said missing on %s (%s)" % (os.uname().release, said[0]))
        return
    # Samples show no native frame under the loop when they came before
    # the tracer had read the binaries' unwind tables (behind the
    # handshake: a library loaded since the interpreter's were), or when
    # every native frame was the interpreter's own or the C library as it
    # calls it, left out (docs/report-schema-python.md, `native`; on the
    # arm64 VM, 4 in 5 of the loop's samples: the interpreter's free()
    # of zlib's buffers giving the heap back by brk). Among the others,
    # zlib's frames under the loop.
    in_loop = unwound = with_deflate = 0
    for stack in py["stacks"]:
        names = [f["function"] for f in stack["frames"]]
        if "compress_loop" not in names:
            continue
        in_loop += stack["samples"]
        if not any(f.get("native") for f in stack["frames"]):
            continue
        unwound += stack["samples"]
        inner = stack["frames"][: names.index("compress_loop")]
        if any(f["function"] == "deflate" and "libz" in (f.get("file") or "") for f in inner):
            with_deflate += stack["samples"]
    check(unwound >= 30, "compress_loop sampled %d times with a native stack (of %d); unwinder: %s; %s"
          % (unwound, in_loop, dump(py.get("native")), dump(py["stacks"])))
    check(
        with_deflate * 2 >= unwound,
        "deflate under compress_loop in %d of %d samples: %s" % (with_deflate, unwound, dump(py["stacks"])),
    )
    print("ok native: deflate under compress_loop in %d of the %d samples with a native frame "
          "(%d without one); %s"
          % (with_deflate, unwound, in_loop - unwound, dump(py.get("native"))))


def samples_in(python, pid, function):
    total = 0
    for stack in python["stacks"]:
        if stack["pid"] == pid and any(f["function"] == function for f in stack["frames"]):
            total += stack["samples"]
    return total


def print_samples_said(facts, report, pid, owner):
    """The workers' processes rows, and every sample of `pid` as the
    tracer logged it (`SAMPLES_SAID`: its code objects' addresses as the
    kernel sent them, and its names) with the first of `owner`'s."""
    print("workers: %s" % dump([p for p in report["processes"]
                                if p["pid"] in [run["pid"] for run in facts["runs"]]]))
    of_owner = 0
    for line in LAST_LOG:
        if " %d/" % pid in line and " codes " in line:
            print("said: %s" % line)
        elif " %d/" % owner in line and " codes " in line and of_owner < 5:
            of_owner += 1
            print("said: %s" % line)


def tree():
    """python_tree.py prefork: three os.fork() workers, each burning in its
    own serve_* function: each one a process of the tree under its parent,
    sampled in its function, which no other process is."""
    out = os.path.join(scratch("tree"), "facts.json")
    report = trace(
        "tree",
        [PYTHON, workload("python_tree.py"), "prefork", out, "0.5"],
        ["--rate", str(RATE)],
        log=SAMPLES_SAID,
    )
    facts = load(out)
    check(len(facts["runs"]) == 3, facts)
    for run in facts["runs"]:
        p = one(report["processes"], run["pid"], "process")
        check(p["ppid"] == facts["parent"] and p["exit_code"] == 0, dump(p))
    python = report["python"]
    check(python["status"] == "sampled" and python["samples_lost"] == 0, dump(python))
    for run in facts["runs"]:
        pid, function = run["pid"], run["function"]
        got = samples_in(python, pid, function)
        check(got > 0, "%s in %d: no sample: %s" % (function, pid, dump(python["stacks"])))
        for other in facts["runs"]:
            if other["pid"] != pid and samples_in(python, other["pid"], function) > 0:
                print_samples_said(facts, report, other["pid"], pid)
                check(False, "%s in %d, not its own: %s" % (
                    function, other["pid"], dump([s for s in python["stacks"] if s["pid"] == other["pid"]
                                                  and any(f["function"] == function for f in s["frames"])])))
    print("ok 3 forked workers, each sampled in its own serve_* function")


class Tracer:
    """A tracer running in the background, its -v log read as it comes (on
    a thread: a full pipe would stop the tracer)."""

    def __init__(self, args, stdin=None, log=None):
        argv = ["tracer", "-v", *args]
        print("$ " + " ".join(argv), flush=True)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", ",".join(["info", SKIPPED_SAID, RING_SAID] + ([log] if log else [])))
        self.process = subprocess.Popen(
            argv, stdin=stdin, stderr=subprocess.PIPE, universal_newlines=True, env=env
        )
        self.log = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        RUNNING[:] = [self]

    def read(self):
        for line in self.process.stderr:
            with self.changed:
                self.log.append(line)
                self.changed.notify_all()
        with self.changed:
            self.log.append(None)
            self.changed.notify_all()

    def wait_for(self, needle, seconds=180):
        """Until the log has a line with `needle` (maybe said before this
        call: a process taken in at the start is said before "tracing")."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while not any(line is not None and needle in line for line in self.log):
                left = deadline - time.monotonic()
                check(None not in self.log and left > 0, "no %r in the tracer's log:\n%s" % (
                    needle, "".join(line for line in self.log if line)[-6000:]))
                self.changed.wait(left)

    def stop(self):
        """Stops the tracer; its log, once it exited 0."""
        self.process.send_signal(signal.SIGINT)
        return self.wait()

    def wait(self):
        """Its log, once it exited 0 (a launched command's end ends it)."""
        code = self.process.wait()
        self.reader.join()
        RUNNING.clear()
        log = "".join(line for line in self.log if line)
        LAST_LOG[:] = log.splitlines()
        check(code == 0, "tracer exited %d:\n%s" % (code, log[-6000:]))
        return log


def burner(command):
    """node_burn.py under `command`: started, its pid read."""
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True
    )
    ready = child.stdout.readline().split()
    check(ready[:1] == ["ready"], "node_burn.py said %r" % ready)
    return child, int(ready[1])


def node_wide():
    """--all: a Python that ran before the trace and one that started after
    (python3.13 in its own root where the VM has trixie's, else the same
    interpreter: arm64's one CPython), each in its own row, sampled in
    burn."""
    report_path = os.path.join(scratch("all"), "report.json")
    version = PYTHON[len("python"):] + "."
    before, before_pid = burner([PYTHON, workload("node_burn.py"), "0.3"])
    tracer = Tracer(["--all", "--format", "json", "-o", report_path])
    tracer.wait_for("tracing")
    if os.path.isdir(TRIXIE):
        command = ["chroot", TRIXIE, "python3.13", "/checks/workloads/node_burn.py", "0.3"]
        after_version, where = "3.13.", "3.13 in its root"
    else:
        command = [PYTHON, workload("node_burn.py"), "0.3"]
        after_version, where = version, "another"
    after, after_pid = burner(command)
    for child, pid in ((before, before_pid), (after, after_pid)):
        tracer.wait_for("pid %d: Python thread %d is sampled from now on" % (pid, pid))
        child.stdin.write("go\n")
        child.stdin.flush()
        check(child.stdout.readline().strip() == "done", "no done from %d" % pid)
        child.stdin.close()
        child.wait()
    log = tracer.stop()
    report = exact(load(report_path), log)
    check(report["target"]["scope"] == "all", dump(report["target"]))
    for pid, expected in ((before_pid, version), (after_pid, after_version)):
        row = one(report["python"]["processes"], pid, "python.processes row")
        check(row["status"] == "sampled" and row["version"].startswith(expected), dump(row))
        check(
            any(h["function"] == "burn" and h["self_samples"] > 0 for h in row["hotspots"]),
            dump(row),
        )
    print("ok --all: %s from before the trace, %s started after" % (version[:-1], where))


def serve():
    """--serve: the endpoint answers /metrics with the traced process's
    figures while it runs, in OpenMetrics text."""
    child, pid = burner([PYTHON, workload("node_burn.py"), "0.3"])
    address = "127.0.0.1:9464"
    final = os.path.join(scratch("serve"), "final.prom")
    tracer = Tracer(["--pid", str(pid), "--serve", address, "-o", final])
    tracer.wait_for("pid %d: Python thread %d is sampled from now on" % (pid, pid))
    child.stdin.write("go\n")
    child.stdin.flush()
    check(child.stdout.readline().strip() == "done", "no done")
    # The endpoint folds the kernel's figures every refresh: poll until the
    # burn's samples are there, or a minute passed.
    wanted = 'tracer_python_samples_total{pid="%d",function="burn"}' % pid
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen("http://%s/metrics" % address, timeout=60) as answer:
            check(answer.status == 200, answer.status)
            body = answer.read().decode()
        check(body.endswith("# EOF\n"), body[-2000:])
        samples = [line for line in body.splitlines() if line.startswith(wanted)]
        if samples and float(samples[0].rsplit(" ", 1)[1]) > 0:
            break
        check(time.monotonic() < deadline, "no %s after a minute:\n%s" % (wanted, body[:4000]))
        time.sleep(0.2)
    child.stdin.close()
    child.wait()
    log = tracer.stop()
    # The final figures, as the endpoint's: nothing lost or dropped.
    with open(final) as f:
        series = f.read()
    lost = [line for line in series.splitlines() if line.startswith("tracer_events_lost_total ")]
    skipped = "\n".join(line for line in log.splitlines() if "skipped" in line)
    check(lost == ["tracer_events_lost_total 0"], "events lost: %s\n%s" % (lost, skipped))
    print("ok --serve answered /metrics: %s" % samples[0])


def kernel_oom_message(pid):
    """The kernel log's "Killed process PID (...)" line, from /dev/kmsg."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    found = None
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            if "Killed process %d (" % pid in record:
                found = record
    finally:
        os.close(fd)
    check(found, "no 'Killed process %d' in the kernel log" % pid)
    return found


def oom():
    """oom_worker.py: a worker grows in a cgroup v2 limited to 200 MiB until
    the OOM killer kills it: the kill with its cgroup, limit and the
    worker's resident memory, the SIGKILL's sender, the line it grew on."""
    cgroup = "/sys/fs/cgroup/tracer-oom"
    with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
        f.write("+memory")
    if not os.path.isdir(cgroup):
        os.mkdir(cgroup)
    limit = 200 << 20
    with open(os.path.join(cgroup, "memory.max"), "w") as f:
        f.write(str(limit))
    if os.path.exists(os.path.join(cgroup, "memory.swap.max")):
        with open(os.path.join(cgroup, "memory.swap.max"), "w") as f:
            f.write("0")
    out = os.path.join(scratch("oom"), "facts.json")
    script = workload("oom_worker.py")
    report = trace("oom", [PYTHON, script, out, cgroup])
    os.rmdir(cgroup)
    facts = load(out)
    worker, held = facts["worker"], facts["chunks"] * facts["chunk_bytes"]
    check(facts["signal"] == 9 and held > 0, facts)
    kills = report["memory"]["oom_kills"]
    check(len(kills) == 1, dump(kills))
    kill = kills[0]
    check((kill["pid"], kill["scope"], kill["cgroup"], kill["limit_bytes"])
          == (worker, "cgroup", "/tracer-oom", limit), dump(kill))
    check(kill["anon_rss_bytes"] >= held and kill["rss_bytes"] < limit + (64 << 20), dump(kill))
    # The kernel's own "Killed process" line says the same, to what each
    # CPU has not yet folded into the counters (since 6.2 they are per-CPU
    # counters, which the kernel's message sums from 6.16 on).
    said = kernel_oom_message(worker)
    cpus = os.cpu_count()
    unfolded = cpus * max(32, 2 * cpus) * 4096
    for field, key in (("anon-rss", "anon_rss_bytes"), ("file-rss", "file_rss_bytes"),
                       ("shmem-rss", "shmem_rss_bytes")):
        kib = int(said.split(field + ":")[1].split("kB")[0])
        check(abs(kib * 1024 - kill[key]) <= unfolded, "%s: %s / %s" % (key, said, dump(kill)))
    process = [p for p in report["processes"] if p["pid"] == worker]
    check(process and process[0].get("killed_by") == "oom_killer", dump(process))
    groups = [
        g for g in report["signals"] if g["signal"] == "SIGKILL" and g["target"]["pid"] == worker
    ]
    check(len(groups) == 1 and groups[0]["sender"].get("oom_killer"), dump(groups))
    main = [t for t in groups[0].get("threads_at_death", []) if t["tid"] == worker]
    grow = "grow (%s:%d)" % (script, facts["grow_line"])
    check(main and main[0]["python_stack"][0] == grow, dump(groups[0]))
    # What grew it: the chunks charged to its line.
    row = memory_row(report, worker)
    line = row["lines"][0]
    check((line["function"], line["line"]) == ("grow", facts["grow_line"])
          and line["bytes"] >= held and row["peak_rss_bytes"] >= kill["anon_rss_bytes"], dump(row))
    print("ok OOM kill: %s of %s, %d MiB resident, at %s, %d MiB grown there"
          % (kill["cgroup"], kill["limit_bytes"] >> 20, kill["rss_bytes"] >> 20, grow,
             line["bytes"] >> 20))


def memory_row(report, pid):
    memory = report["memory"]
    print("memory: %s; python samples lost %s" % (
        dump({k: v for k, v in memory.items() if k not in ("processes", "oom_kills")}),
        report["python"].get("samples_lost")))
    rows = [p for p in memory["processes"] if p["pid"] == pid]
    check(len(rows) == 1, dump(memory))
    return rows[0]


def hex_value(text):
    return int(text, 16)


def thp_collapses():
    """Huge pages khugepaged has made on the node (/proc/vmstat)."""
    with open("/proc/vmstat") as f:
        return sum(int(row.split()[1]) for row in f if row.startswith("thp_collapse_alloc "))


def growth():
    """memory_growth.py: 48 MiB kept from one line of the main thread and
    16 MiB from one of a second thread; each line is charged what it
    faulted in, the samples add up to the process's minor faults and its
    peak is its ru_maxrss."""
    out = os.path.join(scratch("growth"), "facts.json")
    script = workload("memory_growth.py")
    collapses = thp_collapses()
    report = trace("growth", [PYTHON, script, out], log=GROWTH_SAID)
    collapses = thp_collapses() - collapses
    facts = load(out)
    sample = report["memory"]["growth_sample_bytes"]
    check(sample == 256 << 10, dump(report["memory"]))
    # Held by its exec until its interpreter (in the executable) was
    # known: every fault of its program is sampled with it, from the first.
    check(report["memory"]["fault_samples_without_interpreter"] == 0, dump(report["memory"]))
    row = memory_row(report, facts["pid"])
    # Pages khugepaged collapsed in are no line's, and only where it did.
    print("huge pages: %s; as the thread ended: %s; khugepaged collapsed %d during the trace, "
          "%d KiB of the report's" % (dump(facts["huge_pages"]),
                                     dump(facts["huge_pages_in_thread"]),
                                     collapses, row["collapsed_bytes"] >> 10))
    check(row["collapsed_bytes"] == 0 or collapses > 0, dump(row))
    spans = ["%s's %s..%s" % (thread, min(at, key=hex_value), max(at, key=hex_value))
             for thread, at in facts["arrays"].items()]
    print("the thread's run mapped %d KiB of huge pages outside the arrays; arrays: %s"
          % (facts["thread_huge_bytes"] >> 10, ", ".join(spans)))
    print("lines: %s" % dump([(e["function"], e["line"], e["bytes"], e["samples"]) for e in row["lines"]][:8]))
    first = row["rss"][0] if row["rss"] else None
    print("resident at the workload's start %d KiB, at the first sample %s"
          % (facts["resident_at_start"] >> 10, first and "%d KiB (%.3f s)" % (first["bytes"] >> 10, first["t_s"])))
    # The huge page a thread's stack got on some runs (before 6.7) is the
    # resident memory its line grew too.
    for line, kept, huge in (("main_line", "main_bytes", 0),
                             ("thread_line", "thread_bytes", facts["thread_huge_bytes"])):
        charged = sum(entry["bytes"] for entry in row["lines"]
                      if entry["line"] == facts[line] and entry["file"] == script)
        kept = facts[kept]
        # A sample's worth at each end of the line's run; less what
        # khugepaged mapped (no line's), where it collapsed a block of
        # arrays being filled.
        check(charged + 2 * sample + row["collapsed_bytes"] >= kept
              and charged <= kept + kept // 256 + 2 * sample + huge,
              "%s: %d for %d and %d of huge pages: %s" % (line, charged, kept, huge, dump(row)))
    sampled = row["samples"] * (sample // 4096)
    check(sampled <= facts["minflt"] + sample // 4096 and sampled * 10 >= facts["minflt"] * 9,
          "%d of %d faults sampled: %s" % (sampled, facts["minflt"], dump(row)))
    peak, maxrss = row["peak_rss_bytes"], facts["maxrss_bytes"]
    check(maxrss <= peak <= maxrss + (1 << 20), "%d for %d: %s" % (peak, maxrss, dump(row)))
    print("ok memory growth: grew %d MiB, peak %d MiB (ru_maxrss %d MiB)"
          % (row["grown_bytes"] >> 20, peak >> 20, maxrss >> 20))


def collapse():
    """huge_page_collapse.py: khugepaged collapses a range the workload
    touched one page of, mapping the other 511: they are the report's
    collapsed_bytes, not the line's whose samples come next."""
    knob = "/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs"
    with open(knob) as f:
        was = f.read().strip()
    out = os.path.join(scratch("collapse"), "facts.json")
    script = workload("huge_page_collapse.py")
    # khugepaged scans every 10 s by default: every 10 ms while it runs.
    with open(knob, "w") as f:
        f.write("10")
    try:
        report = trace("collapse", [PYTHON, script, out])
    finally:
        with open(knob, "w") as f:
            f.write(was)
    facts = load(out)
    check(facts["collapsed"], "khugepaged did not collapse the range: %s" % dump(facts))
    row = memory_row(report, facts["pid"])
    page = facts["page"]
    collapsed = row["collapsed_bytes"] // page
    check(collapsed >= 511, "%d pages collapsed in: %s" % (collapsed, dump(row)))
    # The line faulting after it is charged its own pages, as in growth().
    sample = report["memory"]["growth_sample_bytes"]
    after = sum(entry["bytes"] for entry in row["lines"]
                if entry["line"] == facts["after_line"] and entry["file"] == script)
    kept = facts["after_bytes"]
    check(after + 2 * sample >= kept and after <= kept + 2 * sample,
          "after_line: %d for %d: %s" % (after, kept, dump(row)))
    print("ok huge page collapsed: %d pages no line's; the line after it charged %d KiB for %d"
          % (collapsed, after >> 10, kept >> 10))


def features():
    """What the report says this kernel lacks: exactly the features older
    than its version, each once."""
    report = trace("features", ["/bin/true"])
    release = os.uname().release
    version = kernel_version()
    # The scheduler's own word on how it preempts (debugfs is mounted
    # here): "none voluntary full (lazy)", the current one in parentheses.
    try:
        with open("/sys/kernel/debug/sched/preempt") as f:
            model = f.read().split("(")[1].split(")")[0]
    except (OSError, IndexError):
        model = "?"
    print("preemption: %s" % model)
    missing = {
        "fetching atomics": version < (5, 12),
        "native frames": version < (5, 17),
        # Syscall tracepoints may fault since 6.14: where the kernel also
        # preempts kernel code, the runs the kernel skips of the syscall
        # programs are taken by second copies (the other scenarios say none
        # is lost), nothing missing.
        "preempts kernel code": False,
    }
    for needle, expected in missing.items():
        said = [w for w in report["warnings"] if needle in w]
        check(len(said) == int(expected), "%s on %s: %s" % (needle, release, report["warnings"]))
    check(
        len(report["warnings"]) == sum(missing.values()),
        "unexpected warnings on %s: %s" % (release, report["warnings"]),
    )
    for warning in report["warnings"]:
        print("said: %s" % warning)
    print("ok %d feature(s) said missing on %s" % (len(report["warnings"]), release))


CHECKS = {
    "reads": reads,
    "contended": contended,
    "threads": threads,
    "writes": writes,
    "zombies": zombies,
    "signals": signals,
    "hotspots-3.9": hotspots_3_9,
    "hotspots-3.13": hotspots_3_13,
    "hotspots-3.11": hotspots_3_11,
    "native": native,
    "tree": tree,
    "all": node_wide,
    "serve": serve,
    "oom": oom,
    "growth": growth,
    "collapse": collapse,
    "features": features,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit("usage: checks.py {%s}" % ",".join(CHECKS))
    started = time.monotonic()
    STARTED[:] = [started]
    signal.signal(signal.SIGTERM, on_time_limit)
    try:
        CHECKS[sys.argv[1]]()
    except Failed as failed:
        print("FAILED: %s" % failed, flush=True)
        for line in LAST_LOG[-80:]:
            print("log: %s" % line)
        sys.exit(1)
    except TimeLimit:
        for line in (read_log().splitlines() or LAST_LOG)[-120:]:
            print("log: %s" % line)
        sys.stdout.flush()
        sys.exit(143)
    print("(%.1f s)" % (time.monotonic() - started))


if __name__ == "__main__":
    main()

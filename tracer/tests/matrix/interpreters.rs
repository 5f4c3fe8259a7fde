//! The interpreters of the matrix, how each is started, where its workload
//! files go, and the checks every test makes of the interpreter the report
//! names.

use super::*;

/// One interpreter of the matrix.
pub(crate) struct Interpreter {
    /// The test module's name, for messages.
    pub(crate) name: &'static str,
    /// Debian root: (variable `cargo xtask test` sets, its default directory).
    pub(crate) root: Option<(&'static str, &'static str)>,
    /// The interpreter as the process sees it (inside its root).
    pub(crate) python: &'static str,
    /// The version it must report: a prefix ("3.9.") or exact ("3.11.7").
    pub(crate) version: &'static str,
    /// The ELF holding the interpreter, as the process sees it.
    pub(crate) binary: &'static str,
    /// "static" or "shared".
    pub(crate) linkage: &'static str,
    /// A debug build (`--with-pydebug`).
    pub(crate) debug: bool,
    /// A free-threaded build (`--disable-gil`).
    pub(crate) free_threaded: bool,
    /// The request size of a buffered binary read of a procfs file, as
    /// strace shows this version making it.
    pub(crate) proc_buffer: u64,
}

pub(crate) const BULLSEYE_3_9: Interpreter = Interpreter {
    name: "Debian bullseye CPython 3.9",
    root: Some((
        "TRACER_PY39_ROOT",
        "/var/cache/tracer-tests/bullseye-python3.9",
    )),
    python: "/usr/bin/python3.9",
    version: "3.9.",
    binary: "/usr/bin/python3.9",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

pub(crate) const HOST_STATIC_3_11: Interpreter = Interpreter {
    name: "Debian /usr/bin/python3.11 (static)",
    root: None,
    python: "/usr/bin/python3.11",
    version: "3.11.",
    binary: "/usr/bin/python3.11",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

pub(crate) const PYENV_SHARED_3_11: Interpreter = Interpreter {
    name: "pyenv CPython 3.11.7 (shared libpython)",
    root: None,
    python: "/root/.pyenv/versions/3.11.7/bin/python3.11",
    version: "3.11.7",
    binary: "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
    linkage: "shared",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

pub(crate) const TRIXIE_3_13: Interpreter = Interpreter {
    name: "Debian trixie CPython 3.13",
    root: Some((
        "TRACER_PY313_ROOT",
        "/var/cache/tracer-tests/trixie-python3.13",
    )),
    python: "/usr/bin/python3.13",
    version: "3.13.",
    binary: "/usr/bin/python3.13",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

/// Debian's debug build of 3.13 (package python3.13-dbg, in the trixie root).
pub(crate) const TRIXIE_3_13_DEBUG: Interpreter = Interpreter {
    name: "Debian trixie CPython 3.13 debug build",
    python: "/usr/bin/python3.13d",
    binary: "/usr/bin/python3.13d",
    debug: true,
    ..TRIXIE_3_13
};

pub(crate) const SID_3_14: Interpreter = Interpreter {
    name: "Debian sid CPython 3.14",
    root: Some((
        "TRACER_PY314_ROOT",
        "/var/cache/tracer-tests/sid-python3.14",
    )),
    python: "/usr/bin/python3.14",
    version: "3.14.",
    binary: "/usr/bin/python3.14",
    linkage: "static",
    debug: false,
    free_threaded: false,
    // gh-117151: max(min(st_blksize, 8 MiB), 128 KiB).
    proc_buffer: 131072,
};

/// CPython 3.15 (Debian sid's python3.15, in the same root as 3.14).
pub(crate) const SID_3_15: Interpreter = Interpreter {
    name: "Debian sid CPython 3.15",
    python: "/usr/bin/python3.15",
    version: "3.15.",
    binary: "/usr/bin/python3.15",
    ..SID_3_14
};

/// Free-threaded CPython 3.13.5 (`--disable-gil`), built from Debian
/// trixie's source by `cargo xtask test` into the cache (static).
pub(crate) const FREE_THREADED_3_13: Interpreter = Interpreter {
    name: "free-threaded CPython 3.13",
    root: None,
    python: "/var/cache/tracer-tests/python3.13t/bin/python3.13t",
    version: "3.13.5",
    binary: "/var/cache/tracer-tests/python3.13t/bin/python3.13t",
    linkage: "static",
    debug: false,
    free_threaded: true,
    proc_buffer: 1024,
};

/// How the interpreter is started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launch {
    /// `chroot ROOT python` (no /proc inside: CPU-only workloads).
    Chroot,
    /// `unshare --mount --mount-proc --root=ROOT python`: its own root and
    /// /proc, the host's pid namespace. Host interpreters: `python` itself.
    MountNs,
    /// A container: `unshare --pid --fork --mount --mount-proc [--root=ROOT]
    /// python`, the interpreter is pid 1 of its own namespace, a child of
    /// `unshare`.
    PidNs,
}

impl Interpreter {
    /// Its Debian root, which must be there: `cargo xtask test` makes it.
    pub(crate) fn root_dir(&self) -> Option<PathBuf> {
        let (env, default) = self.root?;
        if let Ok(why) = std::env::var(format!("{env}_ERROR")) {
            panic!(
                "{}: `cargo xtask test` could not make its Debian root: {why}",
                self.name
            );
        }
        let dir = std::env::var_os(env)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        let python = dir.join(self.python.trim_start_matches('/'));
        assert!(
            python.exists(),
            "{}: no {} in {}: `cargo xtask test` (or `cargo xtask chroots`) makes this root \
             with debootstrap, or set {env} to one",
            self.name,
            self.python,
            dir.display()
        );
        Some(dir)
    }

    /// `python -B ARGS...` started as `launch` says.
    pub(crate) fn command(&self, launch: Launch, args: &[&str]) -> Vec<String> {
        if self.root.is_none() {
            assert!(
                Path::new(self.python).exists(),
                "{}: {} is missing",
                self.name,
                self.python
            );
        }
        let mut command: Vec<String> = match (self.root_dir(), launch) {
            (None, Launch::Chroot | Launch::MountNs) => vec![],
            (None, Launch::PidNs) => strings(&["unshare", "--pid", "--fork", "--mount-proc"]),
            (Some(root), Launch::Chroot) => vec!["chroot".into(), root.display().to_string()],
            (Some(root), Launch::MountNs) => {
                let mut c = strings(&["unshare", "--mount", "--mount-proc"]);
                c.push(format!("--root={}", root.display()));
                c
            }
            (Some(root), Launch::PidNs) => {
                let mut c = strings(&["unshare", "--pid", "--fork", "--mount", "--mount-proc"]);
                c.push(format!("--root={}", root.display()));
                c
            }
        };
        command.push(self.python.into());
        command.push("-B".into());
        command.extend(args.iter().map(|a| a.to_string()));
        command
    }
}

pub(crate) fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// One test's workload files where the interpreter can reach them: under
/// ROOT/tmp/tracer-tests/TEST for a rooted interpreter, in the test's
/// scratch directory otherwise. Paths are given as the process sees them.
pub(crate) struct Files {
    /// ROOT, or "" for host interpreters.
    pub(crate) root: String,
    /// The directory as the process sees it.
    pub(crate) inside: String,
}

impl Files {
    pub(crate) fn new(interpreter: &Interpreter, test: &str, scratch: &Scratch) -> Self {
        let (root, inside) = match interpreter.root_dir() {
            Some(root) => (
                root.display().to_string(),
                format!("/tmp/tracer-tests/{test}"),
            ),
            None => (String::new(), scratch.subdir("files")),
        };
        let files = Self { root, inside };
        let host = files.host(&files.inside);
        if files.root.is_empty() {
            std::fs::create_dir_all(&host).unwrap();
        } else {
            let _ = std::fs::remove_dir_all(&host);
            std::fs::create_dir_all(&host)
                .unwrap_or_else(|e| panic!("creating {}: {e}", host.display()));
        }
        files
    }

    /// Copies the workload into place; returns its path as the process sees it.
    pub(crate) fn script(&self, name: &str) -> String {
        let inside = format!("{}/{name}", self.inside);
        std::fs::copy(common::workload(name), self.host(&inside))
            .unwrap_or_else(|e| panic!("copying {name} into {}: {e}", self.inside));
        inside
    }

    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.inside)
    }

    /// A path as the process sees it -> as the test sees it.
    pub(crate) fn host(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("{}{inside}", self.root))
    }

    pub(crate) fn load(&self, inside: &str) -> Value {
        load_json(&self.host(inside).display().to_string())
    }
}

/// The interpreter the report names: version, binary as the process sees it,
/// static or shared, release build, its root.
pub(crate) fn check_interpreter(report: &Value, interpreter: &Interpreter, files: &Files) {
    let py = &report["python"];
    assert_eq!(py["status"], "sampled", "{}: {py:#}", interpreter.name);
    let version = py["version"].as_str().unwrap();
    assert!(
        version.starts_with(interpreter.version) && version.matches('.').count() == 2,
        "{}: version {version}, expected {}* with its patch level",
        interpreter.name,
        interpreter.version
    );
    assert_eq!(py["binary"], interpreter.binary, "{}", interpreter.name);
    assert_eq!(py["linkage"], interpreter.linkage, "{}", interpreter.name);
    assert_eq!(py["debug_build"], interpreter.debug, "{}", interpreter.name);
    assert_eq!(
        py["free_threaded"], interpreter.free_threaded,
        "{}",
        interpreter.name
    );
    let root = if files.root.is_empty() {
        Value::Null
    } else {
        Value::from(files.root.clone())
    };
    assert_eq!(py["root"], root, "{}", interpreter.name);
}

/// The process of the report whose pid is `pid` (host pid).
pub(crate) fn process(report: &Value, pid: u64) -> &Value {
    common::process(report, pid)
}

/// 1-based line of the first line of `script` (host path) containing `needle`.
pub(crate) fn line_of(script: &Path, needle: &str) -> u64 {
    let text = std::fs::read_to_string(script).unwrap();
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in {}", script.display()));
    index as u64 + 1
}

/// A workload run by the interpreter, traced from its start.
pub(crate) struct Traced {
    /// The JSON report: complete, and naming the interpreter.
    pub(crate) report: Value,
    /// What the workload wrote it did.
    pub(crate) facts: Value,
    pub(crate) files: Files,
    /// The workload as the process sees it.
    pub(crate) script: String,
}

/// `workload` (tests/workloads/) run by `interpreter` in its own mount
/// namespace and root, launched under the tracer; the test's files are
/// named `TEST-<interpreter>`.
pub(crate) fn traced_from_start(interpreter: &Interpreter, test: &str, workload: &str) -> Traced {
    require_root();
    let test = format!("{test}-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script(workload);
    let out = files.path("facts.json");
    let report = trace_command(
        &scratch,
        &[],
        &interpreter.command(Launch::MountNs, &[&script, &out]),
    );
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    Traced {
        report,
        facts,
        files,
        script,
    }
}

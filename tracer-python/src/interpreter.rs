//! Finding the interpreter in a process: the ELF mapped into it that defines
//! `_PyRuntime` and `_PyEval_EvalFrameDefault` (a static `python3.X` or a
//! `libpython3.X.so`), its load address, and its exact version.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use crate::host::procfs::{
    self,
    maps::{Mapping, parse_maps},
};

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read /proc/{pid}/maps: {source}")]
    Maps {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no libpython or python executable with _PyRuntime in /proc/{pid}/maps (is it a Python process?)"
    )]
    NotPython { pid: u32 },
    #[error(
        "{path} looks like a Python interpreter but has no _PyRuntime / _PyEval_EvalFrameDefault symbol \
         (stripped?); install its debug symbols or use an unstripped build"
    )]
    Stripped { path: String },
    #[error("cannot tell the CPython version of {path}")]
    NoVersion { path: String },
    #[error("{path} is CPython {major}.{minor}, which is not supported (3.8 and later are)")]
    TooOld {
        path: String,
        major: u32,
        minor: u32,
    },
}

/// A file name that may be a CPython interpreter, and its `major.minor` if the name says.
pub fn name_hint(path: &str) -> Option<Option<(u32, u32)>> {
    let name = Path::new(path).file_name()?.to_str()?;
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let mut parts = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = parts.next().and_then(|s| s.parse().ok());
    let minor = parts.next().and_then(|s| s.parse().ok());
    Some(major.zip(minor))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// Path as the process sees it.
    pub path: String,
    /// Its device, inode and path (the key of [`Binaries`]).
    pub file: String,
    pub major: u32,
    pub minor: u32,
    /// "3.11.7".
    pub version: String,
    /// Built with --disable-gil (`python3.13t`, `Py_GIL_DISABLED`).
    pub free_threaded: bool,
    /// The interpreter is in a `libpython3.X.so` (shared build), not in
    /// the executable (static build).
    pub shared: bool,
    /// A debug build (`--with-pydebug`: `python3.13d`, `_Py_NegativeRefcount`).
    pub debug_build: bool,
    /// Run-time address of `_PyRuntime`.
    pub runtime: u64,
    /// Run-time address of `_PyEval_EvalFrameDefault`.
    pub eval_frame: u64,
    /// File offset of `_PyEval_EvalFrameDefault` (for a uprobe).
    pub eval_frame_file_offset: Option<u64>,
    /// Run-time address of `PyCode_Type`: code objects point to it.
    pub code_type: Option<u64>,
    /// File offsets of the functions that run Python-level signal handlers
    /// (for uprobes): `PyErr_CheckSignals` and the eval loop's own check.
    pub signal_checks: Vec<u64>,
    /// Run-time range of the interpreter's writable data (`.data` to the end
    /// of `.bss`), where CPython keeps its signal handler table.
    pub data_range: Option<(u64, u64)>,
    /// <= 3.10: run-time address of `Py_GetVersion`'s static buffer, filled
    /// with "3.8.18 (default, ...)" when `sys` is initialised; the version
    /// literal itself is compiled into immediates, not stored as a string.
    pub version_buffer: Option<u64>,
}

impl Interpreter {
    /// True when `version` has the patch level ("3.8.18", not "3.8").
    pub fn version_is_exact(&self) -> bool {
        self.version.matches('.').count() >= 2
    }
}

/// The version at the start of `Py_GetVersion()`'s text, if it is one.
pub fn version_from_getversion(text: &[u8]) -> Option<String> {
    let end = text.iter().position(|&b| b == b' ' || b == 0)?;
    let token = std::str::from_utf8(&text[..end]).ok()?;
    is_version(token).then(|| token.to_owned())
}

/// The ABI flags after `3.X` in an interpreter's file name: `python3.13t`
/// -> "t" (free-threaded), `libpython3.9d.so.1.0` -> "d" (debug),
/// `python3.14td` -> "td"; "" for a release build.
pub fn abiflags(file_name: &str, major: u32, minor: u32) -> &str {
    let version = format!("{major}.{minor}");
    let Some(at) = file_name.find(&version) else {
        return "";
    };
    let rest = &file_name[at + version.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let flags = &rest[..end];
    // Only the known flags (d: debug, t: free-threaded, m: pymalloc <= 3.7).
    if flags.chars().all(|c| matches!(c, 'd' | 't' | 'm')) {
        flags
    } else {
        ""
    }
}

/// Symbols and version of one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub runtime: Option<u64>,
    pub eval_frame: Option<u64>,
    pub eval_frame_file_offset: Option<u64>,
    pub code_type: Option<u64>,
    /// File offsets of the signal checks ([`Interpreter::signal_checks`]).
    pub signal_checks: Vec<u64>,
    /// Link-time range of `.data` .. end of `.bss`.
    pub data_range: Option<(u64, u64)>,
    pub version_buffer: Option<u64>,
    pub py_version_hex: Option<u32>,
    pub version_string: Option<String>,
    /// Defines `_Py_NegativeRefcount`: only `Py_REF_DEBUG` (debug) builds do.
    pub debug_symbols: bool,
    /// Lowest PT_LOAD virtual address (page aligned): what file offset 0 maps to.
    pub base_vaddr: u64,
    pub is_exec: bool,
}

pub fn read_elf(data: &[u8]) -> Result<ElfInfo, object::Error> {
    let file = object::File::parse(data)?;
    let mut info = ElfInfo {
        runtime: None,
        eval_frame: None,
        eval_frame_file_offset: None,
        code_type: None,
        signal_checks: Vec::new(),
        data_range: None,
        version_buffer: None,
        py_version_hex: None,
        version_string: None,
        debug_symbols: false,
        base_vaddr: file
            .segments()
            .map(|s| s.address() & !0xfff)
            .min()
            .unwrap_or(0),
        is_exec: file.kind() == object::ObjectKind::Executable,
    };
    let mut py_version_addr = None;
    // Where Python-level signal handlers are run from: C code's
    // `PyErr_CheckSignals` and the eval loop's check (3.8
    // `_PyErr_CheckSignals`, 3.9-3.12 `_PyErr_CheckSignalsTstate`, 3.13+
    // `_Py_HandlePending`), whichever are exported: past their test of
    // `is_tripped` (see `signal_checks`).
    let mut signal_checks: Vec<u64> = file
        .dynamic_symbols()
        .filter(|s| {
            s.address() != 0
                && matches!(
                    s.name(),
                    Ok("PyErr_CheckSignals"
                        | "_PyErr_CheckSignals"
                        | "_PyErr_CheckSignalsTstate"
                        | "_Py_HandlePending")
                )
        })
        .filter_map(|s| signal_check_probe(&file, &s))
        .collect();
    signal_checks.sort_unstable();
    signal_checks.dedup();
    fn scan(info: &mut ElfInfo, py_version_addr: &mut Option<u64>, symbol: object::Symbol<'_, '_>) {
        match symbol.name() {
            Ok("_PyRuntime") => info.runtime = info.runtime.or(Some(symbol.address())),
            Ok("_PyEval_EvalFrameDefault") if symbol.address() != 0 => {
                info.eval_frame = info.eval_frame.or(Some(symbol.address()))
            }
            Ok("PyCode_Type") if symbol.address() != 0 => {
                info.code_type = info.code_type.or(Some(symbol.address()))
            }
            Ok(name)
                if (name == "version" || name.starts_with("version."))
                    && symbol.size() == 250
                    && symbol.address() != 0 =>
            {
                info.version_buffer = info.version_buffer.or(Some(symbol.address()))
            }
            Ok("Py_Version") => *py_version_addr = py_version_addr.or(Some(symbol.address())),
            Ok("_Py_NegativeRefcount") if symbol.address() != 0 => info.debug_symbols = true,
            _ => {}
        }
    }
    // The exported symbols are enough on 3.11+; the full table (large with
    // debug info) only when something is missing (<= 3.10's version buffer).
    for symbol in file.dynamic_symbols() {
        scan(&mut info, &mut py_version_addr, symbol);
    }
    if info.runtime.is_none() || info.eval_frame.is_none() || py_version_addr.is_none() {
        for symbol in file.symbols() {
            scan(&mut info, &mut py_version_addr, symbol);
        }
    }
    let section_bytes = |addr: u64, len: u64| -> Option<&[u8]> {
        file.sections().find_map(|s| {
            if addr >= s.address() && addr + len <= s.address() + s.size() {
                let data = s.data().ok()?;
                let at = (addr - s.address()) as usize;
                data.get(at..at + len as usize)
            } else {
                None
            }
        })
    };
    if let Some(addr) = py_version_addr {
        info.py_version_hex = section_bytes(addr, 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
    }
    let file_offset = |addr: u64| {
        file.segments().find_map(|seg| {
            let (off, size) = seg.file_range();
            (addr >= seg.address() && addr < seg.address() + size)
                .then(|| addr - seg.address() + off)
        })
    };
    if let Some(addr) = info.eval_frame {
        info.eval_frame_file_offset = file_offset(addr);
    }
    info.signal_checks = signal_checks.into_iter().filter_map(file_offset).collect();
    let data: Vec<(u64, u64)> = file
        .sections()
        .filter(|s| matches!(s.name(), Ok(".data" | ".bss")) && s.size() > 0)
        .map(|s| (s.address(), s.address() + s.size()))
        .collect();
    info.data_range = data
        .iter()
        .map(|r| r.0)
        .min()
        .zip(data.iter().map(|r| r.1).max());
    // PY_VERSION ("3.8.18") may be a string literal in .rodata (often it is
    // folded into code); only needed without Py_Version.
    if info.py_version_hex.is_none()
        && let Some(rodata) = file.section_by_name(".rodata").and_then(|s| s.data().ok())
    {
        info.version_string = find_version_string(rodata);
    }
    Ok(info)
}

/// The first NUL-delimited string that is exactly a CPython version ("3.11.7", "3.13.0rc1").
pub fn find_version_string(rodata: &[u8]) -> Option<String> {
    rodata
        .split(|&b| b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .find(|s| is_version(s))
        .map(str::to_owned)
}

fn is_version(s: &str) -> bool {
    let s = s.trim_end_matches('+');
    let mut parts = s.splitn(3, '.');
    let (Some(major), Some(minor), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let micro_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let suffix = &rest[micro_len..];
    major == "3"
        && !minor.is_empty()
        && minor.len() <= 2
        && minor.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&micro_len)
        && (suffix.is_empty()
            || ["a", "b", "rc"].iter().any(|p| {
                suffix
                    .strip_prefix(p)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }))
}

/// `PY_VERSION_HEX` -> "3.11.7" (with a release level suffix when not final).
pub fn version_from_hex(hex: u32) -> (u32, u32, String) {
    let major = hex >> 24;
    let minor = (hex >> 16) & 0xff;
    let micro = (hex >> 8) & 0xff;
    let level = (hex >> 4) & 0xf;
    let serial = hex & 0xf;
    let suffix = match level {
        0xa => format!("a{serial}"),
        0xb => format!("b{serial}"),
        0xc => format!("rc{serial}"),
        _ => String::new(),
    };
    (major, minor, format!("{major}.{minor}.{micro}{suffix}"))
}

/// A path to the interpreter's ELF that this process can open: through the
/// target's root (containers), else as shown in its maps (chroots).
pub fn openable_path(pid: u32, path: &str) -> PathBuf {
    let rooted = procfs::in_root(pid, path);
    if rooted.exists() {
        rooted
    } else {
        PathBuf::from(path)
    }
}

/// Reads a mapped file. `/proc/PID/map_files/START-END` is the mapped file
/// itself whatever the namespaces; then the path through the target's root
/// (containers), then the path as shown (a chroot shows host paths).
fn read_mapped(pid: u32, mapping: &Mapping) -> Option<MappedFile> {
    let candidates = [
        procfs::map_file(pid, mapping.start, mapping.end),
        procfs::in_root(pid, &mapping.path),
        PathBuf::from(&mapping.path),
    ];
    candidates.iter().find_map(|p| MappedFile::open(p))
}

/// A file mapped read-only: parsing touches only the pages it needs (a
/// libpython with debug info is 30 MB; reading it whole took tens of ms).
struct MappedFile {
    ptr: *mut libc::c_void,
    len: usize,
}

impl MappedFile {
    fn open(path: &Path) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a private read-only mapping of an open file; unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped readable for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `open`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Where section `name` of a file mapped into `pid` lies in its memory:
/// (run-time address, size), from the first file `wanted` picks (by path)
/// that has it. Section addresses are link-time ones: a shared object's
/// are moved by where its first page is mapped.
pub fn mapped_section(
    pid: u32,
    maps: &[Mapping],
    wanted: impl Fn(&str) -> bool,
    name: &str,
) -> Option<(u64, u64)> {
    let mut seen: Vec<&str> = Vec::new();
    for mapping in maps.iter().filter(|m| wanted(&m.path)) {
        if seen.contains(&mapping.path.as_str()) {
            continue;
        }
        seen.push(&mapping.path);
        let Some(data) = read_mapped(pid, mapping) else {
            continue;
        };
        let Ok(file) = object::File::parse(data.bytes()) else {
            continue;
        };
        let Some(section) = file.section_by_name(name) else {
            continue;
        };
        let bias = if file.kind() == object::ObjectKind::Executable {
            0
        } else {
            let base = file
                .segments()
                .map(|s| s.address() & !0xfff)
                .min()
                .unwrap_or(0);
            let first = maps
                .iter()
                .filter(|m| m.path == mapping.path && m.offset == 0)
                .map(|m| m.start)
                .min()?;
            first.wrapping_sub(base)
        };
        return Some((section.address().wrapping_add(bias), section.size()));
    }
    None
}

/// Mapped files larger than this are not searched for an interpreter.
const MAX_SEARCHED_FILE: usize = 1 << 30;

/// Looks for the interpreter in `pid`'s mappings. `binaries` remembers
/// the files already searched and found not to define `_PyRuntime` (by
/// device, inode and path: one cache serves every process of a tree, in
/// any root), so a process that is not (yet) Python costs one search per
/// file, and a tree of shells and `true`s one search per distinct file.
pub fn discover(pid: u32, binaries: &mut Binaries) -> Result<Interpreter, DiscoverError> {
    let maps = procfs::maps(pid).map_err(|source| DiscoverError::Maps { pid, source })?;
    discover_in(pid, &parse_maps(&maps), binaries)
}

/// What is learnt of a mapped file once, for every process that maps it
/// (by device, inode and path, in any root): on a node where Python
/// processes start by the dozen a second, each start must not parse its
/// interpreter's ELF file or search its data again.
#[derive(Debug, Default)]
pub struct Binaries {
    /// Files found not to define `_PyRuntime`: a tree of shells and
    /// `true`s costs one search per distinct file.
    not_python: HashSet<String>,
    /// The symbols and version of each interpreter file.
    interpreters: HashMap<String, Arc<ElfInfo>>,
    /// Where each interpreter file's signal handler table was found, from
    /// the start of its writable data.
    handler_tables: HashMap<String, u64>,
    /// Exec'd programs (by path as opened) that can hold no interpreter
    /// ([`exec_is_not_python`]): true or false.
    exec_verdicts: HashMap<String, bool>,
}

/// Distinct files remembered in each of [`Binaries`]' tables: past this
/// (a node of ever new images) a table starts over.
const MAX_BINARIES: usize = 4096;

impl Binaries {
    /// Where the signal handler table of `interpreter` was found before,
    /// from the start of its writable data.
    pub fn handler_table(&self, interpreter: &Interpreter) -> Option<u64> {
        self.handler_tables.get(&interpreter.file).copied()
    }

    pub fn found_handler_table(&mut self, interpreter: &Interpreter, offset: u64) {
        remember(&mut self.handler_tables, interpreter.file.clone(), offset);
    }

    fn not_python(&mut self, file: String) {
        if self.not_python.len() >= MAX_BINARIES {
            self.not_python.clear();
        }
        self.not_python.insert(file);
    }

    /// [`exec_is_not_python`], each file read once.
    pub fn exec_is_not_python(&mut self, path: &Path) -> bool {
        let key = path.to_string_lossy().into_owned();
        if let Some(&verdict) = self.exec_verdicts.get(&key) {
            return verdict;
        }
        let verdict = exec_is_not_python(path);
        remember(&mut self.exec_verdicts, key, verdict);
        verdict
    }

    #[cfg(test)]
    pub fn is_not_python(&self, file: &str) -> bool {
        self.not_python.contains(file)
    }
}

fn remember<V>(table: &mut HashMap<String, V>, key: String, value: V) {
    if table.len() >= MAX_BINARIES {
        table.clear();
    }
    table.insert(key, value);
}

/// Whether a program a process exec'd can hold no interpreter: an ELF file
/// not named like Python that neither defines `_PyRuntime` nor names a
/// `libpython` to load (a process that exits before it is looked at is
/// told by its program: `uname`, `git`, `sh`). `false` when it cannot be
/// told: unreadable, a script run through its `#!` line, too large.
pub fn exec_is_not_python(path: &Path) -> bool {
    if path.to_str().is_none_or(|p| name_hint(p).is_some()) {
        return false;
    }
    let Some(data) = MappedFile::open(path) else {
        return false;
    };
    let bytes = data.bytes();
    bytes.starts_with(b"\x7fELF")
        && bytes.len() <= MAX_SEARCHED_FILE
        && memchr::memmem::find(bytes, b"_PyRuntime").is_none()
        && memchr::memmem::find(bytes, b"libpython").is_none()
}

/// Whether an ELF executable names a `libpython` (a shared build's
/// `python3.X`, a program embedding Python): the dynamic loader maps it
/// after the exec.
pub fn names_libpython(path: &Path) -> bool {
    MappedFile::open(path).is_some_and(|data| {
        let bytes = data.bytes();
        bytes.starts_with(b"\x7fELF")
            && bytes.len() <= MAX_SEARCHED_FILE
            && memchr::memmem::find(bytes, b"libpython").is_some()
    })
}

/// The interpreter is recognised by content, whatever the file is called
/// (embedded runtimes and container images rename `python3.X`): the ELF
/// mapped executable that defines `_PyRuntime`. Files named like Python
/// are looked at first (libpython before the executable: a python
/// executable linked against it has no `_PyRuntime`).
pub fn discover_in(
    pid: u32,
    maps: &[Mapping],
    binaries: &mut Binaries,
) -> Result<Interpreter, DiscoverError> {
    let mut candidates: Vec<&str> = Vec::new();
    for m in maps {
        if m.executable
            && !candidates.contains(&m.path.as_str())
            && !binaries.not_python.contains(&m.cache_key())
        {
            candidates.push(&m.path);
        }
    }
    candidates.sort_by_key(|p| (name_hint(p).is_none(), !p.contains("libpython")));
    let exe = procfs::exe(pid);
    let mut stripped = None;
    let mut too_old = None;
    for path in candidates {
        let Some(mapping) = maps.iter().find(|m| m.path == path) else {
            continue;
        };
        let file = mapping.cache_key();
        let elf = match binaries.interpreters.get(&file) {
            Some(elf) => elf.clone(),
            None => {
                let Some(data) = read_mapped(pid, mapping) else {
                    continue;
                };
                let named = name_hint(path).is_some();
                if !named
                    && (data.bytes().len() > MAX_SEARCHED_FILE
                        || !data.bytes().starts_with(b"\x7fELF")
                        || memchr::memmem::find(data.bytes(), b"_PyRuntime\0").is_none())
                {
                    binaries.not_python(file);
                    continue;
                }
                let Ok(elf) = read_elf(data.bytes()) else {
                    continue;
                };
                let elf = Arc::new(elf);
                if elf.runtime.is_some() && elf.eval_frame.is_some() {
                    remember(&mut binaries.interpreters, file.clone(), elf.clone());
                }
                elf
            }
        };
        let (Some(runtime), Some(eval_frame)) = (elf.runtime, elf.eval_frame) else {
            // Before 3.7 there is no _PyRuntime at all: say the version.
            if let Some((major, minor)) = name_hint(path).flatten()
                && (major, minor) < (3, 7)
            {
                too_old.get_or_insert_with(|| DiscoverError::TooOld {
                    path: path.to_owned(),
                    major,
                    minor,
                });
            } else if path.contains("libpython") || elf.version_string.is_some() {
                stripped.get_or_insert_with(|| path.to_owned());
            }
            continue;
        };
        let bias = if elf.is_exec {
            0
        } else {
            let Some(first) = maps
                .iter()
                .filter(|m| m.path == path && m.offset == 0)
                .map(|m| m.start)
                .min()
            else {
                continue;
            };
            first.wrapping_sub(elf.base_vaddr)
        };
        let hint = name_hint(path).flatten();
        let (major, minor, version) = match (elf.py_version_hex, &elf.version_string, hint) {
            (Some(hex), _, _) if hex >> 24 == 3 => version_from_hex(hex),
            (_, Some(text), _) => {
                let mut parts = text.split('.');
                let major = parts.next().and_then(|s| s.parse().ok());
                let minor = parts.next().and_then(|s| s.parse().ok());
                match (major, minor) {
                    (Some(major), Some(minor)) => (major, minor, text.clone()),
                    _ => return Err(DiscoverError::NoVersion { path: path.into() }),
                }
            }
            (_, None, Some((major, minor))) => (major, minor, format!("{major}.{minor}")),
            _ => return Err(DiscoverError::NoVersion { path: path.into() }),
        };
        let file_name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let abiflags = abiflags(file_name, major, minor);
        let free_threaded = abiflags.contains('t');
        return Ok(Interpreter {
            path: path.to_owned(),
            file,
            major,
            minor,
            version,
            free_threaded,
            // In a library, not in the process's executable.
            shared: match &exe {
                Some(exe) => exe != path,
                None => file_name.starts_with("libpython"),
            },
            debug_build: elf.debug_symbols || abiflags.contains('d'),
            runtime: runtime.wrapping_add(bias),
            eval_frame: eval_frame.wrapping_add(bias),
            eval_frame_file_offset: elf.eval_frame_file_offset,
            code_type: elf.code_type.map(|a| a.wrapping_add(bias)),
            signal_checks: elf.signal_checks.clone(),
            data_range: elf
                .data_range
                .map(|(a, b)| (a.wrapping_add(bias), b.wrapping_add(bias))),
            version_buffer: elf.version_buffer.map(|a| a.wrapping_add(bias)),
        });
    }
    match (too_old, stripped) {
        (Some(err), _) => Err(err),
        (None, Some(path)) => Err(DiscoverError::Stripped { path }),
        (None, None) => Err(DiscoverError::NotPython { pid }),
    }
}

/// Where the signal-check uprobe goes in `symbol` (a virtual address):
/// where its path that runs handlers starts, else its entry (see
/// `signal_checks`).
fn signal_check_probe(file: &object::File<'_>, symbol: &object::Symbol<'_, '_>) -> Option<u64> {
    let name = symbol.name().ok()?;
    let entry = symbol.address();
    if super::signal_checks::ENTRY_PROBED.contains(&name) {
        return Some(entry);
    }
    let code = |at: u64, len: usize| -> Option<Vec<u8>> {
        file.sections().find_map(|section| {
            let end = section.address() + section.size();
            if at < section.address() || at >= end {
                return None;
            }
            let len = (len as u64).min(end - at);
            section
                .data_range(at, len)
                .ok()
                .flatten()
                .map(<[u8]>::to_vec)
        })
    };
    // A PLT slot's function: the dynamic symbol its jump-slot relocation
    // names, where this file defines it.
    let plt = |slot: u64| -> Option<u64> {
        use object::ObjectSymbolTable as _;
        file.dynamic_relocations()?.find_map(|(offset, reloc)| {
            let object::RelocationTarget::Symbol(index) = reloc.target() else {
                return None;
            };
            (offset == slot)
                .then(|| file.dynamic_symbol_table()?.symbol_by_index(index).ok())
                .flatten()
                .map(|s| s.address())
                .filter(|&a| a != 0)
        })
    };
    let path = super::signal_checks::tripped_path(entry, &code, &plt);
    log::debug!("signal check {name} at {entry:#x}: probed at {path:#x?}");
    Some(path.unwrap_or(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let text = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 123 /usr/bin/python3.11
7f00aa000000-7f00aa100000 r-xp 00020000 08:01 456 /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0
7f00ab000000-7f00ab001000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].offset, 0x20000);
        assert_eq!(maps[1].start, 0x7f00aa000000);
        assert!(maps[1].path.ends_with("libpython3.11.so.1.0"));
    }

    #[test]
    fn names() {
        assert_eq!(name_hint("/usr/bin/python3.11"), Some(Some((3, 11))));
        assert_eq!(name_hint("/x/libpython3.13t.so.1.0"), Some(Some((3, 13))));
        assert_eq!(name_hint("/usr/bin/python"), Some(None));
        assert_eq!(name_hint("/usr/lib/libc.so.6"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(version_from_hex(0x030b07f0), (3, 11, "3.11.7".into()));
        assert_eq!(version_from_hex(0x030e00c1), (3, 14, "3.14.0rc1".into()));
        let rodata = b"\0hello\x003.8\x003.8.18\x00more 3.9.1\0";
        assert_eq!(find_version_string(rodata), Some("3.8.18".into()));
        assert!(is_version("3.13.0rc1"));
        assert!(!is_version("3.13"));
        assert!(!is_version("3.13.0x"));
        assert_eq!(
            version_from_getversion(b"3.8.18 (default, May  9 2026, 07:33:01) \n[GCC 12.2.0]\0"),
            Some("3.8.18".into())
        );
        assert_eq!(version_from_getversion(b"\0\0\0"), None);
    }

    #[test]
    fn abi_flags_from_file_names() {
        assert_eq!(abiflags("python3.11", 3, 11), "");
        assert_eq!(abiflags("libpython3.11.so.1.0", 3, 11), "");
        assert_eq!(abiflags("python3.13t", 3, 13), "t");
        assert_eq!(abiflags("libpython3.13t.so.1.0", 3, 13), "t");
        assert_eq!(abiflags("python3.13d", 3, 13), "d");
        assert_eq!(abiflags("libpython3.9d.so.1.0", 3, 9), "d");
        assert_eq!(abiflags("python3.14td", 3, 14), "td");
        assert_eq!(abiflags("libpython3.7m.so.1.0", 3, 7), "m");
        assert_eq!(abiflags("python3.13-config", 3, 13), "");
        assert_eq!(abiflags("python3", 3, 13), "");
    }

    #[test]
    fn not_python() {
        let maps = parse_maps("00400000-00401000 r-xp 00000000 08:01 1 /bin/sleep\n");
        let mut binaries = Binaries::default();
        assert!(matches!(
            discover_in(1, &maps, &mut binaries),
            Err(DiscoverError::NotPython { .. })
        ));
        // Searched once: the next look skips it.
        assert!(binaries.is_not_python("08:01 1 /bin/sleep"));
    }

    #[test]
    fn exec_d_programs_that_hold_no_interpreter() {
        assert!(exec_is_not_python(Path::new("/bin/true")));
        assert!(exec_is_not_python(Path::new("/usr/bin/uname")));
        // Named like Python, a script, or gone: cannot be told.
        assert!(!exec_is_not_python(Path::new("/usr/bin/python3")));
        assert!(!exec_is_not_python(Path::new("/usr/bin/ldd")));
        assert!(!exec_is_not_python(Path::new("/nonexistent/uname")));
        let dir = std::env::temp_dir().join(format!("tracer-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pythonish = dir.join("embedder");
        std::fs::write(&pythonish, b"\x7fELF...libpython3.11.so.1.0\0").unwrap();
        assert!(!exec_is_not_python(&pythonish));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_renamed_interpreter_is_found_by_content() {
        let python = "/usr/bin/python3.11";
        let dir = std::env::temp_dir().join(format!("tracer-renamed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let renamed = dir.join("svc-runtime");
        std::fs::copy(python, &renamed).unwrap();
        let line = format!(
            "00400000-00401000 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
             00500000-00501000 r-xp 00000000 08:01 2 {}\n",
            renamed.display()
        );
        let maps = parse_maps(&line);
        assert!(maps.iter().all(|m| m.executable));
        let mut binaries = Binaries::default();
        let found = discover_in(std::process::id(), &maps, &mut binaries).unwrap();
        assert_eq!((found.major, found.minor), (3, 11));
        assert_eq!(found.path, renamed.to_string_lossy());
        assert!(binaries.is_not_python("08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6"));
        // The interpreter's file is read once: the next process finds it
        // from what was learnt (the file gone since, as an image's may be).
        std::fs::remove_file(&renamed).unwrap();
        let again = discover_in(std::process::id(), &maps, &mut binaries).unwrap();
        assert_eq!(again, found);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Function names of a binary, from its ELF symbol tables (`.symtab`
//! when it was not stripped, `.dynsym` always, and the `.symtab` of its
//! MiniDebugInfo): a native frame is named by the function whose range
//! holds its address, or by the file and the address when none does (a
//! static function of a stripped library).

use std::io::{self, Write};

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// Most a `.gnu_debugdata` is decompressed to: Fedora's largest (libxul's
/// function symbols) are a few MiB; past this it is taken for corrupt.
const DEBUGDATA_LIMIT: usize = 64 << 20;

/// Why a binary's MiniDebugInfo was not read (it is named from its own
/// symbol tables then).
#[derive(Debug, thiserror::Error)]
pub enum DebugDataError {
    #[error(".gnu_debugdata unreadable: {0}")]
    Section(object::Error),
    #[error(".gnu_debugdata is not valid xz: {0}")]
    Xz(String),
    #[error(".gnu_debugdata decompresses to more than {0} bytes")]
    TooLarge(usize),
    #[error(".gnu_debugdata holds no ELF file: {0}")]
    Elf(object::Error),
}

#[derive(Debug, Default)]
pub struct Symbols {
    /// (start, end, name), sorted by start.
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The functions of `file`'s own symbol tables.
    pub fn read(file: &object::File<'_>) -> Self {
        let mut symbols = Self {
            functions: functions(file),
        };
        symbols.sort();
        symbols
    }

    /// Adds the functions of `file`'s MiniDebugInfo, if it has one
    /// (`.gnu_debugdata`: an xz-compressed ELF file whose `.symtab` holds
    /// the functions `.dynsym` lacks, static ones; Fedora's, RHEL's and
    /// CentOS's stripped binaries carry it). True when it had one.
    pub fn add_debugdata(&mut self, file: &object::File<'_>) -> Result<bool, DebugDataError> {
        let Some(section) = file.section_by_name(".gnu_debugdata") else {
            return Ok(false);
        };
        let xz = section.data().map_err(DebugDataError::Section)?;
        let elf = decompress(xz, DEBUGDATA_LIMIT)?;
        let inner = object::File::parse(&*elf).map_err(DebugDataError::Elf)?;
        self.functions.extend(functions(&inner));
        self.sort();
        Ok(true)
    }

    /// The functions of the ELF file `data`, its MiniDebugInfo's too (the
    /// fuzz target `elf`'s way in: the bytes of any file a process maps).
    pub fn of_file(data: &[u8]) -> Option<Self> {
        let file = object::File::parse(data).ok()?;
        let mut symbols = Self::read(&file);
        let _ = symbols.add_debugdata(&file);
        Some(symbols)
    }

    fn sort(&mut self) {
        self.functions.sort();
        self.functions.dedup_by(|b, a| a.0 == b.0);
    }

    /// The function holding binary address `vaddr`.
    pub fn name(&self, vaddr: u64) -> Option<&str> {
        let at = self.functions.partition_point(|f| f.0 <= vaddr);
        let (start, end, name) = self.functions.get(at.checked_sub(1)?)?;
        (*start <= vaddr && vaddr < *end).then_some(name.as_str())
    }

    /// The address range of the function named `name`.
    pub fn range(&self, name: &str) -> Option<(u64, u64)> {
        self.functions
            .iter()
            .find(|f| f.2 == name)
            .map(|f| (f.0, f.1))
    }
}

/// (start, end, name) of every function symbol of `file`, unsorted.
fn functions(file: &object::File<'_>) -> Vec<(u64, u64, String)> {
    file.symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0 && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            // `name@@VERSION` in some tables: the name alone.
            let name = name.split('@').next().unwrap_or(name);
            Some((s.address(), s.address() + s.size(), demangle(name)))
        })
        .collect()
}

/// The xz stream `xz` decompressed, if it makes at most `limit` bytes.
fn decompress(xz: &[u8], limit: usize) -> Result<Vec<u8>, DebugDataError> {
    let mut out = Bounded {
        bytes: Vec::new(),
        limit,
        over: false,
    };
    match lzma_rs::xz_decompress(&mut &*xz, &mut out) {
        Ok(()) => Ok(out.bytes),
        Err(_) if out.over => Err(DebugDataError::TooLarge(limit)),
        Err(err) => Err(DebugDataError::Xz(format!("{err:?}"))),
    }
}

/// A writer that refuses to grow past `limit` bytes.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("over the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Longest symbol demangled: longer ones (none a compiler makes for a real
/// function) are shown as they are rather than parsed.
const MAX_MANGLED: usize = 4096;

/// How deep the C++ demangler may recurse: names come from files the traced
/// program maps, and a crafted one must not exhaust the reading thread's
/// stack.
const DEMANGLE_DEPTH: u32 = 96;

/// Rust (v0 and legacy) and C++ (Itanium) names demangled; C names as they
/// are. C++ keeps its template arguments (each instantiation is a function
/// of its own) and leaves out parameters and return type, as perf's and
/// py-spy's reports do: `sort_n_vec<zmm_vector<double>, ...>`.
pub fn demangle(name: &str) -> String {
    if name.len() > MAX_MANGLED {
        return name.to_string();
    }
    if (name.starts_with("_R") || is_legacy_rust(name))
        && let Ok(demangled) = rustc_demangle::try_demangle(name)
    {
        return format!("{demangled:#}");
    }
    if name.starts_with("_Z") {
        let parse = cpp_demangle::ParseOptions::default().recursion_limit(DEMANGLE_DEPTH);
        let show = cpp_demangle::DemangleOptions::new()
            .no_params()
            .no_return_type()
            .recursion_limit(DEMANGLE_DEPTH);
        if let Ok(demangled) = cpp_demangle::Symbol::new_with_options(name, &parse)
            .map_err(|_| std::fmt::Error)
            .and_then(|symbol| symbol.demangle_with_options(&show))
        {
            return demangled;
        }
    }
    name.to_string()
}

/// Rust's legacy mangling is Itanium's `_ZN...E` with a last element
/// `17h` and 16 hex digits (the crate hash); any other `_ZN` name is C++.
fn is_legacy_rust(name: &str) -> bool {
    let Some(inner) = name.strip_prefix("_ZN") else {
        return false;
    };
    // A suffix LLVM adds (`.llvm.123`) comes after the closing E.
    let inner = inner.split('.').next().unwrap_or(inner);
    inner.len() > 20
        && inner.ends_with('E')
        && inner[inner.len() - 20..inner.len() - 17] == *"17h"
        && inner[inner.len() - 17..inner.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's sort under `sort_loop` as the issue saw it, a Rust legacy
    /// and a v0 name, a C name, and names no demangler takes.
    #[test]
    fn cpp_and_rust_names_are_demangled_c_names_kept() {
        assert_eq!(
            demangle(
                "_Z10sort_n_vecI10zmm_vectorIdE10ComparatorIS1_Lb0EELi32EDv8_dEvPNT_6type_tEi"
            ),
            "sort_n_vec<zmm_vector<double>, Comparator<zmm_vector<double>, false>, 32, \
             double __vector(8)>"
        );
        assert_eq!(demangle("_ZN5space3fooEibc"), "space::foo");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"),
            "std::rt::lang_start"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE.llvm.42"),
            "std::rt::lang_start"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        assert_eq!(demangle("deflate"), "deflate");
        assert_eq!(demangle("_Znot a name"), "_Znot a name");
        let long = format!("_Z{}", "1a".repeat(MAX_MANGLED));
        assert_eq!(demangle(&long), long);
    }

    /// A crafted name nests deeper than the demangler may go: kept as it is,
    /// the thread's stack untouched.
    #[test]
    fn a_name_nested_too_deep_is_kept_as_it_is() {
        let deep = format!("_Z1f{}i{}", "PFv".repeat(600), "E".repeat(600));
        assert!(deep.len() < MAX_MANGLED);
        let _ = demangle(&deep);
    }

    #[test]
    fn addresses_are_named_only_inside_a_function() {
        let symbols = Symbols {
            functions: vec![
                (0x1000, 0x1100, "deflate".into()),
                (0x1200, 0x1300, "inflate".into()),
            ],
        };
        assert_eq!(symbols.name(0x1000), Some("deflate"));
        assert_eq!(symbols.name(0x10ff), Some("deflate"));
        assert_eq!(
            symbols.name(0x1100),
            None,
            "a static function after deflate"
        );
        assert_eq!(symbols.name(0xfff), None);
        assert_eq!(symbols.name(0x1250), Some("inflate"));
        assert_eq!(symbols.range("inflate"), Some((0x1200, 0x1300)));
    }

    /// A library built here with gcc, its static function named only by
    /// its MiniDebugInfo, made as distributions make it
    /// (`tests/workloads/native/mini_debuginfo.sh`); then the same with a
    /// `.gnu_debugdata` that is no xz: an error, its own symbols still
    /// read.
    #[test]
    fn mini_debuginfo_names_a_static_function_of_a_stripped_library() {
        use std::process::Command;
        let dir = std::env::temp_dir().join(format!("tracer-debugdata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("lib.c");
        std::fs::write(
            &source,
            "__attribute__((noinline)) static int hidden_twice(int n) { return n * 2 + 1; }\n\
             int exported(int n) { return hidden_twice(n) + hidden_twice(n + 1); }\n",
        )
        .unwrap();
        let built = dir.join("lib.so");
        let run = |command: &mut Command| {
            let out = command.output().expect("run a build tool");
            assert!(out.status.success(), "{command:?}: {out:?}");
        };
        run(Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&built)
            .arg(&source));
        let mini = dir.join("lib-mini.so");
        run(Command::new("sh")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/workloads/native/mini_debuginfo.sh"
            ))
            .arg(&built)
            .arg(&mini));
        let garbage = dir.join("garbage");
        std::fs::write(&garbage, b"not xz at all").unwrap();
        let corrupt = dir.join("lib-corrupt.so");
        run(Command::new("objcopy")
            .arg("--remove-section")
            .arg(".gnu_debugdata")
            .arg(format!(
                "--add-section=.gnu_debugdata={}",
                garbage.display()
            ))
            .arg(&mini)
            .arg(&corrupt));
        let mini = std::fs::read(&mini).unwrap();
        let corrupt = std::fs::read(&corrupt).unwrap();
        let unstripped = std::fs::read(&built).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        // Where the static function is: the unstripped library's .symtab.
        let full = Symbols::read(&object::File::parse(&*unstripped).unwrap());
        let (start, end) = full.range("hidden_twice").expect("gcc kept it static");
        let file = object::File::parse(&*mini).unwrap();
        let mut symbols = Symbols::read(&file);
        assert_eq!(symbols.name(start), None, "stripped: {symbols:?}");
        assert!(symbols.range("exported").is_some(), "{symbols:?}");
        assert!(symbols.add_debugdata(&file).unwrap());
        assert_eq!(symbols.name(start), Some("hidden_twice"));
        assert_eq!(symbols.name(end - 1), Some("hidden_twice"));
        assert!(symbols.range("exported").is_some());

        let file = object::File::parse(&*corrupt).unwrap();
        let mut symbols = Symbols::read(&file);
        assert!(
            matches!(symbols.add_debugdata(&file), Err(DebugDataError::Xz(_))),
            "{symbols:?}"
        );
        assert_eq!(symbols.name(start), None);
        assert!(symbols.range("exported").is_some());
    }

    /// A section that decompresses past the limit is refused, not read.
    #[test]
    fn debugdata_is_decompressed_within_a_bound() {
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &[7u8; 10_000][..], &mut xz).unwrap();
        assert_eq!(decompress(&xz, 10_000).unwrap(), vec![7u8; 10_000]);
        assert!(matches!(
            decompress(&xz, 9_999),
            Err(DebugDataError::TooLarge(9_999))
        ));
        assert!(matches!(
            decompress(&xz[..xz.len() / 2], 10_000),
            Err(DebugDataError::Xz(_))
        ));
    }

    #[test]
    fn the_system_zlib_names_deflate() {
        let data = super::super::tests::system_zlib();
        let file = object::File::parse(&*data).unwrap();
        let symbols = Symbols::read(&file);
        let (start, end) = symbols.range("deflate").expect("deflate is exported");
        assert_eq!(symbols.name(start + (end - start) / 2), Some("deflate"));
    }
}

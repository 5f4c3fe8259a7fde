//! How far a thread's TLS base is past the `pthread_self()` CPython
//! records in its thread state (`PyConfig::tls_to_thread`): the kernel
//! side tells which state is the current thread's by comparing the two.
//!
//! On x86-64 the TLS base (`fsbase`) is `pthread_self()`. arm64 keeps its
//! TLS after the thread pointer (`tpidr_el0`, TLS variant I), and glibc
//! puts its `struct pthread` just below it: the base is `pthread_self() +
//! sizeof(struct pthread)`, a size glibc gives debuggers as
//! `_thread_db_sizeof_pthread` (a GLIBC_PRIVATE symbol of libc.so.6 since
//! 2.34). Another libc there: not known, and the TLS base is not used.

use object::{Object, ObjectSection, ObjectSymbol};
use tracer_common::PY_NO_OFFSET;

use crate::host::procfs::{self, maps::parse_maps};

/// `PyConfig::tls_to_thread` for process `pid`: `None` while it has no
/// libc mapped (yet: the dynamic loader maps it after the kernel mapped
/// the interpreter, which is when a process is first looked at, so the
/// caller asks again), `PY_NO_OFFSET` where its libc does not say.
pub fn tls_to_thread(pid: u32) -> Option<u32> {
    if cfg!(target_arch = "x86_64") {
        return Some(0);
    }
    let maps = procfs::maps(pid).ok()?;
    let libc = parse_maps(&maps).into_iter().find(|m| {
        let name = m.path.rsplit('/').next().unwrap_or_default();
        name.starts_with("libc.so") || name.starts_with("libc-")
    })?;
    let size = std::fs::read(procfs::in_root(pid, &libc.path))
        .ok()
        .and_then(|data| sizeof_pthread(&data));
    log::debug!("pid {pid}: the TLS base is pthread_self() + {size:?} (glibc's struct pthread)");
    Some(size.unwrap_or(PY_NO_OFFSET))
}

/// The value of `_thread_db_sizeof_pthread` in the ELF file `data`.
pub fn sizeof_pthread(data: &[u8]) -> Option<u32> {
    let file = object::File::parse(data).ok()?;
    let symbol = file
        .dynamic_symbols()
        .chain(file.symbols())
        .find(|s| s.name() == Ok("_thread_db_sizeof_pthread"))?;
    let section = file.section_by_index(symbol.section_index()?).ok()?;
    let at = symbol.address().checked_sub(section.address())? as usize;
    let bytes = section.data().ok()?.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// arm64's glibc (Debian's libc6-arm64-cross: `cargo xtask test`
    /// installs it) and the host's give a `struct pthread` of a plausible
    /// size; a file without the symbol gives none.
    #[test]
    fn glibc_says_the_size_of_its_struct_pthread() {
        for path in [
            "/usr/aarch64-linux-gnu/lib/libc.so.6",
            "/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let size = sizeof_pthread(&data).unwrap_or_else(|| panic!("no size in {path}"));
            assert!(
                (0x400..0x1000).contains(&size) && size.is_multiple_of(16),
                "{path}: {size:#x}"
            );
        }
        let zlib = std::fs::read("/lib/x86_64-linux-gnu/libz.so.1").unwrap();
        assert_eq!(sizeof_pthread(&zlib), None);
    }
}

//! The vDSO (`[vdso]`: `clock_gettime`, `gettimeofday`, `time`,
//! `getcpu`), code the kernel maps into every process: the same image in
//! every 64-bit process of one kernel, so the tracer reads its own once,
//! compiles its `.eh_frame` as a file's and names its functions from its
//! `.dynsym`, for every process's `[vdso]` mapping. A program that reads
//! the clock in a loop (asyncio's) is then unwound through it.

use crate::host::procfs::{self, maps::anonymous_code};

/// Its name in `/proc/PID/maps`.
pub const VDSO: &str = "[vdso]";

#[derive(Debug, thiserror::Error)]
pub enum VdsoError {
    #[error("reading /proc/self/maps: {0}")]
    Maps(std::io::Error),
    #[error("the tracer has no [vdso] mapping")]
    NoMapping,
    #[error("reading the vDSO at {addr:#x}: {source}")]
    Memory { addr: u64, source: std::io::Error },
}

/// The tracer's own vDSO, as its ELF image: the whole of its `[vdso]`
/// mapping.
pub fn own_image() -> Result<Vec<u8>, VdsoError> {
    let maps = procfs::own_maps().map_err(VdsoError::Maps)?;
    let (start, end, _) = anonymous_code(&maps)
        .into_iter()
        .find(|(_, _, name)| name == VDSO)
        .ok_or(VdsoError::NoMapping)?;
    procfs::own_memory(start, (end - start) as usize).map_err(|source| VdsoError::Memory {
        addr: start,
        source,
    })
}

#[cfg(test)]
mod tests {
    use object::Object;

    use super::*;
    use crate::native::{Symbols, unwind_table};

    /// This kernel's vDSO: an ELF whose `.dynsym` names `clock_gettime`
    /// and whose `.eh_frame` compiles to rows covering it.
    #[test]
    fn the_own_vdso_is_an_elf_with_a_table_and_names() {
        let image = own_image().unwrap();
        let file = object::File::parse(&*image).unwrap();
        let symbols = Symbols::read(&file);
        let (start, end) = symbols
            .range("__vdso_clock_gettime")
            .expect("the vDSO exports __vdso_clock_gettime");
        assert_eq!(
            symbols.name(start + (end - start) / 2),
            Some("__vdso_clock_gettime")
        );
        let table = unwind_table(&image).unwrap();
        assert!(
            table.functions.iter().any(|f| f.0 <= start && end <= f.1),
            "{:x?}",
            table.functions
        );
        assert!(table.rows.len() >= 2, "{:?}", table.rows);
        assert!(file.segments().count() >= 1);
    }
}

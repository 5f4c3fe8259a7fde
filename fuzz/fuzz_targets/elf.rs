//! Mapped files searched for an interpreter (any file a process maps): the
//! ELF symbol reader and the version readers; the native unwinder's
//! symbols (MiniDebugInfo's xz too).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tracer::python::discover;

fuzz_target!(|data: &[u8]| {
    let _ = discover::read_elf(data);
    let _ = discover::find_version_string(data);
    let _ = discover::version_from_getversion(data);
    let _ = tracer::native::Symbols::of_file(data);
});

//! Mapped files searched for an interpreter (any file a process maps): the
//! ELF symbol reader and the version readers; the native unwinder's
//! symbols (MiniDebugInfo's xz too).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tracer::python::interpreter;

fuzz_target!(|data: &[u8]| {
    let _ = interpreter::read_elf(data);
    let _ = interpreter::find_version_string(data);
    let _ = interpreter::version_from_getversion(data);
    let _ = tracer::native::Symbols::of_file(data);
});

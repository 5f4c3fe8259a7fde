//! The offsets asyncio tasks are read with, as read from a target's
//! memory: its `.AsyncioDebug` section and the task walk's fields of
//! `_Py_DebugOffsets` (3.14, 3.15, and a version without a table).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&minor, raw)) = data.split_first() else {
        return;
    };
    let _ = tracer::python::asyncio_offsets::parse_section(raw);
    let _ = tracer::python::asyncio_offsets::decode_object_offsets(raw, 13 + u32::from(minor % 4));
});

//! `_Py_DebugOffsets` as read from a target's memory: the 3.13, 3.14 and
//! 3.15 layouts, and the scan for a newer version's (3.16, 3.17).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&minor, raw)) = data.split_first() else {
        return;
    };
    let _ = tracer::python::layout::scan_debug_layout(raw);
    let _ = tracer::python::layout::decode_debug_offsets(raw, 13 + u32::from(minor % 5));
});

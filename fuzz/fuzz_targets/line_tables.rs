//! Code objects' line tables, as read from a target's memory: each
//! version's decoder, at any instruction offset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tracer::python::code;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let (head, table) = data.split_at(12);
    let first = u32::from_le_bytes(head[..4].try_into().unwrap());
    let offset = u64::from_le_bytes(head[4..].try_into().unwrap());
    let _ = code::lnotab_line(table, first, offset);
    let _ = code::linetable310_line(table, first, offset);
    let _ = code::locations_line(table, first, offset);
});

//! tracefs `format` files and `sched_switch`'s print format.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let format = tracer::tracefs::EventFormat::parse("fuzz", text);
    let _ = format.offset("prev_state");
    let _ = tracer::tracefs::task_state_mask(text);
});

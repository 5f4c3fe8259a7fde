//! The kernel's BTF blob, and the member and tracepoint look-ups made in it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = tracer::kernel::btf::Btf::parse(data) else {
        return;
    };
    let _ = btf.member_offset("task_struct", "exit_code");
    let _ = btf.struct_size("upid");
    let _ = tracer::kernel::btf::pid_ns_offsets(&btf);
    let _ = tracer::kernel::btf::file_offsets(&btf);
    let _ = btf.tracepoint_args("sched_switch");
    let _ = tracer::kernel::btf::KernelOffsets::from_btf(&btf, &mut Vec::new());
});

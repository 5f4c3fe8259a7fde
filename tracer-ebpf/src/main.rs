//! Kernel side of `tracer`: one module per concern (`io`, `sched`,
//! `processes`, `signals`, `python`, `memory`, `loops`, `native`, `requests`: the same names as in `tracer-common` and
//! the userspace `analysis`), all sharing the maps in
//! `maps.rs`. Every program starts by asking "is the current process traced?"
//! (one hash lookup) and returns at once when it is not.
#![no_std]
#![no_main]
// BPF atomics in inline assembly (fd_rows.rs): the object is built for
// BPF v1, whose compiler rejects the fetching atomics (kernel 5.12+).
#![feature(asm_experimental_arch)]

mod fd_rows;
mod io;
mod loops;
mod maps;
mod memory;
mod native;
mod processes;
mod python;
mod requests;
mod sched;
mod signals;
mod skips;
mod steps;
mod syscalls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

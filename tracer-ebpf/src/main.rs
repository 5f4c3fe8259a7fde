//! Kernel side of `tracer`: one module per concern, all sharing the maps in
//! `maps.rs`. Every program starts by asking "is the current process traced?"
//! (one hash lookup) and returns at once when it is not.
#![no_std]
#![no_main]

mod io;
mod maps;
mod proc;
mod python;
mod sched;
mod signal;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

//! Loops of a bounded count, for both objects: the kernel's `bpf_loop`
//! (5.17), whose step the verifier checks once, in the object for new
//! kernels; a plain bounded loop, which the verifier walks step by step,
//! in the object for older ones (`without-bpf-loop`, built beside it by
//! `tracer/build.rs`; userspace loads the one the kernel takes). The two
//! objects differ here, in how much a loop may do (`BPF_LOOP`), and in the
//! Python sampler's walk (`python/walk_loop.rs` or `python/walk_pieces.rs`).

/// This object calls `bpf_loop`: a loop may be long (its step is
/// verified once), and the native unwinder runs.
pub const BPF_LOOP: bool = cfg!(not(feature = "without-bpf-loop"));

/// A loop's body: `step(i)` for `i` from 0, until it returns false.
pub trait Step {
    fn step(&mut self, index: u64) -> bool;
}

/// `body.step(i)` for `i` in `0..N` until it returns false: with
/// `bpf_loop` (one step verified), else a bounded loop (each unrolled).
#[inline(always)]
pub fn repeat<const N: usize, S: Step>(body: &mut S) {
    #[cfg(not(feature = "without-bpf-loop"))]
    // SAFETY: `step_of::<S>` is the callback `bpf_loop` expects, and
    // `body` outlives the call.
    unsafe {
        aya_ebpf::helpers::generated::bpf_loop(
            N as u32,
            step_of::<S> as *mut core::ffi::c_void,
            (body as *mut S).cast(),
            0,
        );
    }
    #[cfg(feature = "without-bpf-loop")]
    for i in 0..N {
        if !body.step(i as u64) {
            break;
        }
    }
}

/// One step of [`repeat`]: the `bpf_loop` callback (0: go on, 1: stop).
#[cfg(not(feature = "without-bpf-loop"))]
#[inline(never)]
extern "C" fn step_of<S: Step>(index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `ctx` is the body `repeat` passed to bpf_loop.
    let body = unsafe { &mut *ctx.cast::<S>() };
    if body.step(index) { 0 } else { 1 }
}

/// `$step(i, $ctx)` for `i` in `0..$n` until it returns non-zero, with
/// `bpf_loop` only: no step in the object without it, where the native
/// unwind's searches as bounded loops are more than the verifier takes,
/// so that object unwinds no native stack (userspace asks for none, and
/// says so).
#[cfg(not(feature = "without-bpf-loop"))]
macro_rules! repeat_with_bpf_loop {
    ($n:expr, $step:expr, $ctx:expr) => {
        // SAFETY: `$step` is an `extern "C" fn(u64, *mut c_void) -> i64`
        // and the caller's `$ctx` outlives the call.
        unsafe {
            aya_ebpf::helpers::generated::bpf_loop(
                $n,
                $step as *mut core::ffi::c_void,
                ($ctx).cast(),
                0,
            )
        }
    };
}

#[cfg(feature = "without-bpf-loop")]
macro_rules! repeat_with_bpf_loop {
    ($n:expr, $step:expr, $ctx:expr) => {{
        let _ = ($n, $step, $ctx);
    }};
}

pub(crate) use repeat_with_bpf_loop;

#![no_std]
// The eBPF programs live in the `tracer` binary target (src/main.rs), built by
// aya-build for bpfel-unknown-none. This empty library lets the userspace crate
// declare a build-dependency on this package so cargo rebuilds it on change.

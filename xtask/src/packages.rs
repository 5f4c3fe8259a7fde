//! Every Debian package the project's commands start, in one place, by what
//! needs it. Each is installed by name with `--no-install-recommends`
//! ([`crate::setup::ensure_apt`]), so a developer's machine and a fresh one
//! hold the same packages for the project: a program a test starts that
//! Debian only *recommends* (podman's `catatonit`) is named here, or a
//! machine where someone once installed with recommends hides its absence.
//!
//! `cargo xtask setup` installs all of them ([`ALL`]); `build`, `demo`,
//! `test`, `dist`, `bench` and `kernels` each install their own group first
//! (`kernels`' only then: see [`KERNELS`]).

/// The interpreter the demo, the benchmark and most tests run.
pub const PYTHON: &str = "python3.11";

/// The build: LLVM 22's development files (bpf-linker links against them),
/// and strace, what the tests and the benchmark hold the tracer against.
pub const BUILD: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "strace",
];

/// `cargo xtask demo`.
pub const DEMO: &[&str] = &[PYTHON];

/// The end-to-end tests: the interpreter of most of them, the tools they
/// start (`unshare` and `setpriv`, `script`, `kill`, strace), the exports'
/// official consumers (`go tool pprof`, a real Prometheus scraping
/// `--serve`), the servers and programs that embed CPython, a container
/// runtime and what podman needs for pods.
pub const TEST: &[&str] = &[
    PYTHON,
    // `/usr/bin/python3`: the official bindings' reader (OTLP, the pod).
    "python3",
    "util-linux",
    "bsdutils",
    "procps",
    "strace",
    "golang-go",
    "prometheus",
    // --web-config (tests/secure.rs): test certificates, a client over HTTPS.
    "openssl",
    "curl",
    // Servers and programs that embed CPython (tests/embedded.rs); C
    // extensions built and stripped, with MiniDebugInfo, and a C++ library
    // (tests/native.rs).
    "gcc",
    "g++",
    "libpython3.11-dev",
    "binutils",
    "xz-utils",
    "uwsgi-core",
    "uwsgi-plugin-python3",
    "apache2",
    "libapache2-mod-wsgi-py3",
    // Real containers (tests/containers.rs): crun refuses hybrid cgroups,
    // runc runs. `podman kube play` builds its pause image around
    // catatonit, which podman only recommends.
    "podman",
    "runc",
    "catatonit",
    // The DaemonSet's pod template read as YAML (tests/daemonset_pod.py).
    "python3-yaml",
    // --live driven in a real terminal of 80x24 (tests/live.rs).
    "tmux",
];

/// The Debian roots of the other CPython versions (tests and dist --check),
/// the free-threaded 3.13 built from trixie's source on the host, and the
/// PyPI packages cached for the tests (pip of `/usr/bin/python3`).
pub const ROOTS: &[&str] = &[
    "debootstrap",
    // The arm64 root's second stage and apt run under qemu (binfmt_misc).
    "qemu-user-static",
    "python3",
    "python3-pip",
    "make",
    "gcc",
    "libffi-dev",
    "zlib1g-dev",
    "xz-utils",
];

/// `cargo xtask dist`: readelf (the static check) and dpkg-deb.
pub const DIST: &[&str] = &["binutils", "dpkg"];

/// `cargo xtask dist --target aarch64` and the arm64 checks: the cross
/// linker and its static glibc, binutils for arm64 objects, qemu's
/// user-mode emulator (the binary says its version under it), and podman
/// for the multi-arch image.
pub const CROSS: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "binutils-aarch64-linux-gnu",
    "qemu-user-static",
    "podman",
];

/// `cargo xtask dist --check`: the venv module, man-db (with groff) for
/// `man tracer`, the shells whose completions are checked, and podman for
/// the image.
pub const DIST_CHECK: &[&str] = &[
    PYTHON,
    "python3.11-venv",
    "man-db",
    "bash",
    "zsh",
    "fish",
    "podman",
    "runc",
    "catatonit",
];

/// `cargo xtask bench`: the peers measured side by side, and bpftool (the
/// Python suite reads the sampler's own run time).
pub const BENCH: &[&str] = &["bpftrace", "bpftool", "hyperfine"];

/// `cargo xtask kernels` (installed when it runs, not by `setup`: Debian
/// bookworm's qemu-system-x86 replaces a newer qemu-utils a machine may
/// have from backports): the emulators that boot Debian's kernels, the
/// static busybox the initramfs' /init runs on, cpio for the initramfs,
/// dpkg-deb to unpack a kernel package and readelf (binutils) to check
/// that the tracer is static (the bullseye root's glibc is older).
pub const KERNELS: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-arm",
    "busybox-static",
    "cpio",
    "dpkg",
    "binutils",
];

/// Every group, each package once.
pub fn all() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for group in [BUILD, DEMO, TEST, ROOTS, DIST, CROSS, DIST_CHECK, BENCH] {
        for package in group {
            if !all.contains(package) {
                all.push(package);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are Debian package names: lower case, no version, no spaces.
    #[test]
    fn every_name_is_a_plain_package_name() {
        for package in all() {
            assert!(
                package
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
                "{package}"
            );
        }
    }

    /// Every `ensure_apt` call of xtask names one of these groups, so no
    /// package is installed that `cargo xtask setup` does not know.
    #[test]
    fn packages_are_named_here_only() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(
                !source.contains(concat!("ensure_apt(", "&[")),
                "{}: a package list outside packages.rs",
                path.display()
            );
        }
    }
}

//! Compiles `tracer-ebpf` for the BPF target with the nightly toolchain,
//! twice: the object for kernels with `bpf_loop` (`tracer`) and the one for
//! older kernels (`tracer-without-bpf-loop`, its `without-bpf-loop`
//! feature: the Python walk in tail-called pieces, no native unwind); both are
//! embedded in the binary (see `kernel/probes/mod.rs`). Fuzz builds (`--cfg
//! fuzzing`) exercise the parsers only and embed empty objects.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        let out = std::env::var("OUT_DIR").context("OUT_DIR")?;
        std::fs::write(std::path::Path::new(&out).join("tracer"), b"")?;
        std::fs::write(
            std::path::Path::new(&out).join("tracer-without-bpf-loop"),
            b"",
        )?;
        return Ok(());
    }
    let metadata =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["metadata", "--format-version=1", "--no-deps"])
            .output()
            .context("cargo metadata")?;
    let text = String::from_utf8(metadata.stdout).context("cargo metadata output")?;
    // Find the eBPF package's manifest directory without pulling in cargo_metadata.
    let marker = "\"manifest_path\":\"";
    let root_dir = text
        .split(marker)
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|p| p.ends_with("tracer-ebpf/Cargo.toml"))
        .and_then(|p| p.strip_suffix("/Cargo.toml"))
        .ok_or_else(|| anyhow!("tracer-ebpf package not found in cargo metadata"))?
        .to_owned();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?);
    let build = |features: &[&str]| {
        aya_build::build_ebpf(
            [Package {
                name: "tracer-ebpf",
                root_dir: &root_dir,
                features,
                ..Default::default()
            }],
            Toolchain::default(),
        )
    };
    // aya-build writes the object as `tracer` (the bin's name): the one
    // without bpf_loop first, renamed, then the other.
    build(&["without-bpf-loop"])?;
    std::fs::rename(out.join("tracer"), out.join("tracer-without-bpf-loop"))
        .context("renaming the without-bpf-loop object")?;
    build(&[])
}

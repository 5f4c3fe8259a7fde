//! Compiles `tracer-ebpf` for the BPF target with the nightly toolchain; the
//! object is embedded in the binary (see `probes/mod.rs`). Fuzz builds
//! (`--cfg fuzzing`) exercise the parsers only and embed an empty object.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        let out = std::env::var("OUT_DIR").context("OUT_DIR")?;
        std::fs::write(std::path::Path::new(&out).join("tracer"), b"")?;
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
    aya_build::build_ebpf(
        [Package {
            name: "tracer-ebpf",
            root_dir: &root_dir,
            ..Default::default()
        }],
        Toolchain::default(),
    )
}

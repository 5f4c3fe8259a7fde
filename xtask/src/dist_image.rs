//! The multi-architecture image of `cargo xtask dist --target ...`: each
//! architecture's image built with podman (`FROM scratch` and a `COPY`:
//! nothing runs, so no emulation), the images added to one manifest list,
//! and the list written with every image as an OCI archive, which `podman
//! load` reads and `skopeo copy oci-archive:... docker://REGISTRY/tracer`
//! pushes as one multi-arch tag.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, ensure};

use crate::{arch::Arch, util::run};

/// Builds `images` (architecture, build context) into
/// `dir/tracer-VERSION-image.tar`; removes what it made in podman's store.
pub fn multi_arch_archive(
    dir: &Path,
    images: &[(Arch, PathBuf)],
    version: &str,
) -> Result<PathBuf> {
    let list = format!("localhost/tracer-dist:{version}");
    let archive = dir.join(format!("tracer-{version}-image.tar"));
    let tags: Vec<String> = images
        .iter()
        .map(|(arch, _)| format!("localhost/tracer-dist:{version}-{}", arch.debian()))
        .collect();
    let podman = || Command::new("podman");
    let _ = podman().args(["manifest", "rm", &list]).output();
    let result = (|| {
        run(podman().args(["manifest", "create", &list]))?;
        for ((arch, context), tag) in images.iter().zip(&tags) {
            let platform = format!("linux/{}", arch.debian());
            run(podman()
                .args(["build", "--quiet", "--platform", &platform, "-t", tag])
                .arg(context))?;
            run(podman().args([
                "manifest",
                "add",
                &list,
                &format!("containers-storage:{tag}"),
            ]))?;
        }
        run(podman()
            .args(["manifest", "push", "--all", "--quiet", &list])
            .arg(format!("oci-archive:{}", archive.display())))?;
        let listed = podman().args(["manifest", "inspect", &list]).output()?;
        let listed = String::from_utf8_lossy(&listed.stdout);
        for (arch, _) in images {
            ensure!(
                listed.contains(&format!("\"architecture\": \"{}\"", arch.debian())),
                "the manifest list has no {} image:\n{listed}",
                arch.debian()
            );
        }
        Ok(())
    })();
    let _ = podman().args(["manifest", "rm", &list]).output();
    for tag in &tags {
        let _ = podman().args(["rmi", "-f", tag]).output();
    }
    result?;
    eprintln!(
        "wrote {} ({})",
        archive.display(),
        images
            .iter()
            .map(|(arch, _)| format!("linux/{}", arch.debian()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(archive)
}

/// The platforms (`linux/ARCH`) of the manifest list in the OCI archive
/// at `archive`: its `index.json` names the list, a blob.
pub fn archive_platforms(archive: &Path) -> Result<Vec<String>> {
    let member = |name: &str| -> Result<serde_json::Value> {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg(name)
            .output()?;
        ensure!(out.status.success(), "no {name} in {}", archive.display());
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let index = member("index.json")?;
    let digest = index["manifests"][0]["digest"].as_str().unwrap_or_default();
    let list = member(&format!("blobs/{}", digest.replacen(':', "/", 1)))?;
    Ok(list["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or("?"),
                m["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

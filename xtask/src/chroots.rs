//! Interpreters of other CPython versions for the end-to-end tests, made with
//! `debootstrap` from the Debian mirror apt already uses, once, in a cache
//! outside the repository. A root that cannot be made fails the test run with
//! the reason: nothing is skipped silently.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{setup::ensure_apt, util::run};

/// One interpreter in its own Debian root.
pub struct Chroot {
    /// Environment variable the tests read the root from.
    pub env: &'static str,
    pub suite: &'static str,
    pub package: &'static str,
    /// The interpreter inside the root, to tell a finished root from a partial one.
    pub python: &'static str,
}

pub const CHROOTS: &[Chroot] = &[Chroot {
    env: "TRACER_PY314_ROOT",
    suite: "sid",
    package: "python3.14",
    python: "usr/bin/python3.14",
}];

/// Where the roots live: `$TRACER_CHROOT_CACHE`, else /var/cache/tracer-tests.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TRACER_CHROOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/tracer-tests"))
}

/// Makes every missing root; returns (env var, root) pairs for the tests.
pub fn ensure_chroots() -> Result<Vec<(&'static str, PathBuf)>> {
    let mut roots = Vec::new();
    for chroot in CHROOTS {
        // A root given by the caller is used as is.
        if let Some(given) = std::env::var_os(chroot.env) {
            roots.push((chroot.env, PathBuf::from(given)));
            continue;
        }
        let root = cache_dir().join(format!("{}-{}", chroot.suite, chroot.package));
        if root.join(chroot.python).exists() {
            eprintln!("ok {} root {}", chroot.package, root.display());
        } else {
            make_root(chroot, &root)?;
        }
        roots.push((chroot.env, root));
    }
    Ok(roots)
}

fn make_root(chroot: &Chroot, root: &Path) -> Result<()> {
    ensure_apt(&["debootstrap"])?;
    let mirror = debian_mirror()?;
    eprintln!(
        "installing {} root {} (debootstrap {} from {mirror}, about a minute)",
        chroot.package,
        root.display(),
        chroot.suite
    );
    let mut partial = root.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", chroot.package))
        .arg(chroot.suite)
        .arg(&partial)
        .arg(&mirror))
    .with_context(|| {
        format!(
            "debootstrap of {} {} failed: the {} end-to-end tests need it (is the Debian mirror reachable?)",
            chroot.suite, chroot.package, chroot.package
        )
    })?;
    if !partial.join(chroot.python).exists() {
        bail!(
            "debootstrap finished but {} has no {}",
            partial.display(),
            chroot.python
        );
    }
    let _ = fs::remove_dir_all(root);
    fs::rename(&partial, root).with_context(|| format!("moving the root to {}", root.display()))
}

/// The first `URIs:` (deb822) or `deb URL` (one-line) entry of apt's sources.
fn debian_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut extra: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        extra.sort();
        files.extend(extra);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(mirror) = mirror_in(&text) {
            return Ok(mirror);
        }
    }
    bail!("no Debian mirror found in apt's sources (/etc/apt/sources.list, sources.list.d)")
}

/// A Debian archive URL in one sources file (not the security archive).
pub fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.strip_prefix("URIs:")
                .and_then(|rest| rest.split_whitespace().next())
                .or_else(|| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("deb"))
                        .then(|| words.find(|w| w.contains("://")))
                        .flatten()
                })
        })
        .find(|url| url.contains("debian") && !url.contains("security"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let one_line = "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_in("deb http://security.debian.org/debian-security x main"),
            None
        );
    }
}

//! Process helpers shared by the xtask commands.

use std::{
    env,
    ffi::{OsStr, OsString},
    fmt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context as _, Result, bail};

/// A child command that ran but did not succeed; `main` exits with its code.
#[derive(Debug)]
pub struct CommandFailed {
    pub command: String,
    pub code: Option<i32>,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "`{}` failed with exit code {code}", self.command),
            None => write!(f, "`{}` was killed by a signal", self.command),
        }
    }
}

impl std::error::Error for CommandFailed {}

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// `$CARGO_HOME/bin`, or `~/.cargo/bin`: where `cargo install` puts bpf-linker.
pub fn cargo_bin_dir() -> PathBuf {
    if let Some(home) = env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join("bin");
    }
    let home = env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cargo/bin")
}

/// `PATH` with `extra` directories prepended (each only if not already first in line).
pub fn path_with(extra: &[PathBuf]) -> OsString {
    let current = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    dirs.extend(env::split_paths(&current).filter(|dir| !extra.contains(dir)));
    env::join_paths(dirs).expect("PATH entries contain no ':'")
}

/// A command run from the workspace root with `~/.cargo/bin` on `PATH`.
pub fn tool_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root())
        .env("PATH", path_with(&[cargo_bin_dir()]));
    cmd
}

/// Shell-like rendering of a command, for messages.
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quote `s` for a POSIX shell (and for hyperfine's / bpftrace's word splitting).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Run `cmd` with inherited stdio; an error (with its exit code) if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    check_status(shown, status)
}

/// `Ok` if the command `shown` succeeded, else a `CommandFailed` with its code.
pub fn check_status(shown: String, status: std::process::ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(CommandFailed {
            command: shown,
            code: status.code(),
        }
        .into())
    }
}

/// Run `cmd` quietly and capture its output; `None` if it could not be started.
pub fn output(cmd: &mut Command) -> Option<Output> {
    cmd.output().ok()
}

/// Whether we run as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fail with a clear message unless we are root.
pub fn require_root(what: &str, suggestion: &str) -> Result<()> {
    if !is_root() {
        bail!(
            "`cargo xtask {what}` loads eBPF programs and must run as root: run `{suggestion}` \
             (if sudo's secure_path then hides cargo: `sudo -E env \"PATH=$PATH\" cargo xtask {what}`)"
        );
    }
    Ok(())
}

/// Cargo's target directory (`$CARGO_TARGET_DIR` or `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `target/release/tracer`, which must exist (after `build_tracer`).
pub fn tracer_binary() -> Result<PathBuf> {
    let tracer = target_dir().join("release/tracer");
    if !tracer.is_file() {
        bail!(
            "{} does not exist after the build; run `cargo build --release -p tracer` and look at its errors",
            tracer.display()
        );
    }
    Ok(tracer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/usr/bin/python3.11"), "/usr/bin/python3.11");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn path_prepends_once() {
        let dir = PathBuf::from("/nonexistent/xtask-bin");
        let path = path_with(std::slice::from_ref(&dir));
        let dirs: Vec<_> = env::split_paths(&path).collect();
        assert_eq!(dirs[0], dir);
        assert_eq!(dirs.iter().filter(|d| **d == dir).count(), 1);
    }
}

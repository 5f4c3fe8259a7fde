//! Files the tracer writes, as root, often in shared directories: every one
//! is opened before tracing starts (a bad path fails at once instead of
//! after the whole trace), never through a symbolic link (a link planted by
//! another user would make root overwrite its target), a regular file only
//! with one name, anything else (a FIFO, `/dev/null`) only when it is ours;
//! a new file is created with mode 0644. Contents are written at the end;
//! until then an existing file is left as it was. The tracer's own
//! descriptors (`/dev/stdout`, `/dev/fd/N` as shells' `>(...)` give) are
//! links by nature and are used as they are.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "refusing to write {path}: it is a symbolic link (remove it, or name the file it points to)"
    )]
    Symlink { path: PathBuf },
    #[error("refusing to write {path}: it is not a regular file, and another user owns it")]
    NotOurs { path: PathBuf },
    #[error(
        "refusing to write {path}: it has {links} hard links (another name of the same file \
         would be overwritten)"
    )]
    HardLinked { path: PathBuf, links: u64 },
    #[error(
        "cannot write window reports to {path}: it does not exist (with --every, -o names the \
         directory the reports go to, and the tracer does not make it: mkdir -p {path})"
    )]
    NoWindowDir { path: PathBuf },
    #[error(
        "cannot write window reports to {path}: it is not a directory (with --every, -o names \
         the directory the reports go to, not a file)"
    )]
    NotWindowDir { path: PathBuf },
    #[error("cannot open {path} for writing: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An output file, open and checked, not written yet.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    file: File,
    /// Made by this run: removed if nothing is written to it.
    created: bool,
    /// A regular file: truncated before it is written.
    regular: bool,
}

impl Output {
    /// Opens (or creates) `path` for writing, refusing symbolic links,
    /// anything but a regular file, and a file with other names.
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        let open_err = |source| OutputError::Open {
            path: path.to_owned(),
            source,
        };
        if is_own_descriptor(path) {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(open_err)?;
            return Ok(Self {
                path: path.to_owned(),
                file,
                created: false,
                regular: false,
            });
        }
        let mut options = OpenOptions::new();
        options
            .write(true)
            .mode(0o644)
            // O_NOFOLLOW: a symlink as the last component fails with ELOOP.
            // O_NONBLOCK: a FIFO planted at the path cannot hang the open.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
        let (file, created) = match options.clone().create_new(true).open(path) {
            Ok(file) => (file, true),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                (options.open(path).map_err(|err| refused(path, err))?, false)
            }
            Err(err) => return Err(refused(path, err)),
        };
        let meta = file.metadata().map_err(open_err)?;
        let regular = meta.file_type().is_file();
        // SAFETY: geteuid has no preconditions.
        if !regular && meta.uid() != unsafe { libc::geteuid() } {
            return Err(OutputError::NotOurs {
                path: path.to_owned(),
            });
        }
        if regular && meta.nlink() > 1 {
            return Err(OutputError::HardLinked {
                path: path.to_owned(),
                links: meta.nlink(),
            });
        }
        // Writes at the end may block (a pipe's reader), like any writer's.
        // SAFETY: F_SETFL on a descriptor we own.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) };
        Ok(Self {
            path: path.to_owned(),
            file,
            created,
            regular,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `bytes`.
    pub fn write(self, bytes: &[u8]) -> Result<(), OutputError> {
        self.write_with(|file| file.write_all(bytes))
    }

    /// Replaces the file's contents with what `write` writes to it.
    pub fn write_with(
        mut self,
        write: impl FnOnce(&mut File) -> std::io::Result<()>,
    ) -> Result<(), OutputError> {
        let write_err = |source| OutputError::Write {
            path: self.path.clone(),
            source,
        };
        if self.regular {
            self.file.set_len(0).map_err(write_err)?;
        }
        write(&mut self.file).map_err(write_err)?;
        self.file.flush().map_err(write_err)
    }

    /// Nothing to write after all: a file this run created is removed,
    /// an existing one is left as it was.
    pub fn discard(self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The tracer's own standard streams and descriptors, named through /dev or /proc.
fn is_own_descriptor(path: &Path) -> bool {
    let text = path.to_string_lossy();
    matches!(text.as_ref(), "/dev/stdout" | "/dev/stderr")
        || text.starts_with("/dev/fd/")
        || text.starts_with("/proc/self/fd/")
}

/// The error for a failed open: a symlink says so (ELOOP from O_NOFOLLOW).
fn refused(path: &Path, source: std::io::Error) -> OutputError {
    if source.raw_os_error() == Some(libc::ELOOP)
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        OutputError::Symlink {
            path: path.to_owned(),
        }
    } else {
        OutputError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

/// `--every`: the directory the window reports go to, opened (never
/// through a symbolic link) and checked writable before tracing. Each
/// report is written under a temporary name and renamed into place, so a
/// reader never sees half a file; only the last `keep` reports this run
/// wrote are kept.
#[derive(Debug)]
pub struct WindowDir {
    path: PathBuf,
    dir: File,
    keep: usize,
    written: std::collections::VecDeque<std::ffi::CString>,
}

impl WindowDir {
    pub fn open(path: &Path, keep: usize) -> Result<Self, OutputError> {
        // (O_NOFOLLOW | O_DIRECTORY says only "not a directory" of a link.)
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(OutputError::Symlink {
                path: path.to_owned(),
            });
        }
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ENOENT) => OutputError::NoWindowDir {
                    path: path.to_owned(),
                },
                Some(libc::ENOTDIR) => OutputError::NotWindowDir {
                    path: path.to_owned(),
                },
                _ => refused(path, err),
            })?;
        let windows = Self {
            path: path.to_owned(),
            dir,
            keep: keep.max(1),
            written: Default::default(),
        };
        // Writable now, not after the trace.
        let probe = c".tracer-write-check";
        windows.create(probe)?;
        // SAFETY: a NUL-terminated name relative to our directory descriptor.
        unsafe { libc::unlinkat(windows.dir.as_raw_fd(), probe.as_ptr(), 0) };
        Ok(windows)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create(&self, name: &std::ffi::CStr) -> Result<File, OutputError> {
        use std::os::fd::FromRawFd;
        // SAFETY: openat with a NUL-terminated name; the result is owned below.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(OutputError::Open {
                path: self.path.join(name.to_string_lossy().as_ref()),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: a descriptor we just opened and own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Writes `bytes` as `name` (a plain file name), then drops the oldest
    /// of this run's reports beyond `keep`.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let write_err = |source| OutputError::Write {
            path: self.path.join(name),
            source,
        };
        let name = std::ffi::CString::new(name).expect("a file name without NUL");
        let temporary = std::ffi::CString::new(format!(".{}.partial", name.to_string_lossy()))
            .expect("a file name without NUL");
        let mut file = self.create(&temporary)?;
        file.write_all(bytes).map_err(write_err)?;
        drop(file);
        // SAFETY: NUL-terminated names relative to our directory descriptor.
        let renamed = unsafe {
            let dir = self.dir.as_raw_fd();
            libc::renameat(dir, temporary.as_ptr(), dir, name.as_ptr())
        };
        if renamed != 0 {
            return Err(write_err(std::io::Error::last_os_error()));
        }
        self.written.push_back(name);
        while self.written.len() > self.keep {
            if let Some(old) = self.written.pop_front() {
                // SAFETY: as above.
                unsafe { libc::unlinkat(self.dir.as_raw_fd(), old.as_ptr(), 0) };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tracer-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn new_files_are_0644_and_written_at_the_end() {
        let dir = scratch("new");
        let path = dir.join("r.json");
        let out = Output::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644 & !umask());
        out.write(b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        // An existing file is kept until written, then replaced whole.
        let out = Output::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        out.write(b"1").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"1");
        // Discarded: an existing file stays, a new one goes.
        Output::open(&path).unwrap().discard();
        assert!(path.exists());
        let fresh = dir.join("fresh.svg");
        Output::open(&fresh).unwrap().discard();
        assert!(!fresh.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// `--every -o DIR`: a missing directory or a file says what -o is
    /// with --every, and what to do.
    #[test]
    fn a_window_dir_that_is_missing_or_a_file_says_so() {
        let dir = scratch("windows");
        let missing = dir.join("reports");
        let err = WindowDir::open(&missing, 2).unwrap_err();
        assert!(matches!(err, OutputError::NoWindowDir { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("with --every, -o names the directory")
                && message.contains(&format!("mkdir -p {}", missing.display())),
            "{message}"
        );
        let file = dir.join("report.json");
        std::fs::write(&file, "").unwrap();
        let err = WindowDir::open(&file, 2).unwrap_err();
        assert!(matches!(err, OutputError::NotWindowDir { .. }), "{err:?}");
        std::fs::create_dir(&missing).unwrap();
        assert!(WindowDir::open(&missing, 2).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn umask() -> u32 {
        // SAFETY: umask only swaps the process's mask; set it back at once.
        let mask = unsafe { libc::umask(0o022) };
        unsafe { libc::umask(mask) };
        mask
    }

    #[test]
    fn links_and_special_files_are_refused() {
        let dir = scratch("links");
        let target = dir.join("precious");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.join("r.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = Output::open(&link).unwrap_err();
        assert!(matches!(err, OutputError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // A dangling link is refused too (it would create its target).
        let dangling = dir.join("d.json");
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            Output::open(&dangling),
            Err(OutputError::Symlink { .. })
        ));
        assert!(!dir.join("nowhere").exists());
        let hard = dir.join("hard.json");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(matches!(
            Output::open(&hard),
            Err(OutputError::HardLinked { links: 2, .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        // Special files: ours (root's /dev/null) yes, another user's FIFO no.
        Output::open(Path::new("/dev/null"))
            .unwrap()
            .write(b"x")
            .unwrap();
        let fifo = dir.join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; then hand the FIFO to nobody (65534).
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o666) }, 0);
        assert_eq!(unsafe { libc::chown(name.as_ptr(), 65534, 65534) }, 0);
        // With a reader, so that opening it for writing does not fail first.
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        assert!(matches!(
            Output::open(&fifo),
            Err(OutputError::NotOurs { .. })
        ));
        // Our own descriptors are used as they are.
        assert!(Output::open(Path::new("/dev/stderr")).is_ok());
        let err = Output::open(&dir.join("missing/r.json")).unwrap_err();
        assert!(matches!(err, OutputError::Open { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

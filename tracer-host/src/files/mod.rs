//! What a descriptor names: its path, filesystem kind and `st_blksize`,
//! looked up through `/proc/PID/fd` while the descriptor is open, or by
//! resolving the opened path in the process's own root and cwd after.

pub mod table;

use std::{borrow::Cow, ffi::CString, fs, os::unix::fs::MetadataExt, path::Path};

use crate::{
    procfs,
    sockets::{Socket, UNNAMED_SOCKETS},
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// A socket named by its addresses has its name here (`Socket::name`).
    pub path: String,
    /// "proc", "sysfs", "ext4", "tmpfs", "pipe", "socket"..., or "unknown"
    /// (a name of the table below, held by reference: a million files).
    pub fs: Cow<'static, str>,
    pub blksize: Option<u64>,
    /// A socket's protocol and addresses, once named (boxed: most files
    /// are not sockets, and a million files' table holds this).
    pub socket: Option<Box<Socket>>,
    /// A socket left as `socket:[INODE]`: why.
    pub unnamed: Option<&'static str>,
}

impl FileInfo {
    /// The name of its `--serve` series: a connection's ephemeral port as
    /// `*` (connections come and go; a series each would only churn).
    /// Sockets that could not be named share one: `socket:[*]`.
    pub fn series_name(&self) -> String {
        match self.socket.as_deref().and_then(Socket::folded) {
            Some(folded) => folded.name(),
            None if self.unnamed.is_some() => UNNAMED_SOCKETS.into(),
            None => self.path.clone(),
        }
    }
}

/// Names a filesystem magic number (`statfs.f_type`), as `/proc/PID/mountinfo` would.
pub fn fs_name(magic: i64) -> Cow<'static, str> {
    let name = match magic as u32 {
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0xef53 => "ext4",
        0x0102_1994 => "tmpfs",
        0x5049_5045 => "pipe",
        0x534f_434b => "socket",
        0x1cd1 => "devpts",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x794c_7630 => "overlay",
        0x6367_7270 => "cgroup2",
        0x6462_6720 => "debugfs",
        0x7472_6163 => "tracefs",
        0x0904_1934 => "anon_inode",
        0x6969 => "nfs",
        0xcafe_4a11 => "bpf",
        0x6573_5546 => "fuse",
        0x7371_7368 => "squashfs",
        0x4d44 => "vfat",
        0x0102_1997 => "9p",
        0x7363_6673 => "securityfs",
        0xf15f => "ecryptfs",
        0x2fc1_2fc1 => "zfs",
        _ => return format!("0x{:x}", magic as u32).into(),
    };
    name.into()
}

fn statfs_type(path: &Path) -> Option<i64> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut buf) };
    (rc == 0).then_some(buf.f_type as i64)
}

/// Stats `path` (following links, as the process's descriptor would).
fn describe(path: &Path) -> Option<(Cow<'static, str>, Option<u64>)> {
    use std::os::unix::fs::FileTypeExt;
    let fs = statfs_type(path).map(fs_name)?;
    let meta = fs::metadata(path).ok();
    // A named pipe lives on a filesystem but reads like a pipe: say so, as
    // for pipes and sockets (a socket file likewise).
    // (An anonymous pipe is a FIFO too, on pipefs: it stays "pipe".)
    let fs = match meta.as_ref().map(|m| m.file_type()) {
        Some(t) if t.is_fifo() && fs != "pipe" => "fifo".into(),
        Some(t) if t.is_socket() => "socket".into(),
        _ => fs,
    };
    Some((fs, meta.map(|m| m.blksize())))
}

/// What the kernel side read about a descriptor (`FileEvent` of `FdDiscovered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFile {
    pub ino: u64,
    pub fs_magic: u64,
    pub blksize: u32,
    /// `i_mode` (0: unknown).
    pub mode: u32,
    /// A TCP or UDP socket's ends as the kernel had them.
    pub socket: Option<crate::sockets::KernelSocket>,
}

/// What regular files were found to be, by directory and by what the
/// kernel read about them at open (filesystem magic, block size, file
/// type): a walk of a million files in a few directories is described
/// with a few `statfs` calls, not two path lookups per file.
#[derive(Default)]
pub struct ByDirectory {
    seen: std::collections::HashMap<DirectoryKey, (Cow<'static, str>, Option<u64>)>,
}

/// (directory, filesystem magic, block size, file type bits).
type DirectoryKey = (String, u64, u32, u32);

/// Directories remembered before [`ByDirectory`] starts over.
const MAX_DIRECTORIES: usize = 8192;

impl ByDirectory {
    fn key(path: &str, kernel: &KernelFile) -> Option<DirectoryKey> {
        let (dir, _) = path.rsplit_once('/')?;
        Some((
            dir.to_owned(),
            kernel.fs_magic,
            kernel.blksize,
            kernel.mode & S_IFMT,
        ))
    }

    /// A file like one described before in its directory, if any.
    pub fn get(&self, path: &str, kernel: &KernelFile) -> Option<FileInfo> {
        let (fs, blksize) = self.seen.get(&Self::key(path, kernel)?)?;
        Some(FileInfo {
            path: path.to_owned(),
            fs: fs.clone(),
            blksize: *blksize,
            ..Default::default()
        })
    }

    pub fn insert(&mut self, kernel: &KernelFile, info: &FileInfo) {
        let Some(key) = Self::key(&info.path, kernel) else {
            return;
        };
        if self.seen.len() >= MAX_DIRECTORIES {
            self.seen.clear();
        }
        self.seen.insert(key, (info.fs.clone(), info.blksize));
    }
}

/// The file-type bits of `i_mode`.
const S_IFMT: u32 = 0o170000;

/// A descriptor that was closed before /proc could show it, named from what
/// the kernel read at its first read: pipes and sockets get the name
/// /proc/PID/fd would have shown (`pipe:[INODE]`, `socket:[INODE]`); other
/// files keep a placeholder name, with their filesystem.
pub fn from_kernel(fd: i32, kernel: Option<&KernelFile>) -> FileInfo {
    let unnamed = format!("fd {fd} (closed before it could be named)");
    let Some(k) = kernel else {
        return FileInfo {
            path: unnamed,
            fs: "unknown".into(),
            blksize: None,
            ..Default::default()
        };
    };
    let fs = fs_name(k.fs_magic as i64);
    let path = match fs.as_ref() {
        "pipe" => format!("pipe:[{}]", k.ino),
        "socket" => format!("socket:[{}]", k.ino),
        _ => unnamed,
    };
    FileInfo {
        path,
        fs,
        blksize: (k.blksize > 0).then_some(u64::from(k.blksize)),
        ..Default::default()
    }
}

/// Resolves an open descriptor of a live process.
pub fn from_fd(tgid: u32, fd: i32) -> Option<FileInfo> {
    let path = procfs::fd_target(tgid, fd)?;
    let (fs, blksize) = describe(&procfs::fd_path(tgid, fd)).unwrap_or(("unknown".into(), None));
    Some(FileInfo {
        path,
        fs,
        blksize,
        ..Default::default()
    })
}

/// Where `opened` (a path as the process passed it to `openat`) lives when
/// looked at from outside: `/proc/self` is the process's own procfs
/// directory, relative paths start at its cwd, absolute ones at its root
/// (which differs inside a container).
pub fn outside_path(tgid: u32, opened: &str) -> String {
    for (prefix, replacement) in [
        ("/proc/self/", procfs::own_dir(tgid)),
        ("/proc/thread-self/", procfs::thread_self_dir(tgid)),
    ] {
        if let Some(rest) = opened.strip_prefix(prefix) {
            return format!("{replacement}{rest}");
        }
    }
    let outside = if opened.starts_with('/') {
        procfs::in_root(tgid, opened)
    } else {
        procfs::in_cwd(tgid, opened)
    };
    outside.to_string_lossy().into_owned()
}

/// Describes a file the process opened as `opened` (descriptor `fd`):
/// through the path first (the descriptor may already be closed and its
/// number reused by another file), else through the descriptor; when the
/// process is gone, through `root`, the root directory it was last seen with
/// (a chroot or container), then in our own root.
pub fn from_open(tgid: u32, fd: i32, opened: &str, root: Option<&str>) -> FileInfo {
    let regular_absolute = opened.starts_with('/') && !opened.starts_with("/proc/");
    let described = describe(Path::new(&outside_path(tgid, opened)))
        .or_else(|| {
            let info = from_fd(tgid, fd)?;
            (info.fs != "unknown").then_some((info.fs, info.blksize))
        })
        .or_else(|| {
            let root = root.filter(|r| *r != "/" && regular_absolute)?;
            describe(Path::new(&format!(
                "{}{opened}",
                root.trim_end_matches('/')
            )))
        })
        // A short-lived process may be gone (or a zombie, whose root is
        // unreadable): an absolute path then most likely names the same file
        // in our own root, and a file of its /proc/self is a procfs file
        // like the one in ours.
        .or_else(|| {
            (regular_absolute || own_procfs_file(opened))
                .then(|| describe(Path::new(opened)))
                .flatten()
        })
        // A file of another process's procfs directory (`/proc/1234/stat`,
        // polled by a parent) gone with that process: a procfs file like
        // the same one of ours.
        .or_else(|| describe(Path::new(&procfs_twin(opened)?)));
    let (fs, blksize) = described.unwrap_or(("unknown".into(), None));
    FileInfo {
        path: opened.to_owned(),
        fs,
        blksize,
        ..Default::default()
    }
}

/// `/proc/PID/FILE` -> our `/proc/self/FILE`, for a file of a process's
/// procfs directory that is not a link out of it; a system-wide procfs
/// file (`/proc/sys/vm/overcommit_memory`, `/proc/meminfo`) -> ours.
fn procfs_twin(opened: &str) -> Option<String> {
    let rest = opened.strip_prefix("/proc/")?;
    let (pid, file) = rest.split_once('/').unwrap_or((rest, ""));
    if matches!(pid, "self" | "thread-self") || pid.is_empty() {
        return None;
    }
    if !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Some(opened.to_owned());
    }
    let twin = format!("/proc/self/{file}");
    own_procfs_file(&twin).then_some(twin)
}

/// A file of the process's own procfs directory (`/proc/self/status`...),
/// not a link out of it (`fd/3`, `cwd`, `exe`... would name our files).
fn own_procfs_file(opened: &str) -> bool {
    let rest = opened
        .strip_prefix("/proc/self/")
        .or_else(|| opened.strip_prefix("/proc/thread-self/"));
    rest.is_some_and(|rest| {
        let first = rest.split('/').next().unwrap_or_default();
        !matches!(first, "fd" | "cwd" | "root" | "exe" | "map_files")
    })
}

/// Every open descriptor of a process, for files opened before we attached.
pub fn snapshot(tgid: u32) -> Vec<(i32, FileInfo)> {
    procfs::fds(tgid)
        .into_iter()
        .filter_map(|fd| Some((fd, from_fd(tgid, fd)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_gone_process_procfs_file_is_described_by_ours() {
        assert_eq!(
            super::procfs_twin("/proc/4321/stat").as_deref(),
            Some("/proc/self/stat")
        );
        assert_eq!(super::procfs_twin("/proc/4321/fd/3"), None);
        assert_eq!(super::procfs_twin("/proc/self/stat"), None);
        assert_eq!(
            super::procfs_twin("/proc/sys/vm/overcommit_memory").as_deref(),
            Some("/proc/sys/vm/overcommit_memory")
        );
        let info = super::from_open(u32::MAX, -1, "/proc/4000000/status", None);
        assert_eq!((info.fs.as_ref(), info.blksize), ("proc", Some(1024)));
    }

    use super::*;

    #[test]
    fn names_common_filesystems() {
        assert_eq!(fs_name(0x9fa0), "proc");
        assert_eq!(fs_name(0x62656572), "sysfs");
        assert_eq!(fs_name(0xef53), "ext4");
        assert_eq!(fs_name(0x50495045), "pipe");
        assert_eq!(fs_name(0x12345), "0x12345");
    }

    #[test]
    fn resolves_paths_in_the_process_view() {
        assert_eq!(outside_path(42, "/proc/self/status"), "/proc/42/status");
        assert_eq!(outside_path(42, "/etc/hosts"), "/proc/42/root/etc/hosts");
        assert_eq!(outside_path(42, "data.txt"), "/proc/42/cwd/data.txt");
        assert_eq!(
            outside_path(42, "/proc/thread-self/stat"),
            "/proc/42/task/42/stat"
        );
    }

    #[test]
    fn names_procfs_files_of_a_process_that_is_gone() {
        let gone = u32::MAX - 1;
        let info = from_open(gone, 3, "/proc/self/status", None);
        assert_eq!((info.fs.as_ref(), info.blksize), ("proc", Some(1024)));
        let info = from_open(gone, 3, "/proc/thread-self/stat", None);
        assert_eq!(info.fs, "proc");
        // Links out of /proc/self would describe the tracer's own files.
        assert_eq!(from_open(gone, 3, "/proc/self/fd/0", None).fs, "unknown");
        assert_eq!(from_open(gone, 3, "/proc/self/cwd/x", None).fs, "unknown");
    }

    #[test]
    fn names_files_of_a_gone_process_in_a_chroot_through_its_last_root() {
        let gone = u32::MAX - 1;
        let root = std::env::temp_dir().join(format!("tracer-root-{}", std::process::id()));
        fs::create_dir_all(root.join("only-in-root")).unwrap();
        fs::write(root.join("only-in-root/lib.py"), "x = 1\n").unwrap();
        let root_text = root.to_string_lossy().into_owned();
        let expected = describe(&root.join("only-in-root/lib.py")).unwrap().0;
        let info = from_open(gone, 3, "/only-in-root/lib.py", Some(&root_text));
        assert_eq!(info.fs, expected);
        assert_eq!(info.path, "/only-in-root/lib.py");
        // Without the root, the path means nothing in ours.
        assert_eq!(
            from_open(gone, 3, "/only-in-root/lib.py", None).fs,
            "unknown"
        );
        // procfs files are not looked for under the root.
        let info = from_open(gone, 3, "/proc/self/status", Some(&root_text));
        assert_eq!(info.fs, "proc");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_closed_pipes_and_sockets_from_the_kernels_record() {
        let pipe = KernelFile {
            ino: 358961,
            fs_magic: 0x5049_5045,
            blksize: 4096,
            mode: 0,
            socket: None,
        };
        let info = from_kernel(3, Some(&pipe));
        assert_eq!(
            (info.path.as_str(), info.fs.as_ref(), info.blksize),
            ("pipe:[358961]", "pipe", Some(4096))
        );
        let socket = KernelFile {
            fs_magic: 0x534f_434b,
            ..pipe
        };
        assert_eq!(from_kernel(4, Some(&socket)).path, "socket:[358961]");
        // A regular file: its filesystem, but no name to give it.
        let ext4 = KernelFile {
            fs_magic: 0xef53,
            ..pipe
        };
        let info = from_kernel(5, Some(&ext4));
        assert_eq!(
            (info.path.as_str(), info.fs.as_ref()),
            ("fd 5 (closed before it could be named)", "ext4")
        );
        let info = from_kernel(6, None);
        assert_eq!(info.fs, "unknown");
    }

    #[test]
    fn a_named_pipe_is_a_fifo_whatever_its_filesystem() {
        let dir = std::env::temp_dir().join(format!("tracer-fifo-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("queue");
        let name = CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let info = from_open(std::process::id(), 3, fifo.to_str().unwrap(), None);
        assert_eq!(info.fs, "fifo");
        // An anonymous pipe stays a pipe.
        let (read, _write) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let info = from_fd(std::process::id(), read.as_raw_fd()).unwrap();
        assert_eq!(info.fs, "pipe");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn describes_our_own_descriptors() {
        let me = std::process::id();
        let file = fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsRawFd;
        let info = from_fd(me, file.as_raw_fd()).unwrap();
        assert_eq!(info.fs, "proc");
        assert_eq!(info.blksize, Some(1024));
        assert_eq!(info.path, format!("/proc/{me}/status"));
        // The same file by the path the process used, after it is closed.
        let fd = file.as_raw_fd();
        drop(file);
        let info = from_open(me, fd, "/proc/self/status", None);
        assert_eq!((info.fs.as_ref(), info.blksize), ("proc", Some(1024)));
        assert_eq!(info.path, "/proc/self/status");
    }
}

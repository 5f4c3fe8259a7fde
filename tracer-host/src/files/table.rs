//! What userspace learned of each file a traced process read: the path,
//! filesystem and `st_blksize` behind each (process, kernel file id), from
//! its open record, `/proc/PID/fd`, or the kernel's record of it; sockets
//! named by their addresses from the network tables (or, once closed, as
//! the kernel read them). The figures are `analysis::io`'s.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use tracer_common::IoKey;

use super::{self as files, FileInfo};
use crate::sockets::{self, Socket, SocketNames, Unnamed};

#[derive(Default)]
pub struct FileTable {
    /// (tgid, file_id) -> what the file is.
    files: HashMap<(u32, u64), FileInfo>,
    /// Descriptors open when tracing started: (tgid, fd) -> file.
    at_attach: HashMap<(u32, i32), FileInfo>,
    /// The last root directory (`/proc/PID/root`) seen for a process, to
    /// describe the files of a chroot or container that is gone by the time
    /// its open records are handled.
    roots: HashMap<u32, String>,
    /// Files whose path was longer than the kernel side captures.
    truncated: HashSet<(u32, u64)>,
    /// (root, path) -> what a regular file opened by that absolute path
    /// was: every Python start on a node opens the same few dozen modules,
    /// described once rather than with two system calls each time.
    described: HashMap<(String, String), FileInfo>,
    by_directory: files::ByDirectory,
    sockets: SocketNames,
    /// Sockets discovered and not named yet: (tgid, file id).
    pending: Vec<(u32, u64)>,
    /// Their ends as the kernel read them (inet sockets): their name when
    /// `/proc/PID/net` no longer lists them.
    kernel_sockets: HashMap<(u32, u64), sockets::KernelSocket>,
}

/// Paths remembered in [`FileTable::described`] before it starts over.
const MAX_DESCRIBED: usize = 8192;

impl FileTable {
    /// A file as a test knows it (the unit tests of this crate and of the
    /// layers above: not behind a feature, which `cargo test --workspace`
    /// would turn on and the static build off, compiling the tracer twice).
    pub fn insert(&mut self, tgid: u32, file_id: u64, info: FileInfo) {
        self.files.insert((tgid, file_id), info);
    }

    /// Remembers a process's open descriptors, in case one is read and closed
    /// before its discovery event is handled.
    pub fn remember_open_fds(&mut self, tgid: u32) {
        for (fd, info) in files::snapshot(tgid) {
            self.at_attach.insert((tgid, fd), info);
        }
    }

    /// `truncated`: `path` is only the first bytes of a longer path.
    /// `kernel`: what the kernel read about the file at open.
    pub fn on_opened(
        &mut self,
        (tgid, fd, file_id): (u32, i32, u64),
        path: &str,
        truncated: bool,
        kernel: Option<files::KernelFile>,
    ) {
        if self.files.contains_key(&(tgid, file_id)) {
            return;
        }
        if truncated {
            self.truncated.insert((tgid, file_id));
        }
        let regular = path.starts_with('/')
            && !truncated
            && !["/proc/", "/sys/", "/dev/"]
                .iter()
                .any(|p| path.starts_with(p));
        let kernel = kernel.filter(|_| regular);
        if let Some(info) = kernel.and_then(|k| self.by_directory.get(path, &k)) {
            self.files.insert((tgid, file_id), info);
            return;
        }
        if let Some(root) = crate::procfs::root(tgid) {
            self.roots.insert(tgid, root);
        }
        let root = self.roots.get(&tgid).map(String::as_str);
        // (`regular`: a file of a regular filesystem, by its absolute
        // path: procfs, sysfs and devices name a different thing per
        // process or boot.)
        let key = (root.unwrap_or("/").to_owned(), path.to_owned());
        if regular && let Some(info) = self.described.get(&key) {
            self.files.insert((tgid, file_id), info.clone());
            return;
        }
        let info = files::from_open(tgid, fd, path, root);
        if let Some(k) = kernel.filter(|_| info.fs != "unknown") {
            self.by_directory.insert(&k, &info);
        }
        if regular && info.fs != "unknown" {
            if self.described.len() >= MAX_DESCRIBED {
                self.described.clear();
            }
            self.described.insert(key, info.clone());
        }
        self.files.insert((tgid, file_id), info);
    }

    /// Files known, for `RUST_LOG=debug`.
    pub fn len(&self) -> usize {
        self.files.len() + self.at_attach.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `--serve`: keeps the files of (tgid, file id) that `keep` says.
    pub fn retain(&mut self, keep: impl Fn(u32, u64) -> bool) {
        self.files.retain(|&(tgid, file_id), _| keep(tgid, file_id));
        self.truncated
            .retain(|&(tgid, file_id)| keep(tgid, file_id));
    }

    /// `--serve`: process `tgid` is gone; its files are forgotten.
    pub fn forget(&mut self, tgid: u32) {
        self.files.retain(|&(pid, _), _| pid != tgid);
        self.at_attach.retain(|&(pid, _), _| pid != tgid);
        self.roots.remove(&tgid);
        self.truncated.retain(|&(pid, _)| pid != tgid);
        self.kernel_sockets.retain(|&(pid, _), _| pid != tgid);
    }

    /// `tgid`'s root directory, learned elsewhere (the Python interpreter's).
    pub fn note_root(&mut self, tgid: u32, root: &str) {
        self.roots.insert(tgid, root.to_owned());
    }

    /// `kernel`: what the kernel read about the descriptor at its first
    /// read, for when it is closed before /proc can show it.
    pub fn on_discovered(
        &mut self,
        tgid: u32,
        fd: i32,
        file_id: u64,
        kernel: Option<files::KernelFile>,
    ) {
        // A pipe or socket the kernel saw: its record is the one to trust
        // (a short-lived one's descriptor number may name another by now).
        let from_kernel = kernel
            .map(|k| files::from_kernel(fd, Some(&k)))
            .filter(|info| matches!(info.fs.as_ref(), "pipe" | "socket"));
        let mut info = from_kernel.unwrap_or_else(|| {
            files::from_fd(tgid, fd)
                .map(|mut info| {
                    // Closed between the readlink and the statfs: the kernel's
                    // record still says what filesystem it was on.
                    if info.fs == "unknown"
                        && let Some(k) = kernel.as_ref()
                    {
                        let known = files::from_kernel(fd, Some(k));
                        (info.fs, info.blksize) = (known.fs, known.blksize);
                    }
                    info
                })
                .or_else(|| self.at_attach.get(&(tgid, fd)).cloned())
                .unwrap_or_else(|| files::from_kernel(fd, kernel.as_ref()))
        });
        if let Some(inode) = sockets::inode_of(&info.path) {
            match self.sockets.cached(tgid, inode) {
                Some(socket) => name(&mut info, Ok(socket)),
                None => {
                    // Named with the others of this batch (`name_pending`).
                    info.unnamed = Some(NOT_LOOKED_UP);
                    self.pending.push((tgid, file_id));
                    if let Some(socket) = kernel.and_then(|k| k.socket) {
                        self.kernel_sockets.insert((tgid, file_id), socket);
                    }
                }
            }
        }
        self.files.insert((tgid, file_id), info);
    }

    /// Names the sockets discovered since the last call, reading each
    /// namespace's tables once: called after each batch of events.
    pub fn name_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.name_sockets(pending);
    }

    fn name_sockets(&mut self, keys: Vec<(u32, u64)>) {
        if keys.is_empty() {
            return;
        }
        let wanted: Vec<(u32, u64)> = keys
            .iter()
            .map(|key| {
                let path = self.files.get(key).map_or("", |info| info.path.as_str());
                (key.0, sockets::inode_of(path).unwrap_or(0))
            })
            .collect();
        let named = self.sockets.name_all(&wanted);
        for (key, result) in keys.into_iter().zip(named) {
            // Listed: named as the table has it (which port is ephemeral
            // known from the listening sockets). Gone: as the kernel had it.
            let kernel = self.kernel_sockets.remove(&key);
            let result = match (result, kernel) {
                (Err(_), Some(socket)) => Ok(socket.socket()),
                (result, _) => result,
            };
            if let Some(info) = self.files.get_mut(&key) {
                name(info, result);
            }
        }
    }

    /// At the end: the sockets not named yet are looked up once more
    /// (their process may still hold them).
    pub fn name_remaining(&mut self) {
        self.pending.clear();
        let mut unnamed: Vec<(u32, u64)> = self
            .files
            .iter()
            .filter(|(_, info)| info.unnamed.is_some())
            .map(|(key, _)| *key)
            .collect();
        unnamed.sort_unstable();
        self.name_sockets(unnamed);
    }

    /// The sockets of the (process, file id)s read.
    pub fn sockets_read(&self, read: HashSet<(u32, u64)>) -> Vec<((u32, u64), Socket)> {
        read.into_iter()
            .filter_map(|key| Some((key, self.files.get(&key)?.socket.as_deref()?.clone())))
            .collect()
    }

    /// Whether (process, file id) is a socket that could not be named.
    pub fn is_unnamed(&self, tgid: u32, file_id: u64) -> bool {
        self.files
            .get(&(tgid, file_id))
            .is_some_and(|i| i.unnamed.is_some())
    }

    /// Shows (process, file id) as `path`, a row folded with others
    /// (`socket`: the folded socket, when it is one).
    pub fn show_as(&mut self, (tgid, file_id): (u32, u64), path: String, socket: Option<Socket>) {
        if let Some(info) = self.files.get_mut(&(tgid, file_id)) {
            info.path = path;
            if socket.is_some() {
                info.socket = socket.map(Box::new);
            }
        }
    }

    /// Whether (process, file id) has been named (by its open record, its
    /// discovery, or a test).
    pub fn knows(&self, tgid: u32, file_id: u64) -> bool {
        self.files.contains_key(&(tgid, file_id))
    }

    /// Whether (process, file id)'s path was longer than the kernel copied.
    pub fn is_truncated(&self, tgid: u32, file_id: u64) -> bool {
        self.truncated.contains(&(tgid, file_id))
    }

    /// The path a (process, file) is reported under in `FileIo`.
    pub fn path_of(&self, tgid: u32, file_id: u64) -> Cow<'_, str> {
        let key = IoKey {
            tgid,
            file_id,
            ..IoKey::default()
        };
        match self.lookup(&key) {
            Cow::Borrowed(info) => Cow::Borrowed(&info.path),
            Cow::Owned(info) => Cow::Owned(info.path),
        }
    }

    /// What the file a read of descriptor `fd` went to is.
    pub fn describe(&self, tgid: u32, fd: i32, file_id: u64) -> FileInfo {
        self.lookup(&IoKey {
            tgid,
            fd,
            file_id,
            ..IoKey::default()
        })
        .into_owned()
    }

    /// What the file of a kernel row is; a lost or bad one says so.
    pub fn lookup(&self, key: &IoKey) -> Cow<'_, FileInfo> {
        if key.file_id == 0 {
            return Cow::Owned(FileInfo {
                path: format!("fd {} (bad descriptor)", key.fd),
                fs: "none".into(),
                ..Default::default()
            });
        }
        match self.files.get(&(key.tgid, key.file_id)) {
            Some(info) => Cow::Borrowed(info),
            // Its event was lost: say so rather than guess.
            None => Cow::Owned(FileInfo {
                path: format!("fd {} (name lost)", key.fd),
                fs: "unknown".into(),
                ..Default::default()
            }),
        }
    }
}

/// A socket's `unnamed` until its batch is looked up.
const NOT_LOOKED_UP: &str = "not looked up";

/// A socket's name, or why it has none but `socket:[INODE]`. A socket
/// missing from the tables while its process lived stays so (not "gone"
/// when its process exited later).
fn name(info: &mut FileInfo, result: Result<Socket, Unnamed>) {
    match result {
        Ok(socket) => {
            info.path = socket.name();
            info.socket = Some(Box::new(socket));
            info.unnamed = None;
        }
        Err(Unnamed::Gone) if info.unnamed == Some(Unnamed::NotListed.reason()) => {}
        Err(why) => info.unnamed = Some(why.reason()),
    }
}

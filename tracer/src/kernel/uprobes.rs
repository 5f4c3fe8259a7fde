//! Uprobes attached off the event loop. Registering a uprobe takes
//! milliseconds (5-20 ms for the first one of a file here), and the first
//! Python look at a process comes right when its program starts forking and
//! reading: the loop must go on draining the ring buffer meanwhile (a
//! fork's Python stack is read while the parent still lives). So a thread
//! of its own opens each uprobe (`perf_event_open` on the kernel's uprobe
//! PMU) and gives it the loaded program (`PERF_EVENT_IOC_SET_BPF`, with a
//! copy of the program's descriptor); the loop collects what happened.

use std::{
    ffi::CString,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
    path::{Path, PathBuf},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::perf_event;

/// Where the kernel publishes the uprobe PMU's type number.
const UPROBE_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";

#[derive(Debug, thiserror::Error)]
pub enum UprobeError {
    #[error("the kernel has no uprobe PMU ({UPROBE_TYPE}: {0})")]
    NoPmu(String),
    #[error("uprobe at {path}+{offset:#x}: {source}")]
    Attach {
        path: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// One request: every offset of one file, for every process running it.
struct Request {
    path: PathBuf,
    /// The file's (device, inode), given back with the outcome.
    file: (u64, u64),
    offsets: Vec<u64>,
}

/// What became of a request.
pub struct Attached {
    pub path: PathBuf,
    pub file: (u64, u64),
    pub offsets: Vec<u64>,
    pub result: Result<Duration, UprobeError>,
    /// When the last of its uprobes was attached (CLOCK_MONOTONIC ns).
    pub at_ns: u64,
}

impl UprobeError {
    /// The file was gone (the process that showed it exited).
    pub fn file_gone(&self) -> bool {
        matches!(self, Self::Attach { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The thread that attaches one loaded uprobe program, and its links.
pub struct Attacher {
    requests: Option<mpsc::Sender<Request>>,
    done: mpsc::Receiver<Attached>,
    thread: Option<JoinHandle<Vec<OwnedFd>>>,
}

impl Attacher {
    /// `program`: a descriptor of the loaded uprobe program.
    pub fn start(program: OwnedFd) -> Self {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (report, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("uprobes".into())
            .spawn(move || {
                let mut links = Vec::new();
                let pmu = pmu_type();
                for request in incoming {
                    let started = Instant::now();
                    let result = match &pmu {
                        Ok(pmu) => request
                            .offsets
                            .iter()
                            .try_for_each(|&offset| {
                                links.push(attach(*pmu, &request.path, offset, &program)?);
                                Ok(())
                            })
                            .map(|()| started.elapsed()),
                        Err(err) => Err(UprobeError::NoPmu(err.clone())),
                    };
                    let _ = report.send(Attached {
                        path: request.path,
                        file: request.file,
                        offsets: request.offsets,
                        result,
                        at_ns: crate::host::clock::monotonic_ns(),
                    });
                }
                links
            })
            .ok();
        Self {
            requests: Some(requests),
            done,
            thread,
        }
    }

    /// Attaches at `offsets` of the file `path` (device and inode `file`), soon.
    pub fn request(&self, path: &Path, file: (u64, u64), offsets: &[u64]) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(Request {
                path: path.to_owned(),
                file,
                offsets: offsets.to_vec(),
            });
        }
    }

    /// Requests done since the last call.
    pub fn finished(&self) -> Vec<Attached> {
        self.done.try_iter().collect()
    }

    /// Waits for the requests in flight; returns every link (closing one
    /// detaches it).
    pub fn stop(&mut self) -> Vec<OwnedFd> {
        self.requests = None;
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

fn pmu_type() -> Result<u32, String> {
    std::fs::read_to_string(UPROBE_TYPE)
        .map_err(|err| err.to_string())?
        .trim()
        .parse()
        .map_err(|err: std::num::ParseIntError| err.to_string())
}

/// A uprobe at `offset` of `path` in every process (any CPU: a uprobe's
/// program runs wherever the probed instruction does), running `program`.
fn attach(pmu: u32, path: &Path, offset: u64, program: &OwnedFd) -> Result<OwnedFd, UprobeError> {
    let err = |source| UprobeError::Attach {
        path: path.display().to_string(),
        offset,
        source,
    };
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let mut attr = perf_event::attr(pmu);
    // config (8..16) 0: an entry probe; config1 = uprobe_path, config2 = probe_offset.
    attr[56..64].copy_from_slice(&(c_path.as_ptr() as u64).to_ne_bytes());
    attr[64..72].copy_from_slice(&offset.to_ne_bytes());
    // The path outlives the call.
    perf_event::open_with_program(&attr, program.as_fd()).map_err(err)
}

/// Closes `links` in a child process once this one has exited, and returns
/// the child's pid (`None`: nothing to close, or the fork failed and they
/// were closed here). Closing a uprobe's perf event waits for an RCU grace
/// period, ~100 ms each here, one after another: the tracer's exit does not
/// wait for them. This process's own copies are closed by its exit, cheaply,
/// since the child holds the last references until it has seen that exit
/// (a pidfd of this process, readable once it is gone).
pub fn close_after_exit(links: Vec<OwnedFd>) -> Option<u32> {
    if links.is_empty() {
        return None;
    }
    let me = crate::host::pidfd::open(std::process::id()).ok()?;
    let mut keep: Vec<libc::c_uint> = links
        .iter()
        .map(|fd| fd.as_raw_fd() as libc::c_uint)
        .chain([me.as_raw_fd() as libc::c_uint])
        .collect();
    keep.sort_unstable();
    // SAFETY: the child only makes async-signal-safe system calls (setsid,
    // close_range, poll, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        unsafe {
            // Out of the terminal's process group: a Ctrl-C meant for the
            // next command does not reach it.
            libc::setsid();
            // Every other descriptor closed: whoever reads this process's
            // output sees its end when it exits, not when the child does.
            let mut from: libc::c_uint = 0;
            for &fd in &keep {
                if fd > from {
                    libc::syscall(libc::SYS_close_range, from, fd - 1, 0);
                }
                from = fd + 1;
            }
            libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0);
            let mut parent = libc::pollfd {
                fd: me.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            while libc::poll(&mut parent, 1, -1) < 0 && *libc::__errno_location() == libc::EINTR {}
            libc::_exit(0);
        }
    }
    // Closed by this process's exit; the child closes the last references.
    std::mem::forget(links);
    Some(pid as u32)
}

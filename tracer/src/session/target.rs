//! The process being traced: attach to a running one, or launch a command
//! held just before `exec` until its pid is in the traced set, so nothing it
//! does is missed. A pidfd tells when it exits.

use std::{
    ffi::{CString, OsString},
    fs,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
};

use tokio::io::unix::AsyncFd;

use crate::host::{pidfd, procfs};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with pid {0} (check `ps -p {0}`)")]
    NoSuchProcess(u32),
    #[error(
        "pid {pid} ({comm}) is a kernel thread: it runs no program of its own to trace \
         (trace the process that makes it work instead)"
    )]
    KernelThread { pid: u32, comm: String },
    #[error("process {pid} exited before tracing could start")]
    Gone { pid: u32 },
    #[error("--dump shows a running process: give it with --pid PID")]
    DumpWithoutPid,
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run `{command}`: {source}")]
    Exec {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("watching process {pid} for exit: {source}")]
    Watch {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

pub struct Target {
    pub pid: u32,
    pub launched: bool,
    command: String,
    /// `None` for a node-wide trace: no one process whose exit ends it.
    pidfd: Option<OwnedFd>,
    /// Launch mode: write end of the pipe the held child waits on.
    release: Option<fs::File>,
    /// Launch mode: CLOEXEC pipe carrying `errno` if `exec` fails.
    exec_status: Option<fs::File>,
}

fn pipe() -> std::io::Result<(fs::File, fs::File)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) })
}

impl Target {
    pub fn attach(pid: u32) -> Result<Self, TargetError> {
        if !procfs::exists(pid) {
            return Err(TargetError::NoSuchProcess(pid));
        }
        if procfs::is_kernel_thread(pid) {
            let comm = procfs::comm(pid).unwrap_or_default();
            return Err(TargetError::KernelThread { pid, comm });
        }
        let pidfd = pidfd::open(pid).map_err(|source| match source.raw_os_error() {
            Some(libc::ESRCH) => TargetError::NoSuchProcess(pid),
            _ => TargetError::Watch { pid, source },
        })?;
        Ok(Self {
            pid,
            launched: false,
            command: String::new(),
            pidfd: Some(pidfd),
            release: None,
            exec_status: None,
        })
    }

    /// A node-wide trace (`--all`, `--cgroup`): no process to wait for;
    /// it ends on `--duration` or a signal.
    pub fn none() -> Self {
        Self {
            pid: 0,
            launched: false,
            command: String::new(),
            pidfd: None,
            release: None,
            exec_status: None,
        }
    }

    /// Forks `command`; the child waits before `exec` until [`Target::release`].
    pub fn spawn_held(command: &[OsString]) -> Result<Self, TargetError> {
        Self::spawn_held_with(command, None)
    }

    /// [`Target::spawn_held`] with standard input, output and error on
    /// /dev/null (`--live`: the view owns the terminal).
    pub fn spawn_held_detached(command: &[OsString]) -> Result<Self, TargetError> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|source| TargetError::Spawn {
                command: command
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                source,
            })?;
        Self::spawn_held_with(command, Some(null.into()))
    }

    fn spawn_held_with(
        command: &[OsString],
        stdio: Option<std::os::fd::OwnedFd>,
    ) -> Result<Self, TargetError> {
        let display = command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let spawn_err = |source| TargetError::Spawn {
            command: display.clone(),
            source,
        };
        let args: Vec<CString> = command
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| spawn_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let (hold_read, hold_write) = pipe().map_err(spawn_err)?;
        let (status_read, status_write) = pipe().map_err(spawn_err)?;
        let tracer = std::process::id() as libc::pid_t;

        // SAFETY: the child only calls async-signal-safe functions (close, dup2,
        // prctl, getppid, poll, ioctl, execvp, write, _exit) on memory
        // prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(spawn_err(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                // The held child must never outlive the tracer while held:
                // it holds a copy of every BPF program and link the tracer
                // loaded, and its command must not run untraced. Closing
                // its copy of the write end makes the tracer's death a
                // hang-up on the pipe; PR_SET_PDEATHSIG kills it even if
                // the tracer dies before that (checked once more after, in
                // case the tracer died between fork and prctl).
                libc::close(hold_write.as_raw_fd());
                libc::close(status_read.as_raw_fd());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != tracer {
                    libc::_exit(125);
                }
                // Wait without read(2): the child is traced by now, and a
                // read here would be reported as the command's own (on a
                // descriptor that exec then closes, so it cannot be named).
                let fd = hold_read.as_raw_fd();
                let mut wait = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                while libc::poll(&mut wait, 1, -1) < 0 && *libc::__errno_location() == libc::EINTR {
                }
                let mut pending: libc::c_int = 0;
                if libc::ioctl(fd, libc::FIONREAD, &mut pending) != 0 || pending < 1 {
                    // The tracer went away before releasing us.
                    libc::_exit(125);
                }
                // Released: from here the command is traced, and it keeps
                // running if the tracer is stopped later (like strace's).
                libc::prctl(libc::PR_SET_PDEATHSIG, 0);
                if let Some(null) = &stdio {
                    for fd in 0..3 {
                        libc::dup2(null.as_raw_fd(), fd);
                    }
                }
                libc::execvp(argv[0], argv.as_ptr());
                let errno = *libc::__errno_location();
                let bytes = errno.to_ne_bytes();
                libc::write(status_write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(127);
            }
        }
        drop(hold_read);
        drop(status_write);
        drop(stdio);
        let pid = pid as u32;
        let pidfd = pidfd::open(pid).map_err(spawn_err)?;
        Ok(Self {
            pid,
            launched: true,
            command: display,
            pidfd: Some(pidfd),
            release: Some(hold_write),
            exec_status: Some(status_read),
        })
    }

    /// Launch mode: lets the held child `exec`, and waits until it has (or failed to).
    pub fn release(&mut self) -> Result<(), TargetError> {
        let (Some(mut release), Some(mut status)) = (self.release.take(), self.exec_status.take())
        else {
            return Ok(());
        };
        let command = self.command.clone();
        release
            .write_all(&[1])
            .map_err(|source| TargetError::Spawn {
                command: command.clone(),
                source,
            })?;
        drop(release);
        let mut errno = [0u8; 4];
        match status.read(&mut errno) {
            // exec succeeded: the CLOEXEC pipe closed with nothing written.
            Ok(0) => Ok(()),
            Ok(_) => {
                // Reap the failed child so it does not linger as a zombie.
                unsafe { libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0) };
                Err(TargetError::Exec {
                    command,
                    source: std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)),
                })
            }
            Err(source) => Err(TargetError::Spawn { command, source }),
        }
    }

    /// Resolves when the process has exited.
    pub async fn exited(&self) -> Result<(), TargetError> {
        let watch_err = |source| TargetError::Watch {
            pid: self.pid,
            source,
        };
        let Some(pidfd) = &self.pidfd else {
            return std::future::pending().await;
        };
        let fd = pidfd.try_clone().map_err(watch_err)?;
        // SAFETY: the AsyncFd owns this pidfd, so it outlives the registration.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|err| watch_err(err.into_parts().1))?;
        let _guard = fd.readable().await.map_err(watch_err)?;
        Ok(())
    }

    pub fn is_alive(&self) -> bool {
        let Some(pidfd) = &self.pidfd else {
            return true;
        };
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready == 0
    }

    /// Launch mode, after exit: reaps the child; (exit code, killing signal).
    pub fn reap(&self) -> (Option<i32>, Option<i32>) {
        if !self.launched || self.is_alive() {
            return (None, None);
        }
        let mut status = 0;
        // SAFETY: our own child; it has exited, so this does not block.
        let rc = unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
        if rc != self.pid as i32 {
            return (None, None);
        }
        if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        }
    }

    /// (comm, argv) as /proc shows them now.
    pub fn describe(&self) -> Result<(String, Vec<String>), TargetError> {
        let gone = || TargetError::Gone { pid: self.pid };
        let comm = procfs::comm(self.pid).ok_or_else(gone)?;
        let argv = procfs::cmdline(self.pid).ok_or_else(gone)?;
        Ok((comm, argv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_refused_by_name() {
        let err = Target::attach(2).err().unwrap();
        assert!(
            matches!(err, TargetError::KernelThread { pid: 2, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("(kthreadd) is a kernel thread"),
            "{err}"
        );
    }

    #[test]
    fn no_such_process() {
        assert!(matches!(
            Target::attach(0),
            Err(TargetError::NoSuchProcess(0))
        ));
        assert!(matches!(
            Target::attach(u32::MAX - 1),
            Err(TargetError::NoSuchProcess(_))
        ));
    }

    #[test]
    fn held_child_runs_only_after_release() {
        let mut target = Target::spawn_held(&["/bin/true".into()]).unwrap();
        assert!(target.is_alive());
        target.release().unwrap();
        // exec happened; wait for exit through the pidfd.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(target.exited()).unwrap();
        assert_eq!(target.reap(), (Some(0), None));
    }

    #[test]
    fn exec_failure_is_reported() {
        let mut target = Target::spawn_held(&["/nonexistent/program".into()]).unwrap();
        let err = target.release().unwrap_err().to_string();
        assert!(err.contains("cannot run `/nonexistent/program`"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }
}

//! The process being traced: attach to a running one, or launch a command
//! held just before `exec` until its pid is in the traced set, so nothing it
//! does is missed, and held again by its `exec` (a ptrace stop, invisible
//! to it) until its new program has been looked at: an interpreter in the
//! executable is known before its first instruction runs. A pidfd tells
//! when it exits.

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
    /// Launch mode: where the hold at its `exec` stands.
    exec_hold: ExecHold,
    /// Its wait status, when a wait for its exec stop reaped it instead.
    reaped: Option<i32>,
}

/// The ptrace hold of a launched command at its `exec` (`PTRACE_EVENT_EXEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecHold {
    None,
    /// Seized: its exec will stop it.
    Armed,
    /// Stopped by its exec, since then.
    Stopped(std::time::Instant),
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
            exec_hold: ExecHold::None,
            reaped: None,
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
            exec_hold: ExecHold::None,
            reaped: None,
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
                crate::host::allow_huge_pages();
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
            exec_hold: ExecHold::None,
            reaped: None,
        })
    }

    /// Launch mode, before [`Target::release`]: its `exec` will stop it
    /// (a ptrace stop: no signal, nothing it can see) until
    /// [`Target::let_go`], so its new program can be looked at before it
    /// runs. Where ptrace is refused (a seccomp profile, Yama's
    /// `ptrace_scope` 3), the command runs on unheld, as it would without.
    pub fn hold_at_exec(&mut self) {
        if self.release.is_none() {
            return;
        }
        // SAFETY: our own child, held in poll(2) before its exec.
        let seized = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                self.pid as libc::pid_t,
                std::ptr::null_mut::<libc::c_void>(),
                (libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_TRACESYSGOOD) as usize
                    as *mut libc::c_void,
            )
        };
        match seized {
            0 => self.exec_hold = ExecHold::Armed,
            _ => log::info!(
                "`{}` is not held at its exec ({}): its first moments may run before \
                 its interpreter is known",
                self.command,
                std::io::Error::last_os_error()
            ),
        }
    }

    /// Launch mode, after [`Target::release`]: waits for the stop of its
    /// exec; whether it is stopped there now. Any other stop first (a
    /// signal on its way) lets it go with its signal.
    pub fn wait_for_exec_stop(&mut self) -> bool {
        if self.exec_hold != ExecHold::Armed {
            return false;
        }
        // Its exec (release() saw it) stops it, next or already.
        let Some(status) = self.wait_stopped() else {
            return false;
        };
        self.exec_hold = ExecHold::None;
        if status >> 8 == libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8) {
            self.exec_hold = ExecHold::Stopped(std::time::Instant::now());
            return true;
        }
        // A signal-delivery stop gives the signal back; a group stop is
        // kept by the detach.
        let signal = match status >> 16 {
            0 => libc::WSTOPSIG(status),
            _ => 0,
        };
        detach(self.pid as libc::pid_t, signal);
        false
    }

    /// Launch mode, stopped by its exec (or since at a system call): runs
    /// it to its next system call's entry or exit; whether it is stopped
    /// there. A signal on its way goes with it; any other stop, or its
    /// end, ends the hold.
    pub fn step_to_syscall(&mut self) -> bool {
        let ExecHold::Stopped(since) = self.exec_hold else {
            return false;
        };
        let pid = self.pid as libc::pid_t;
        let mut signal = 0;
        loop {
            if resume(libc::PTRACE_SYSCALL, pid, signal).is_err() {
                self.exec_hold = ExecHold::None;
                return false;
            }
            let Some(status) = self.wait_stopped() else {
                return false;
            };
            if libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80 {
                self.exec_hold = ExecHold::Stopped(since);
                return true;
            }
            match status >> 16 {
                // A signal-delivery stop: on with its signal.
                0 => signal = libc::WSTOPSIG(status),
                _ => {
                    detach(pid, 0);
                    self.exec_hold = ExecHold::None;
                    return false;
                }
            }
        }
    }

    /// Waits for the command's next ptrace stop: its status; `None` when
    /// it ended instead (its status kept for [`Target::reap`]).
    fn wait_stopped(&mut self) -> Option<i32> {
        let pid = self.pid as libc::pid_t;
        let mut status = 0;
        // SAFETY: our own child.
        let rc = loop {
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            if rc >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break rc;
            }
        };
        if rc != pid {
            self.exec_hold = ExecHold::None;
            return None;
        }
        if !libc::WIFSTOPPED(status) {
            self.reaped = Some(status);
            self.exec_hold = ExecHold::None;
            return None;
        }
        Some(status)
    }

    /// Launch mode: whether the command is stopped by its exec now.
    pub fn stopped_at_exec(&self) -> bool {
        matches!(self.exec_hold, ExecHold::Stopped(_))
    }

    /// Launch mode: lets a command stopped by its exec run on.
    pub fn let_go(&mut self) {
        if let ExecHold::Stopped(since) = self.exec_hold {
            detach(self.pid as libc::pid_t, 0);
            log::info!(
                "`{}` held at its exec for {:?}",
                self.command,
                since.elapsed()
            );
        }
        self.exec_hold = ExecHold::None;
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
        let status = match self.reaped {
            Some(status) => status,
            None => {
                let mut status = 0;
                // SAFETY: our own child; it has exited, so this does not block.
                let rc = unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
                if rc != self.pid as i32 {
                    return (None, None);
                }
                status
            }
        };
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

impl Drop for Target {
    /// A command still stopped by its exec runs on (an error before the
    /// trace began must not leave it stopped while the tracer exits).
    fn drop(&mut self) {
        self.let_go();
    }
}

/// Ends the ptrace of `pid`, giving it `signal` (0: none).
fn detach(pid: libc::pid_t, signal: i32) {
    if let Err(err) = resume(libc::PTRACE_DETACH, pid, signal) {
        log::debug!("pid {pid}: ptrace detach: {err}");
    }
}

/// Runs on `pid`, a process this tracer seized and that is in a ptrace
/// stop, by `request` (`PTRACE_SYSCALL`, `PTRACE_DETACH`), giving it
/// `signal` (0: none).
fn resume(request: libc::c_uint, pid: libc::pid_t, signal: i32) -> std::io::Result<()> {
    // SAFETY: no memory is passed; the kernel checks the stop and the tracer.
    let rc = unsafe {
        libc::ptrace(
            request,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            signal as usize as *mut libc::c_void,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
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

    /// Waits for the target's exit (through its pidfd): its reaped status.
    fn ran_to_its_end(target: &Target) -> (Option<i32>, Option<i32>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(target.exited()).unwrap();
        target.reap()
    }

    #[test]
    fn held_child_runs_only_after_release() {
        let mut target = Target::spawn_held(&["/bin/true".into()]).unwrap();
        assert!(target.is_alive());
        target.release().unwrap();
        // exec happened; wait for exit through the pidfd.
        assert_eq!(ran_to_its_end(&target), (Some(0), None));
    }

    /// A held command's exec stops it, in ptrace's exec stop (not a
    /// signal), until it is let go; then it runs to its end.
    #[test]
    fn held_command_stops_at_its_exec_until_let_go() {
        let mut target = Target::spawn_held(&["/bin/true".into()]).unwrap();
        target.hold_at_exec();
        target.release().unwrap();
        assert!(target.wait_for_exec_stop());
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", target.pid)).unwrap();
        let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
        assert_eq!(state, Some("t"), "{stat}");
        assert!(procfs::cmdline(target.pid).unwrap()[0].ends_with("true"));
        target.let_go();
        assert_eq!(ran_to_its_end(&target), (Some(0), None));
    }

    #[test]
    fn exec_failure_is_reported() {
        let mut target = Target::spawn_held(&["/nonexistent/program".into()]).unwrap();
        let err = target.release().unwrap_err().to_string();
        assert!(err.contains("cannot run `/nonexistent/program`"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }
}

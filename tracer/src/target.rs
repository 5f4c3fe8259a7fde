//! The process being traced: attach to a running one, or launch a command
//! held just before `exec` until its pid is in the traced set, so nothing it
//! does is missed. A pidfd tells when it exits.

use std::{
    ffi::CString,
    fs,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use tokio::io::unix::AsyncFd;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with pid {0} (check `ps -p {0}`)")]
    NoSuchProcess(u32),
    #[error("process {pid} exited before tracing could start")]
    Gone { pid: u32 },
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
    pidfd: OwnedFd,
    /// Launch mode: write end of the pipe the held child waits on.
    release: Option<fs::File>,
    /// Launch mode: CLOEXEC pipe carrying `errno` if `exec` fails.
    exec_status: Option<fs::File>,
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
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
        if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(TargetError::NoSuchProcess(pid));
        }
        let pidfd = pidfd_open(pid).map_err(|source| match source.raw_os_error() {
            Some(libc::ESRCH) => TargetError::NoSuchProcess(pid),
            _ => TargetError::Watch { pid, source },
        })?;
        Ok(Self {
            pid,
            launched: false,
            command: String::new(),
            pidfd,
            release: None,
            exec_status: None,
        })
    }

    /// Forks `command`; the child waits before `exec` until [`Target::release`].
    pub fn spawn_held(command: &[String]) -> Result<Self, TargetError> {
        let display = command.join(" ");
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

        // SAFETY: the child only calls async-signal-safe functions (poll,
        // ioctl, execvp, write, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(spawn_err(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
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
                libc::execvp(argv[0], argv.as_ptr());
                let errno = *libc::__errno_location();
                let bytes = errno.to_ne_bytes();
                libc::write(status_write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(127);
            }
        }
        drop(hold_read);
        drop(status_write);
        let pid = pid as u32;
        let pidfd = pidfd_open(pid).map_err(spawn_err)?;
        Ok(Self {
            pid,
            launched: true,
            command: display,
            pidfd,
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
        let fd = self.pidfd.try_clone().map_err(watch_err)?;
        // SAFETY: the AsyncFd owns this pidfd, so it outlives the registration.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|err| watch_err(err.into_parts().1))?;
        let _guard = fd.readable().await.map_err(watch_err)?;
        Ok(())
    }

    pub fn is_alive(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
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
        let comm = fs::read_to_string(format!("/proc/{}/comm", self.pid)).map_err(|_| gone())?;
        let cmdline = fs::read(format!("/proc/{}/cmdline", self.pid)).map_err(|_| gone())?;
        let argv = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Ok((comm.trim_end().to_owned(), argv))
    }
}

/// Parses the parent pid out of `/proc/PID/stat` (the comm may hold spaces
/// and parentheses, so split after the last `)`).
pub fn parent_of_stat(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The thread ids of a process (empty if it is gone).
pub fn threads(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// (comm, ppid, argv) of a live process as /proc shows it (empty if gone).
pub fn describe_pid(pid: u32) -> (String, u32, Vec<String>) {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default();
    let ppid = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parent_of_stat(&stat))
        .unwrap_or(0);
    let argv = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    (comm, ppid, argv)
}

/// Every live descendant of `pid` (children forked before we attached).
pub fn descendants(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            Some((p, parent_of_stat(&stat)?))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// The live descendants of `pid`, children before grandchildren, from the
/// kernel's `/proc/PID/task/TID/children` lists (cheap: no scan of /proc).
pub fn live_descendants(pid: u32) -> Vec<u32> {
    let mut found: Vec<u32> = Vec::new();
    let mut next = 0;
    let mut parent = Some(pid);
    while let Some(p) = parent {
        for tid in threads(p) {
            let Ok(list) = fs::read_to_string(format!("/proc/{p}/task/{tid}/children")) else {
                continue;
            };
            for child in list.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !found.contains(&child) && child != pid {
                    found.push(child);
                }
            }
        }
        parent = found.get(next).copied();
        next += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_from_stat_with_awkward_comm() {
        assert_eq!(
            parent_of_stat("123 (my (odd) prog) S 45 123 123 0"),
            Some(45)
        );
        assert_eq!(parent_of_stat("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parent_of_stat("garbage"), None);
    }

    #[test]
    fn descendants_of_a_running_shell() {
        // sh -> sleep: the grandchild is found through the children lists.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "/bin/sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        let me = std::process::id();
        let found = live_descendants(me);
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(found.contains(&sleep), "{found:?}");
        let at = |p: u32| found.iter().position(|&f| f == p).unwrap();
        assert!(at(child.id()) < at(sleep));
        assert_eq!(live_descendants(child.id()), vec![sleep]);
        let _ = std::process::Command::new("kill")
            .arg(sleep.to_string())
            .status();
        child.wait().unwrap();
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

//! A mount namespace of one thread's own: what it mounts there nobody else
//! sees, and it goes when the thread ends. Used to mount tracefs where it
//! is not mounted, and to hide the kernel's BTF from aya's loader.

use std::ffi::CStr;

/// Gives the calling thread a file-system context and a mount namespace of
/// its own, with every mount private (nothing propagates out). Call it on
/// a thread made for the purpose: the thread keeps them until it ends.
pub fn make_private_to_this_thread() -> Result<(), String> {
    // SAFETY: plain system calls on this thread's own context.
    unsafe {
        if libc::unshare(libc::CLONE_FS | libc::CLONE_NEWNS) != 0 {
            return Err(os_error("unshare"));
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(os_error("making the mounts private"));
        }
    }
    Ok(())
}

/// Mounts a file system of type `fs` at `dir` (in this thread's private
/// namespace: see [`make_private_to_this_thread`]).
pub fn mount(fs: &CStr, dir: &CStr) -> Result<(), String> {
    // SAFETY: NUL-terminated strings that outlive the call.
    let mounted =
        unsafe { libc::mount(fs.as_ptr(), dir.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if mounted != 0 {
        return Err(os_error(&format!("mounting {}", fs.to_string_lossy())));
    }
    Ok(())
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

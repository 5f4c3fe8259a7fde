//! Requests, seen from the sockets: an HTTP/1.x request line read from a
//! descriptor the tracer discovered (an accepted connection) starts a
//! request; the status line written back, the writes after it, and the
//! connection's next request line or close end it. The kernel side copies
//! only a line's first bytes, never a body.

use crate::events::EventHeader;

/// Bytes of a request or status line copied (the method, the path's first
/// ~110 bytes, the version; a status line's code and reason).
pub const REQUEST_LINE_LEN: usize = 128;

/// What [`RequestIoEvent::kind`] says happened on the connection.
pub mod request_io {
    /// A read: a request line (`line_len` > 0), or more of a request.
    pub const READ: u32 = 0;
    /// A write: a status line (`line_len` > 0), or more of a response.
    pub const WRITE: u32 = 1;
    /// The connection's descriptor was closed.
    pub const CLOSE: u32 = 2;
}

/// One read or write on a connection that carried a request line, or its
/// close; the header's time is the syscall's return (the close's entry).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestIoEvent {
    pub header: EventHeader,
    /// When the syscall entered the kernel.
    pub start_ns: u64,
    /// The connection's `IoKey::file_id` (a discovered descriptor's).
    pub file_id: u64,
    /// Bytes read or written.
    pub bytes: u64,
    pub fd: i32,
    /// [`request_io`].
    pub kind: u32,
    /// Bytes of `line` copied: the data began with a request line (a read)
    /// or a status line (a write); 0 otherwise.
    pub line_len: u32,
    pub _pad: u32,
    pub line: [u8; REQUEST_LINE_LEN],
}

impl Default for RequestIoEvent {
    fn default() -> Self {
        Self {
            header: EventHeader::default(),
            start_ns: 0,
            file_id: 0,
            bytes: 0,
            fd: 0,
            kind: 0,
            line_len: 0,
            _pad: 0,
            line: [0; REQUEST_LINE_LEN],
        }
    }
}

const _: () = assert!(core::mem::size_of::<RequestIoEvent>() == 24 + 40 + REQUEST_LINE_LEN);

//! Ring buffer records -> typed events. The only place that knows the byte
//! layout of what the kernel side sends.

use std::mem::size_of;

use tracer_common::{
    COMM_LEN, EventHeader, EventKind, FileEvent, PATH_CAPTURE_LEN, PY_MAX_DEPTH, ProcessEvent,
    PyEventKey, PyFrameRecord, PySample, PyStackEvent,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A traced process opened `path` (first time for this process and path).
    FileOpened {
        tgid: u32,
        fd: i32,
        file_id: u64,
        path: String,
        /// The path did not fit in the capture buffer.
        truncated: bool,
    },
    /// A read on a descriptor whose opening was not seen.
    FdDiscovered { tgid: u32, fd: i32, file_id: u64 },
    ProcessForked {
        parent_tgid: u32,
        child: u32,
        ts_ns: u64,
        comm: String,
    },
    ProcessExited {
        tgid: u32,
        tid: u32,
        group_dead: bool,
        ts_ns: u64,
        comm: String,
    },
    /// A CPU-clock sample of a thread's raw Python stack (innermost first).
    PySample {
        tgid: u32,
        tid: u32,
        frames: Vec<PyFrameRecord>,
        truncated: bool,
    },
    /// A kernel-event stack (reads, sleeps) seen for the first time.
    PyStack { key: PyEventKey },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte layout")]
    Short { len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

fn read<T: Copy>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: length checked; T is a plain #[repr(C)] type, read unaligned.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A NUL-terminated (or full) byte string, lossily as UTF-8.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: EventHeader = read(bytes)?;
    let kind = EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind(header.kind))?;
    Ok(match kind {
        EventKind::FileOpened | EventKind::FdDiscovered => {
            let event: FileEvent = read(bytes)?;
            if kind == EventKind::FdDiscovered {
                Event::FdDiscovered {
                    tgid: header.tgid,
                    fd: event.fd,
                    file_id: event.file_id,
                }
            } else {
                // path_len counts the NUL the kernel copied.
                let len = (event.path_len as usize).min(PATH_CAPTURE_LEN);
                Event::FileOpened {
                    tgid: header.tgid,
                    fd: event.fd,
                    file_id: event.file_id,
                    path: c_string(&event.path[..len]),
                    truncated: len == PATH_CAPTURE_LEN && event.path[PATH_CAPTURE_LEN - 1] == 0,
                }
            }
        }
        EventKind::ProcessForked => {
            let event: ProcessEvent = read(bytes)?;
            Event::ProcessForked {
                parent_tgid: event.arg,
                child: event.pid,
                ts_ns: header.ts_ns,
                comm: c_string(&event.comm[..COMM_LEN]),
            }
        }
        EventKind::ProcessExited => {
            let event: ProcessEvent = read(bytes)?;
            Event::ProcessExited {
                tgid: header.tgid,
                tid: event.pid,
                group_dead: event.arg != 0,
                ts_ns: header.ts_ns,
                comm: c_string(&event.comm),
            }
        }
        EventKind::PySample => {
            let sample: PySample = read(bytes)?;
            let depth = (sample.depth as usize).min(PY_MAX_DEPTH);
            Event::PySample {
                tgid: header.tgid,
                tid: header.tid,
                frames: sample.frames[..depth].to_vec(),
                truncated: sample.truncated != 0,
            }
        }
        EventKind::PyStack => {
            let event: PyStackEvent = read(bytes)?;
            Event::PyStack { key: event.key }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(value: &T) -> Vec<u8> {
        // SAFETY: test-only view of a plain #[repr(C)] value.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    fn header(kind: EventKind) -> EventHeader {
        EventHeader {
            kind: kind as u32,
            tgid: 100,
            tid: 101,
            _pad: 0,
            ts_ns: 5_000,
        }
    }

    #[test]
    fn decodes_file_opened() {
        let mut path = [0u8; PATH_CAPTURE_LEN];
        path[..18].copy_from_slice(b"/proc/self/status\0");
        let event = FileEvent {
            header: header(EventKind::FileOpened),
            fd: 3,
            path_len: 18,
            file_id: 77,
            path,
        };
        assert_eq!(
            decode(&bytes_of(&event)).unwrap(),
            Event::FileOpened {
                tgid: 100,
                fd: 3,
                file_id: 77,
                path: "/proc/self/status".into(),
                truncated: false
            }
        );
    }

    #[test]
    fn flags_truncated_paths() {
        let mut path = [b'a'; PATH_CAPTURE_LEN];
        path[PATH_CAPTURE_LEN - 1] = 0;
        let event = FileEvent {
            header: header(EventKind::FileOpened),
            fd: 3,
            path_len: PATH_CAPTURE_LEN as u32,
            file_id: 1,
            path,
        };
        let Event::FileOpened {
            path, truncated, ..
        } = decode(&bytes_of(&event)).unwrap()
        else {
            panic!("wrong kind");
        };
        assert!(truncated);
        assert_eq!(path.len(), PATH_CAPTURE_LEN - 1);
    }

    #[test]
    fn decodes_fd_discovered_and_process_events() {
        let event = FileEvent {
            header: header(EventKind::FdDiscovered),
            fd: 7,
            path_len: 0,
            file_id: 9,
            path: [0; PATH_CAPTURE_LEN],
        };
        assert_eq!(
            decode(&bytes_of(&event)).unwrap(),
            Event::FdDiscovered {
                tgid: 100,
                fd: 7,
                file_id: 9
            }
        );
        let mut comm = [0u8; COMM_LEN];
        comm[..7].copy_from_slice(b"python3");
        let exit = ProcessEvent {
            header: header(EventKind::ProcessExited),
            pid: 101,
            arg: 1,
            comm,
        };
        assert_eq!(
            decode(&bytes_of(&exit)).unwrap(),
            Event::ProcessExited {
                tgid: 100,
                tid: 101,
                group_dead: true,
                ts_ns: 5_000,
                comm: "python3".into()
            }
        );
        let fork = ProcessEvent {
            header: header(EventKind::ProcessForked),
            pid: 200,
            arg: 100,
            comm,
        };
        assert!(matches!(
            decode(&bytes_of(&fork)).unwrap(),
            Event::ProcessForked {
                parent_tgid: 100,
                child: 200,
                ..
            }
        ));
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(
            decode(&[0u8; 4]),
            Err(DecodeError::Short { len: 4, need: 24 })
        );
        let mut unknown = bytes_of(&header(EventKind::FileOpened));
        unknown[0] = 99;
        assert_eq!(decode(&unknown), Err(DecodeError::UnknownKind(99)));
        let short_file = bytes_of(&header(EventKind::FileOpened));
        assert!(matches!(
            decode(&short_file),
            Err(DecodeError::Short { .. })
        ));
    }

    #[test]
    fn py_sample_keeps_depth_frames() {
        let mut sample = PySample {
            header: header(EventKind::PySample),
            depth: 2,
            truncated: 1,
            frames: [PyFrameRecord::default(); PY_MAX_DEPTH],
        };
        sample.frames[0] = PyFrameRecord {
            code: 0x1000,
            instr: 0x2000,
        };
        sample.frames[1] = PyFrameRecord {
            code: 0x3000,
            instr: 0x4000,
        };
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&sample as *const PySample).cast::<u8>(),
                size_of::<PySample>(),
            )
        };
        match decode(bytes).unwrap() {
            Event::PySample {
                tgid,
                frames,
                truncated,
                ..
            } => {
                assert_eq!(tgid, 100);
                assert_eq!(frames.len(), 2);
                assert_eq!(frames[1].code, 0x3000);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode(&bytes[..100]).is_err());
    }

    #[test]
    fn py_stack_event_carries_the_key() {
        let mut event = PyStackEvent {
            header: header(EventKind::PyStack),
            ..PyStackEvent::default()
        };
        event.key.tgid = 100;
        event.key.kind = tracer_common::py_event::OFF_CPU;
        event.key.frames[0].code = 0xabc;
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&event as *const PyStackEvent).cast::<u8>(),
                size_of::<PyStackEvent>(),
            )
        };
        assert_eq!(decode(bytes).unwrap(), Event::PyStack { key: event.key });
        assert!(decode(&bytes[..60]).is_err());
    }
}

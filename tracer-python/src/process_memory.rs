//! Reading another process's memory (`process_vm_readv`), behind a trait so
//! the layout decoders can be unit-tested on recorded snapshots.

#[cfg(test)]
use std::collections::BTreeMap;

use crate::host::procfs;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoryError {
    #[error("cannot read {len} bytes at {addr:#x} of process {pid}: {message}")]
    Read {
        pid: u32,
        addr: u64,
        len: usize,
        message: String,
    },
    #[cfg(test)]
    #[error("address {addr:#x} (+{len}) is not in the snapshot")]
    NotInSnapshot { addr: u64, len: usize },
}

pub trait Memory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemoryError> {
        let mut buf = vec![0u8; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }

    fn u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let mut buf = [0u8; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut buf = [0u8; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }
}

/// A live process.
pub struct ProcessMemory {
    pub pid: u32,
    /// `/proc/PID/mem`, opened at the first read `process_vm_readv` says
    /// ESRCH to (the tracer in a pid namespace of its own, the host's
    /// /proc mounted: a pod whose runtime ignores hostPID) and read from
    /// then on, rather than failing a syscall and opening it per read.
    proc_mem: std::sync::OnceLock<Option<std::fs::File>>,
}

impl ProcessMemory {
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            proc_mem: std::sync::OnceLock::new(),
        }
    }
}

impl Memory for ProcessMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if let Some(Some(mem)) = self.proc_mem.get() {
            use std::os::unix::fs::FileExt as _;
            return mem
                .read_exact_at(buf, addr)
                .map_err(|err| MemoryError::Read {
                    pid: self.pid,
                    addr,
                    len: buf.len(),
                    message: err.to_string(),
                });
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: one local iovec covering `buf`; the remote one is only read by the kernel.
        let n =
            unsafe { libc::process_vm_readv(self.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if n == buf.len() as isize {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        // ESRCH for a live process: the tracer is in a pid namespace of its
        // own (a pod whose runtime ignores hostPID) with the host's /proc
        // mounted, where the process is known by this pid.
        if n < 0 && error.raw_os_error() == Some(libc::ESRCH) && self.proc_mem.get().is_none() {
            let mem = procfs::memory(self.pid).ok();
            if self.proc_mem.get_or_init(|| mem).is_some() {
                return self.read(addr, buf);
            }
        }
        let message = if n < 0 {
            error.to_string()
        } else {
            format!("short read ({n} bytes)")
        };
        Err(MemoryError::Read {
            pid: self.pid,
            addr,
            len: buf.len(),
            message,
        })
    }
}

#[cfg(test)]
/// Memory regions recorded from a real interpreter (or built by a test).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Start address -> bytes (hex in JSON).
    #[serde(with = "hex_regions")]
    pub regions: BTreeMap<u64, Vec<u8>>,
}

#[cfg(test)]
impl Snapshot {
    pub fn insert(&mut self, addr: u64, bytes: &[u8]) {
        self.regions.insert(addr, bytes.to_vec());
    }
}

#[cfg(test)]
impl Memory for Snapshot {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let missing = MemoryError::NotInSnapshot {
            addr,
            len: buf.len(),
        };
        let Some((&start, bytes)) = self.regions.range(..=addr).next_back() else {
            return Err(missing);
        };
        let from = (addr - start) as usize;
        let Some(src) = bytes.get(from..from + buf.len()) else {
            return Err(missing);
        };
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
/// Records every successful read of another `Memory` (to make snapshots).
pub struct Recorder<'a, M: Memory> {
    pub inner: &'a M,
    pub snapshot: std::cell::RefCell<Snapshot>,
}

#[cfg(test)]
impl<M: Memory> Memory for Recorder<'_, M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.inner.read(addr, buf)?;
        let mut snapshot = self.snapshot.borrow_mut();
        // Keep the longest read at each address so overlapping reads replay.
        let longer = snapshot
            .regions
            .get(&addr)
            .is_none_or(|old| old.len() < buf.len());
        if longer {
            snapshot.insert(addr, buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod hex_regions {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeMap};

    pub fn serialize<S: Serializer>(
        regions: &BTreeMap<u64, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(regions.len()))?;
        for (addr, bytes) in regions {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            map.serialize_entry(&format!("{addr:#x}"), &hex)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u64, Vec<u8>>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(deserializer)?;
        let mut regions = BTreeMap::new();
        for (addr, hex) in raw {
            let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16)
                .map_err(|_| D::Error::custom(format!("bad address {addr}")))?;
            if hex.len() % 2 != 0 {
                return Err(D::Error::custom("odd hex length"));
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| D::Error::custom("bad hex"))?;
            regions.insert(addr, bytes);
        }
        Ok(regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_inside_regions_only() {
        let mut s = Snapshot::default();
        s.insert(0x1000, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(s.read_vec(0x1001, 3).unwrap(), vec![2, 3, 4]);
        assert_eq!(s.u64(0x1000).unwrap(), 0x0807060504030201);
        assert!(s.read_vec(0x1008, 2).is_err());
        assert!(s.read_vec(0xfff, 1).is_err());
        let json = serde_json::to_string(&s).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back.regions, s.regions);
    }

    #[test]
    fn reads_own_memory() {
        let value: u64 = 0x1122334455667788;
        let mem = ProcessMemory::new(std::process::id());
        assert_eq!(mem.u64(&value as *const u64 as u64).unwrap(), value);
    }

    /// The way a tracer in a pid namespace of its own reads (the host's
    /// /proc mounted over its own), here on its own memory.
    #[test]
    fn reads_through_proc_pid_mem() {
        let value: [u8; 8] = *b"tracer!!";
        let mut buf = [0u8; 8];
        let mem = ProcessMemory::new(std::process::id());
        let file = std::fs::File::open("/proc/self/mem").unwrap();
        mem.proc_mem.set(Some(file)).unwrap();
        assert!(mem.read(value.as_ptr() as u64, &mut buf).is_ok());
        assert_eq!(buf, value);
        assert!(mem.read(0, &mut buf).is_err());
    }
}

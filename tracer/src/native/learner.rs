//! Binaries are read (ELF symbols, unwind table) on a thread of their own:
//! a large libpython takes 20-150 ms, long enough for a short script to
//! fork, exit and free the code objects that the event loop, blocked
//! meanwhile, had yet to name.

use std::{
    path::PathBuf,
    sync::mpsc::{Receiver, Sender, channel},
};

use object::{Object, ObjectSegment};
use tracer_common::NativeRow;

use super::{Binary, EVAL_FUNCTION, Symbols, TableError, split_parts, unwind_table};

/// A binary to read: the places its file may be read from, in order (the
/// mapped file itself, then its path in the process's root).
pub struct Job {
    /// When it was sent: said with its time read (a learner late to start
    /// leaves the first samples without native frames).
    pub sent: std::time::Instant,
    pub key: String,
    pub path: String,
    pub sources: Vec<PathBuf>,
}

/// What was learnt of a binary: `rows`, its unwind table, none when the
/// file or its table could not be read.
pub struct Learnt {
    pub key: String,
    pub binary: Binary,
    pub rows: Option<Vec<NativeRow>>,
    pub debugdata_unreadable: bool,
}

/// The reading thread, started with the first binary to read.
#[derive(Debug)]
pub struct Learner {
    jobs: Sender<Job>,
    done: Receiver<Learnt>,
}

impl Learner {
    pub fn start() -> Self {
        let (jobs, job_queue) = channel::<Job>();
        let (done_queue, done) = channel();
        std::thread::Builder::new()
            .name("native-tables".into())
            .spawn(move || {
                // Ends when the tracer drops its `Learner`.
                for job in job_queue {
                    let started = std::time::Instant::now();
                    let path = job.path.clone();
                    let sent = job.sent;
                    let learnt = learn(job);
                    log::debug!(
                        "native: {path} read in {:?}, {:?} after it was asked for ({} rows)",
                        started.elapsed(),
                        sent.elapsed(),
                        learnt.rows.as_ref().map_or(0, Vec::len)
                    );
                    if done_queue.send(learnt).is_err() {
                        break;
                    }
                }
            })
            .expect("start the thread that reads unwind tables");
        Self { jobs, done }
    }

    pub fn send(&self, job: Job) {
        // The thread outlives every send (it ends when `jobs` is dropped).
        let _ = self.jobs.send(job);
    }

    /// The binaries read since the last call.
    pub fn finished(&self) -> Vec<Learnt> {
        self.done.try_iter().collect()
    }
}

pub fn learn(job: Job) -> Learnt {
    let mut binary = Binary::unread(&job.path);
    let Some(data) = job.sources.iter().find_map(|p| {
        std::fs::read(p)
            .inspect_err(|err| log::debug!("native: {}: {err}", p.display()))
            .ok()
    }) else {
        return Learnt {
            key: job.key,
            binary,
            rows: None,
            debugdata_unreadable: false,
        };
    };
    let read = read_elf(&mut binary, &data);
    let rows = read
        .rows
        .inspect_err(|err| log::info!("no unwind table for {}: {err}", job.path))
        .ok();
    Learnt {
        key: job.key,
        binary,
        rows,
        debugdata_unreadable: read.debugdata_unreadable,
    }
}

/// What [`read_elf`] found besides `binary`'s names and ranges.
pub struct ElfRead {
    /// The unwind table's rows; an error: no table (no ELF, no `.eh_frame`).
    pub rows: Result<Vec<NativeRow>, TableError>,
    /// Its `.gnu_debugdata` could not be read: named from its own symbol
    /// tables only.
    pub debugdata_unreadable: bool,
}

/// What the unwinder and the names need of the ELF file `data`: its
/// segments, symbols (MiniDebugInfo's too), unwind table and eval loop.
pub fn read_elf(binary: &mut Binary, data: &[u8]) -> ElfRead {
    let file = match object::File::parse(data) {
        Ok(file) => file,
        Err(err) => {
            return ElfRead {
                rows: Err(err.into()),
                debugdata_unreadable: false,
            };
        }
    };
    binary.segments = file
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            (offset, size, s.address())
        })
        .collect();
    binary.symbols = Symbols::read(&file);
    let debugdata_unreadable = binary
        .symbols
        .add_debugdata(&file)
        .inspect_err(|err| log::info!("{}: {err}", binary.path))
        .is_err();
    let rows = unwind_table(data).map(|table| {
        binary.functions = table.functions;
        table.rows
    });
    if let Some(range) = binary.symbols.range(EVAL_FUNCTION) {
        binary.eval = split_parts(&file, &binary.symbols, &binary.functions, range);
    }
    ElfRead {
        rows,
        debugdata_unreadable,
    }
}

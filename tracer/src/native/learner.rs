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

use super::{Binary, EVAL_FUNCTION, Symbols, split_parts, unwind_table};

/// A binary to read: the places its file may be read from, in order (the
/// mapped file itself, then its path in the process's root).
pub struct Job {
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
                    if done_queue.send(learn(job)).is_err() {
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
    let data = job.sources.iter().find_map(|p| std::fs::read(p).ok());
    let Some(data) = data else {
        return Learnt {
            key: job.key,
            binary,
            rows: None,
        };
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Learnt {
            key: job.key,
            binary,
            rows: None,
        };
    };
    binary.segments = file
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            (offset, size, s.address())
        })
        .collect();
    binary.symbols = Symbols::read(&file);
    let rows = match unwind_table(&data) {
        Ok(table) => {
            binary.functions = table.functions;
            Some(table.rows)
        }
        Err(err) => {
            log::info!("no unwind table for {}: {err}", job.path);
            None
        }
    };
    if let Some(range) = binary.symbols.range(EVAL_FUNCTION) {
        binary.eval = split_parts(&file, &binary.symbols, &binary.functions, range);
    }
    Learnt {
        key: job.key,
        binary,
        rows,
    }
}

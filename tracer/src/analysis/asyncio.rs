//! asyncio tasks when tracing starts and stops, and for `--dump`: each
//! Python process's look (`python::asyncio`) made report rows, and the
//! reasons some process's tasks are not listed.

use crate::{
    frame::Frame,
    python::{
        PythonTree,
        asyncio::{Look, Task as Found},
    },
    report::{Asyncio, AsyncioTask, Awaiter},
};

/// Every task of every Python process of `tree` now, and notes. `dump`:
/// also say what is not certain (an interpreter before 3.14 whose asyncio
/// may be built in, a 3.14 that has not imported it).
pub fn tasks_now(tree: &mut PythonTree, dump: bool) -> (Vec<AsyncioTask>, Vec<String>) {
    let mut tasks = Vec::new();
    let mut notes = Vec::new();
    for (pid, look) in tree.asyncio_tasks_now() {
        match look {
            Look::Tasks(found) => tasks.extend(found.into_iter().map(|t| row(pid, t))),
            Look::TooOld { version, loaded } if loaded || dump => notes.push(format!(
                "pid {pid}: asyncio tasks need CPython 3.14+ (this is CPython {version})"
            )),
            Look::NotImported if dump => notes.push(format!("pid {pid}: asyncio is not imported")),
            Look::Failed(why) => notes.push(format!("pid {pid}: {why}")),
            Look::TooOld { .. } | Look::NotImported => {}
        }
    }
    (tasks, notes)
}

fn id(address: u64) -> String {
    format!("{address:#x}")
}

fn row(pid: u32, task: Found<Frame>) -> AsyncioTask {
    AsyncioTask {
        pid,
        tid: task.tid,
        id: id(task.address),
        name: task.name,
        state: task.state.as_str().into(),
        coroutine_stack: task.coroutine,
        awaited_by: task
            .awaited_by
            .into_iter()
            .map(|(address, name)| Awaiter {
                id: id(address),
                name,
            })
            .collect(),
    }
}

/// The report's section: the tasks at the end (or of the dump), those at
/// the start, every note once.
pub fn section(
    tasks: Vec<AsyncioTask>,
    tasks_at_start: Vec<AsyncioTask>,
    notes: Vec<String>,
) -> Asyncio {
    let mut unique: Vec<String> = Vec::new();
    for note in notes {
        if !unique.contains(&note) {
            unique.push(note);
        }
    }
    Asyncio {
        tasks,
        tasks_at_start,
        notes: unique,
    }
}

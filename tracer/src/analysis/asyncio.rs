//! asyncio tasks when tracing starts and stops, and for `--dump`: each
//! Python process's look (`python::asyncio`) made report rows, and the
//! reasons some process's tasks are not listed; and the samples each task
//! ran (`samples_by_task`).

use super::hotspots::{Row, TaskKey, hotspots};
use crate::{
    frame::Frame,
    python::{
        PythonTree,
        asyncio::{Look, Task as Found},
    },
    report::{Asyncio, AsyncioTask, Awaiter, TaskSamples},
};

/// A task's hotspots kept in `samples_by_task`.
const MAX_TASK_ROWS: usize = 20;

/// What a task whose name could not be read (freed before the tracer read
/// it) is called: never another task's name.
pub const UNNAMED_TASK: &str = "unnamed task";

/// A task's name as the report shows it.
pub fn task_label(name: Option<&str>) -> &str {
    name.unwrap_or(UNNAMED_TASK)
}

/// The samples of each task of `tasks` (a row's `task` is 1 + its index),
/// most first, with the task's own hotspots.
pub(super) fn samples_by_task(stacks: &[Row], tasks: &[TaskKey]) -> Vec<TaskSamples> {
    let mut out: Vec<TaskSamples> = tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let own: Vec<Row> = stacks
                .iter()
                .filter(|(at, ..)| at.task as usize == index + 1)
                .copied()
                .collect();
            let (samples, hotspots) = hotspots(&own, None, MAX_TASK_ROWS);
            TaskSamples {
                pid: task.pid,
                task: task_label(task.name.as_deref()).into(),
                id: id(task.address),
                samples,
                hotspots,
            }
        })
        .filter(|row| row.samples > 0)
        .collect();
    out.sort_by(|a, b| {
        b.samples
            .cmp(&a.samples)
            .then(a.pid.cmp(&b.pid))
            .then(a.task.cmp(&b.task))
    });
    out
}

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

pub fn id(address: u64) -> String {
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
    samples_by_task: Vec<TaskSamples>,
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
        samples_by_task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::hotspots::Sampled;

    fn frame(name: &str) -> Frame {
        Frame {
            qualname: name.into(),
            function: name.into(),
            file: "/w.py".into(),
            line: 1,
            first_line: 1,
            native: false,
        }
    }

    fn at(tid: u32, task: u32) -> Sampled {
        Sampled {
            pid: 7,
            generation: 0,
            tid,
            task,
        }
    }

    #[test]
    fn samples_go_to_their_task_with_its_own_hotspots() {
        let tasks = [
            TaskKey {
                pid: 7,
                generation: 0,
                address: 0x10,
                name: Some("light".into()),
            },
            TaskKey {
                pid: 7,
                generation: 0,
                address: 0x20,
                name: Some("heavy".into()),
            },
            TaskKey {
                pid: 7,
                generation: 0,
                address: 0x30,
                name: None,
            },
        ];
        let heavy = [frame("heavy_spin"), frame("work")];
        let light = [frame("light_spin"), frame("work")];
        let loop_ = [frame("_run_once")];
        let rows: Vec<Row> = vec![
            (at(1, 2), &heavy, 30, false),
            (at(1, 1), &light, 10, false),
            // The same task on another thread adds up; no task: no row.
            (at(2, 2), &heavy, 5, false),
            (at(1, 0), &loop_, 50, false),
            (at(1, 3), &light, 1, false),
        ];
        let out = samples_by_task(&rows, &tasks);
        let got: Vec<(&str, &str, u64, &str)> = out
            .iter()
            .map(|r| {
                (
                    r.task.as_str(),
                    r.id.as_str(),
                    r.samples,
                    r.hotspots[0].qualname.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("heavy", "0x20", 35, "heavy_spin"),
                ("light", "0x10", 10, "light_spin"),
                (UNNAMED_TASK, "0x30", 1, "light_spin"),
            ]
        );
        assert_eq!(out[0].hotspots[0].self_share, 100.0);
        assert!(out[0].hotspots.iter().all(|h| h.qualname != "light_spin"));
    }
}

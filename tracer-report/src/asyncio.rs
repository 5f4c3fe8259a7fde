//! `python.asyncio`: every asyncio task of each event loop, as CPython
//! 3.14+'s `python -m asyncio ps` lists them (see
//! docs/report-schema-python.md).

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Asyncio {
    /// The tasks when the report was made: now for `--dump`, when tracing
    /// stopped otherwise.
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// When tracing started (empty for `--dump`).
    #[serde(default)]
    pub tasks_at_start: Vec<Task>,
    /// Why some process's tasks are not listed (each said once).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The CPU samples each task ran, most first (3.14+: the thread's
    /// running task at each sample).
    #[serde(default)]
    pub samples_by_task: Vec<TaskSamples>,
}

/// The samples taken while one task ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskSamples {
    pub pid: u32,
    /// Its name ("unnamed task": freed before its name could be read).
    pub task: String,
    /// The task object's address, as `tasks[].id`.
    pub id: String,
    pub samples: u64,
    /// Its functions by self samples (top 20).
    pub hotspots: Vec<super::Hotspot>,
}

/// One task at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Task {
    pub pid: u32,
    /// The thread whose event loop holds it; `null` for a task left by a
    /// thread that exited.
    pub tid: Option<u32>,
    /// The task object's address, as `asyncio ps` prints it ("0x7f...").
    pub id: String,
    pub name: String,
    /// "pending" (not started), "running", "suspended" (in an `await`), "done".
    pub state: String,
    /// Its coroutine and the coroutines it awaits, innermost first.
    #[serde(with = "crate::frame::as_stack_frames")]
    pub coroutine_stack: Vec<Frame>,
    /// The tasks (or futures) awaiting it.
    pub awaited_by: Vec<Awaiter>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Awaiter {
    pub id: String,
    /// `null` for a future that is not a task.
    pub name: Option<String>,
}

impl Asyncio {
    /// `tasks` as the tree `asyncio pstree` draws: each task after the
    /// task it is under (the first of its awaiters listed, in the same
    /// process), with its depth; tasks no listed task awaits are roots. A
    /// task in a cycle of awaits is shown once, at the first place reached.
    pub fn tree(tasks: &[Task]) -> Vec<(usize, &Task)> {
        let parent = |t: &Task| {
            t.awaited_by
                .iter()
                .find_map(|a| tasks.iter().position(|p| p.pid == t.pid && p.id == a.id))
        };
        let parents: Vec<Option<usize>> = tasks.iter().map(parent).collect();
        let mut out = Vec::with_capacity(tasks.len());
        let mut shown = vec![false; tasks.len()];
        fn visit<'a>(
            i: usize,
            depth: usize,
            tasks: &'a [Task],
            parents: &[Option<usize>],
            shown: &mut [bool],
            out: &mut Vec<(usize, &'a Task)>,
        ) {
            if shown[i] {
                return;
            }
            shown[i] = true;
            out.push((depth, &tasks[i]));
            for child in (0..tasks.len()).filter(|&c| parents[c] == Some(i)) {
                visit(child, depth + 1, tasks, parents, shown, out);
            }
        }
        for root in (0..tasks.len()).filter(|&i| parents[i].is_none()) {
            visit(root, 0, tasks, &parents, &mut shown, &mut out);
        }
        // Whatever is left awaits in a cycle.
        for i in 0..tasks.len() {
            visit(i, 0, tasks, &parents, &mut shown, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, awaited_by: &[&str]) -> Task {
        Task {
            pid: 1,
            id: id.into(),
            name: format!("t{id}"),
            awaited_by: awaited_by
                .iter()
                .map(|a| Awaiter {
                    id: (*a).into(),
                    name: None,
                })
                .collect(),
            ..Task::default()
        }
    }

    #[test]
    fn tasks_are_drawn_under_their_awaiter() {
        let tasks = vec![
            task("0x1", &[]),
            task("0x2", &["0x1"]),
            task("0x4", &["0x2"]),
            task("0x3", &["0x1"]),
            task("0x5", &["0x9"]),
        ];
        let order: Vec<(usize, &str)> = Asyncio::tree(&tasks)
            .into_iter()
            .map(|(d, t)| (d, t.id.as_str()))
            .collect();
        assert_eq!(
            order,
            [(0, "0x1"), (1, "0x2"), (2, "0x4"), (1, "0x3"), (0, "0x5")]
        );
    }

    #[test]
    fn a_cycle_is_shown_once() {
        let tasks = vec![task("0x1", &["0x2"]), task("0x2", &["0x1"])];
        let tree = Asyncio::tree(&tasks);
        assert_eq!(tree.len(), 2);
        assert_eq!((tree[0].0, tree[1].0), (0, 1));
    }
}

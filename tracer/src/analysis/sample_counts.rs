//! Python samples counted by distinct stack, written once: the whole
//! trace's profile (`python.rs`) and each capture window (`capture.rs`)
//! count with it and render its rows alike (`python::fill_sampled`). The
//! continuous figures' per-function series (`metrics.rs`) are a bounded
//! fold of the same samples, not a second count of stacks.

use std::collections::HashMap;

use super::hotspots::{Sampled, TaskKey, Tasks};
use crate::{
    frame::Frame,
    python::{PythonTree, symbols::FrameId},
};

/// One distinct sampled stack: where (its asyncio task numbered in the
/// counts' tasks), whether cut at the walk's bound, frames innermost first.
pub type StackKey = (Sampled, bool, Vec<FrameId>);

/// A distinct stack with its frames named: where, frames, samples,
/// whether cut.
pub type NamedStack = (Sampled, Vec<Frame>, u64, bool);

#[derive(Default)]
pub struct SampleCounts {
    /// Distinct stacks -> index in `counts`.
    index: HashMap<StackKey, usize>,
    /// Samples of each distinct stack, in the order first seen.
    counts: Vec<u64>,
    /// The asyncio tasks samples ran in.
    tasks: Tasks,
}

/// Where a sample was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Its stack's index, in the order first seen.
    pub index: usize,
    /// The first sample of its stack.
    pub new: bool,
}

impl SampleCounts {
    /// One sample of thread `tid` of the process that is `generation` of
    /// its pid (`frames` interned by the tree's frame table; `task`: the
    /// asyncio task it ran in, address and name if read). `None`: a new
    /// stack past `bound` distinct ones, not counted.
    pub fn count(
        &mut self,
        (pid, generation): (u32, u32),
        tid: u32,
        (frames, truncated): (Vec<FrameId>, bool),
        task: Option<(u64, Option<String>)>,
        bound: usize,
    ) -> Option<Counted> {
        let task = self.tasks.number((pid, generation), task);
        let at = Sampled {
            pid,
            generation,
            tid,
            task,
        };
        let key = (at, truncated, frames);
        if let Some(&index) = self.index.get(&key) {
            self.counts[index] += 1;
            return Some(Counted { index, new: false });
        }
        if self.counts.len() >= bound {
            return None;
        }
        let index = self.counts.len();
        self.index.insert(key, index);
        self.counts.push(1);
        Some(Counted { index, new: true })
    }

    /// Every task samples ran in, in the order first seen.
    pub fn tasks(&self) -> &[TaskKey] {
        self.tasks.keys()
    }

    /// Distinct stacks counted.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Each distinct stack, in the order first seen.
    pub fn keys(&self) -> Vec<&StackKey> {
        let mut keys: Vec<(&StackKey, usize)> = self.index.iter().map(|(k, &i)| (k, i)).collect();
        keys.sort_unstable_by_key(|&(_, index)| index);
        keys.into_iter().map(|(key, _)| key).collect()
    }

    /// Each distinct stack with its frames named and its samples, in the
    /// order first seen (a row's index is its stack's).
    pub fn named(&self, tree: &PythonTree) -> Vec<NamedStack> {
        self.keys()
            .into_iter()
            .zip(&self.counts)
            .map(|((at, truncated, ids), &count)| {
                let frames = ids.iter().map(|&id| tree.frame(id).clone()).collect();
                (*at, frames, count, *truncated)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_counted_in_the_order_first_seen_up_to_a_bound() {
        let mut counts = SampleCounts::default();
        let task = || Some((0x7000, Some("t".to_owned())));
        let one =
            |c: &mut SampleCounts, tid, bound| c.count((1, 0), tid, (vec![], false), None, bound);
        assert_eq!(
            one(&mut counts, 10, 2),
            Some(Counted {
                index: 0,
                new: true
            })
        );
        assert_eq!(
            one(&mut counts, 11, 2),
            Some(Counted {
                index: 1,
                new: true
            })
        );
        assert_eq!(
            one(&mut counts, 10, 2),
            Some(Counted {
                index: 0,
                new: false
            })
        );
        // Past the bound: a new stack is left out, a known one still counts.
        assert_eq!(one(&mut counts, 12, 2), None);
        assert_eq!(
            one(&mut counts, 11, 2),
            Some(Counted {
                index: 1,
                new: false
            })
        );
        // The same thread in a task is another stack; its task numbered.
        let in_task = counts.count((1, 0), 10, (vec![], true), task(), 9);
        assert_eq!(
            in_task,
            Some(Counted {
                index: 2,
                new: true
            })
        );
        assert_eq!(counts.tasks().len(), 1);
        let keys = counts.keys();
        assert_eq!(
            keys.iter().map(|k| k.0.tid).collect::<Vec<_>>(),
            [10, 11, 10]
        );
        assert_eq!((keys[2].0.task, keys[2].1), (1, true));
        assert_eq!(counts.counts, [2, 2, 1]);
    }
}

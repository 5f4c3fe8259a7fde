//! `--native`: a sample's frames with the native stack under them, and
//! the unwinder's figures for the report.

use std::collections::{HashMap, HashSet};

use tracer_common::native_end;

use crate::{
    events::NativeStack,
    frame::Frame,
    native::{self, NativeMode, NativeStacks, Origin, Resolved},
    python::{PythonTree, symbols::FrameId},
};

/// A native address of a process (pid, generation), innermost or a
/// return address: named once.
type NativeKey = (u32, u32, u64, bool);

/// `--native` in the world: the unwinder's tables and the names of native
/// addresses ([`NativeStacks`]), and the ids those names were given in the
/// Python tree's frame table, each (process, address, innermost) once.
pub struct Native {
    pub stacks: NativeStacks,
    ids: HashMap<NativeKey, Option<(FrameId, Origin)>>,
}

impl Native {
    pub fn new(stacks: NativeStacks) -> Self {
        Self {
            stacks,
            ids: HashMap::new(),
        }
    }

    /// `--serve`: processes gone for good.
    pub fn forget(&mut self, pids: &[u32]) {
        pids.iter().for_each(|&pid| self.stacks.forget(pid));
        let pids: HashSet<u32> = pids.iter().copied().collect();
        self.ids.retain(|&(pid, ..), _| !pids.contains(&pid));
    }

    /// A sample's frames with the native stack under them: native frames
    /// named, each eval-loop frame replaced by the Python frames it runs
    /// (`groups`, from [`PythonTree::frame_id_groups`];
    /// [`native::splice`]). Also whether every eval frame met its Python
    /// frames.
    fn mixed_frame_ids(
        &mut self,
        tree: &mut PythonTree,
        tgid: u32,
        groups: Vec<Vec<FrameId>>,
        native: &NativeStack,
    ) -> (Vec<FrameId>, bool) {
        let generation = tree.generation(tgid);
        let slots: Vec<_> = native
            .addresses
            .iter()
            .enumerate()
            .map(|(i, &addr)| {
                let inner = i == 0;
                if let Some(&slot) = self.ids.get(&(tgid, generation, addr, inner)) {
                    return slot;
                }
                let slot = match self.stacks.resolve(tgid, addr, inner) {
                    Resolved::Eval => None,
                    Resolved::Frame(frame, origin) => Some((tree.intern(frame), origin)),
                    // Not kept: its library may be known at the next sample.
                    Resolved::Unknown(frame) => return Some((tree.intern(frame), Origin::Library)),
                };
                self.ids.insert((tgid, generation, addr, inner), slot);
                slot
            })
            .collect();
        let slots = match self.stacks.mode {
            NativeMode::All => slots.into_iter().map(|s| s.map(|(id, _)| id)).collect(),
            _ => native::leave_out_interpreter(slots),
        };
        native::splice(slots, groups)
    }
}

/// A Python sample's frames, named once as it arrives for every concern
/// that takes it (the profile, the capture windows, the continuous
/// figures): in the groups each call of the eval loop runs
/// ([`PythonTree::frame_id_groups`]). The native frames under them are
/// named by [`sample_frame_ids`], where the unwinder's figures count them.
pub struct SampleFrames {
    groups: Vec<Vec<FrameId>>,
}

impl SampleFrames {
    /// `None` when process `tgid`'s interpreter is not understood.
    pub fn name(
        tree: &mut PythonTree,
        tgid: u32,
        records: &[tracer_common::PyFrameRecord],
    ) -> Option<Self> {
        let groups = tree.frame_id_groups(tgid, records)?;
        Some(Self { groups })
    }

    /// Its Python frames, innermost first ([`PythonTree::frame_ids`]).
    pub fn python(&self) -> Vec<FrameId> {
        self.groups.concat()
    }

    /// Its innermost Python frame.
    pub fn innermost(&self) -> Option<FrameId> {
        self.groups.first()?.first().copied()
    }
}

/// A sample's frame ids (`named`: its Python frames, `None` when they
/// could not be named): with its native stack when there is one
/// (`--native`), else its Python frames. Counted in the unwinder's
/// figures.
/// `reread`: set when the process's mappings were read again (a library
/// loaded since): the kernel side is to get them at once.
pub fn sample_frame_ids(
    tree: &mut PythonTree,
    world_native: Option<&mut Native>,
    tgid: u32,
    named: Option<&SampleFrames>,
    native: Option<&NativeStack>,
    reread: &mut bool,
) -> Option<Vec<FrameId>> {
    match (native, world_native) {
        (Some(native), Some(world_native)) => {
            let stacks = &mut world_native.stacks;
            *reread |= stacks.before_sample(tgid, native.end, native.addresses.last().copied());
            let groups = named?.groups.clone();
            let (ids, matched) = world_native.mixed_frame_ids(tree, tgid, groups, native);
            world_native.stacks.on_sample(tgid, native.end, matched);
            Some(ids)
        }
        (None, Some(world_native)) => {
            // Sampled before the kernel had its mappings (a child forked
            // before its parent's were loaded): read them now, for the
            // next samples.
            *reread |= world_native.stacks.before_sample_without_stack(tgid);
            named.map(SampleFrames::python)
        }
        _ => named.map(SampleFrames::python),
    }
}

/// A kernel event's frames (a fork's, a signal delivery's) with the
/// native stack under them: named, the Python frames in place of the eval
/// loop's frames, as a sample's. `None`: the process's frames cannot be
/// named (yet). Not counted in the unwinder's sample figures.
pub fn event_frames(
    tree: &mut PythonTree,
    world_native: &mut Native,
    tgid: u32,
    frames: &[tracer_common::PyFrameRecord],
    native: &NativeStack,
    reread: &mut bool,
) -> Option<Vec<Frame>> {
    let stacks = &mut world_native.stacks;
    *reread |= stacks.before_sample(tgid, native.end, native.addresses.last().copied());
    let groups = tree.frame_id_groups(tgid, frames)?;
    let (ids, _) = world_native.mixed_frame_ids(tree, tgid, groups, native);
    let frames: Vec<Frame> = ids.into_iter().map(|id| tree.frame(id).clone()).collect();
    (!frames.is_empty()).then_some(frames)
}

pub fn figures(native: &Native) -> crate::report::NativeFigures {
    let stacks = &native.stacks;
    let c = &stacks.counts;
    let by_end = |end: u32| c.samples_by_end[end as usize];
    crate::report::NativeFigures {
        interpreter_frames: stacks.mode == crate::native::NativeMode::All,
        samples: c.samples_by_end.iter().sum(),
        complete: by_end(native_end::COMPLETE),
        stopped_outside_mappings: by_end(native_end::NO_MAPPING),
        stopped_without_table: by_end(native_end::NO_TABLE),
        stopped_at_unknown_rule: by_end(native_end::UNKNOWN_RULE),
        stopped_unreadable: by_end(native_end::UNREADABLE),
        truncated: by_end(native_end::TRUNCATED),
        unmatched: c.unmatched,
        binaries: c.binaries,
        table_rows: c.rows,
        binaries_without_table: c.binaries_without_table,
        mappings_left_out: c.mappings_left_out,
        unreadable_debugdata: c.debugdata_unreadable,
    }
}

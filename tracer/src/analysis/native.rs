//! `--native`: a sample's frames with the native stack under them, and
//! the unwinder's figures for the report.

use tracer_common::native_end;

use crate::{
    events::NativeStack,
    frame::Frame,
    native::NativeStacks,
    python::{PythonTree, symbols::FrameId},
};

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
    stacks: Option<&mut NativeStacks>,
    tgid: u32,
    named: Option<&SampleFrames>,
    native: Option<&NativeStack>,
    reread: &mut bool,
) -> Option<Vec<FrameId>> {
    match (native, stacks) {
        (Some(native), Some(stacks)) => {
            *reread |= stacks.before_sample(tgid, native.end, native.addresses.last().copied());
            let groups = named?.groups.clone();
            let (ids, matched) = tree.mixed_frame_ids(tgid, groups, native, stacks);
            stacks.on_sample(tgid, native.end, matched);
            Some(ids)
        }
        (None, Some(stacks)) => {
            // Sampled before the kernel had its mappings (a child forked
            // before its parent's were loaded): read them now, for the
            // next samples.
            *reread |= stacks.before_sample_without_stack(tgid);
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
    stacks: &mut NativeStacks,
    tgid: u32,
    frames: &[tracer_common::PyFrameRecord],
    native: &NativeStack,
    reread: &mut bool,
) -> Option<Vec<Frame>> {
    *reread |= stacks.before_sample(tgid, native.end, native.addresses.last().copied());
    let groups = tree.frame_id_groups(tgid, frames)?;
    let (ids, _) = tree.mixed_frame_ids(tgid, groups, native, stacks);
    let frames: Vec<Frame> = ids.into_iter().map(|id| tree.frame(id).clone()).collect();
    (!frames.is_empty()).then_some(frames)
}

pub fn figures(stacks: &NativeStacks) -> crate::report::NativeFigures {
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

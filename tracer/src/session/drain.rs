//! The ring buffer emptied into the collector: records decoded in order (the
//! names of code objects first), counted when they do not decode.

use aya::maps::{MapData, RingBuf};

use crate::{
    analysis::{Collector, modes::ModeFigures},
    events,
};

/// After the snapshot: only the descriptors' and threads' rows (the rest
/// happened after the trace).
pub fn drain_closes(
    ring: &mut RingBuf<MapData>,
    collector: &mut Collector,
    modes: &mut ModeFigures,
) {
    while let Some(item) = ring.next() {
        if let Ok(event @ (events::Event::FdClosed { .. } | events::Event::ThreadExited { .. })) =
            events::decode(&item)
        {
            collector.on_event(event, modes);
        }
    }
}

/// Records taken from the ring before they are handed on, at most.
const DRAIN_BATCH: usize = 4096;

/// Records in the ring now, in order, except that the names (and line
/// tables) of code objects go first: the sampler sends them behind the sample that met
/// the code object (it reserved the sample first), and the sample is
/// symbolized as it comes, by them if the object is gone.
pub fn drain(ring: &mut RingBuf<MapData>, collector: &mut Collector, modes: &mut ModeFigures) {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        match events::decode(&item) {
            Ok(event @ (events::Event::PyCodeNames(_) | events::Event::PyCodeLines(_))) => {
                collector.on_event(event, modes)
            }
            Ok(event) => batch.push(event),
            Err(err) => {
                log::warn!("{err}");
                collector.decode_errors += 1;
            }
        }
        // A ring that never empties (a busy trace) is taken in batches.
        if batch.len() >= DRAIN_BATCH {
            batch
                .drain(..)
                .for_each(|event| collector.on_event(event, modes));
        }
    }
    for event in batch {
        collector.on_event(event, modes);
    }
    // One read of the socket tables for the whole batch.
    collector.files.name_pending();
}

//! The ring buffer emptied into the collector: records decoded in order (the
//! names of code objects first), counted when they do not decode.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tracer_common::{EventHeader, EventKind};

use super::loop_watch::timed_with;
use crate::{
    analysis::{Collector, World, modes::ModeFigures},
    events,
};

/// After the snapshot: only the descriptors' and threads' rows (the rest
/// happened after the trace).
pub fn drain_closes(
    ring: &mut RingBuf<MapData>,
    (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
) {
    while let Some(item) = ring.next() {
        if let Ok(event @ (events::Event::FdClosed { .. } | events::Event::ThreadExited { .. })) =
            events::decode(&item)
        {
            collector.on_event(event, world, modes);
        }
    }
}

/// Records taken from the ring before they are handed on, at most.
const DRAIN_BATCH: usize = 4096;

/// Records in the ring now, in order, except that the names (and line
/// tables) of code objects go first: the sampler sends them behind the sample that met
/// the code object (it reserved the sample first), and the sample is
/// symbolized as it comes, by them if the object is gone.
pub fn drain(
    ring: &mut RingBuf<MapData>,
    (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
) {
    timed_with(
        "a drain",
        || take(ring, (collector, world, modes)),
        |records| format!("{records} records"),
    );
}

/// [`drain`]: the records taken.
fn take(
    ring: &mut RingBuf<MapData>,
    (collector, world, modes): (&mut Collector, &mut World, &mut ModeFigures),
) -> usize {
    let mut records = 0usize;
    let mut batch = Vec::new();
    let mut first = None;
    while let Some(item) = ring.next() {
        // The oldest record of the drain: the ring keeps them in order.
        if first.is_none() {
            first = Some(events::header(&item));
        }
        records += 1;
        match events::decode(&item) {
            Ok(event @ (events::Event::PyCodeNames(_) | events::Event::PyCodeLines(_))) => {
                collector.on_event(event, world, modes)
            }
            Ok(event) => batch.push(event),
            Err(err) => {
                log::warn!("{err}");
                collector.on_undecodable();
            }
        }
        // A ring that never empties (a busy trace) is taken in batches.
        if batch.len() >= DRAIN_BATCH {
            batch
                .drain(..)
                .for_each(|event| collector.on_event(event, world, modes));
        }
    }
    for event in batch {
        collector.on_event(event, world, modes);
    }
    // One read of the socket tables for the whole batch.
    world.files.name_pending();
    say_if_late(first);
    records
}

/// A record handled this long after the kernel wrote it is said.
const LATE: Duration = Duration::from_millis(500);

/// What the drains of this thread (the loop's) saw lately.
#[derive(Clone, Copy, Default)]
struct Watch {
    /// When a drain last found records.
    found_at: Option<Instant>,
    /// Drains since then that found none.
    empty: u32,
    /// When a late record was last said (once a second at most).
    said_at: Option<Instant>,
}

thread_local! {
    static WATCH: Cell<Watch> = Cell::new(Watch::default());
}

/// Says (`-v`) a drain whose first record came late, with the drains that
/// found nothing meanwhile: many, a record reserved and not yet committed
/// held back every record behind it; none, the loop was held elsewhere.
/// `first`: the drain's first record's header (`None`: the ring was empty).
fn say_if_late(first: Option<Option<(Option<EventKind>, EventHeader)>>) {
    WATCH.with(|watch| {
        let mut seen = watch.get();
        let Some(first) = first else {
            seen.empty = seen.empty.saturating_add(1);
            watch.set(seen);
            return;
        };
        let now = Instant::now();
        if let Some((kind, header)) = first {
            let lag = Duration::from_nanos(
                crate::host::clock::monotonic_ns().saturating_sub(header.ts_ns),
            );
            if lag > LATE
                && seen
                    .said_at
                    .is_none_or(|at| now - at > Duration::from_secs(1))
            {
                log::info!(
                    "ring: a {} record of {}/{} handled {lag:?} after the kernel wrote it \
                     (records found {}, {} drains since found none)",
                    kind.map_or(format!("kind {}", header.kind), |kind| format!("{kind:?}")),
                    header.tgid,
                    header.tid,
                    seen.found_at
                        .map_or("never before".into(), |at| format!("{:?} before", now - at)),
                    seen.empty,
                );
                seen.said_at = Some(now);
            }
        }
        seen.found_at = Some(now);
        seen.empty = 0;
        watch.set(seen);
    });
}

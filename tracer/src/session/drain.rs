//! The ring buffer emptied into the collector: records decoded in order (the
//! names of code objects first), counted when they do not decode.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tracer_common::{EventHeader, EventKind};

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
    let mut late = Late::default();
    while let Some(item) = ring.next() {
        late.see(&item);
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
    late.say();
}

/// A record handled this long after the kernel wrote it is said.
const LATE: Duration = Duration::from_millis(500);

thread_local! {
    /// When a drain last found records, the drains since that found none,
    /// and when a late drain was last said.
    static WATCH: Cell<(Option<Instant>, u32, Option<Instant>)> = const { Cell::new((None, 0, None)) };
}

/// What one drain tells of the ring's lag: the first record it found and
/// the latest one. A record reserved and not yet committed holds back
/// every record behind it (drains find nothing meanwhile); a loop held
/// elsewhere drains seldom. The log line tells the two apart, once a second
/// at most.
#[derive(Default)]
struct Late {
    first: Option<(Option<EventKind>, EventHeader)>,
    lag_ns: u64,
    latest: Option<(Option<EventKind>, EventHeader)>,
}

impl Late {
    fn see(&mut self, item: &[u8]) {
        let Some(header) = events::header(item) else {
            return;
        };
        let lag_ns = events::monotonic_ns().saturating_sub(header.1.ts_ns);
        if self.first.is_none() {
            self.first = Some(header);
        }
        if lag_ns > self.lag_ns {
            self.lag_ns = lag_ns;
            self.latest = Some(header);
        }
    }

    fn say(self) {
        WATCH.with(|watch| {
            let (last, empty, said) = watch.get();
            let Some((first_kind, first)) = self.first else {
                watch.set((last, empty.saturating_add(1), said));
                return;
            };
            let now = Instant::now();
            let mut said_at = said;
            if Duration::from_nanos(self.lag_ns) > LATE
                && said.is_none_or(|at| now - at > Duration::from_secs(1))
                && let Some((late_kind, latest)) = self.latest
            {
                let kind = |kind: Option<EventKind>, header: &EventHeader| match kind {
                    Some(kind) => format!("{kind:?}"),
                    None => format!("kind {}", header.kind),
                };
                log::info!(
                    "ring: a {} record of {}/{} handled {:?} after the kernel wrote it \
                     (records found {}, {empty} drains since found none); this drain's \
                     first: {} of {}/{}, written {:?} before",
                    kind(late_kind, &latest),
                    latest.tgid,
                    latest.tid,
                    Duration::from_nanos(self.lag_ns),
                    last.map_or("never before".into(), |at| format!("{:?} before", now - at)),
                    kind(first_kind, &first),
                    first.tgid,
                    first.tid,
                    Duration::from_nanos(events::monotonic_ns().saturating_sub(first.ts_ns)),
                );
                said_at = Some(now);
            }
            watch.set((Some(now), 0, said_at));
        });
    }
}

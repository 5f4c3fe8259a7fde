//! A watch on the loop from a thread of its own: records wait while the
//! loop is held, and a step that blocks, or a loop the scheduler does not
//! run, is said (`-v`) while it lasts, with where the loop's thread is.
//! The loop beats at each step ([`timed`], the drains); the watch reads
//! `/proc` only once a beat is late.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::host::procfs::{self, OwnThread};

/// A step that held the loop this long is said when it ends.
const HELD: Duration = Duration::from_millis(200);
/// How often the watch looks.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// A loop held this long is said while it is held, and again each
/// [`SAY_AGAIN`].
const HELD_LONG: Duration = Duration::from_secs(1);
const SAY_AGAIN: Duration = Duration::from_secs(5);

/// When the loop last beat, in ms since [`epoch`].
static BEAT_MS: AtomicU64 = AtomicU64::new(0);
/// The step the loop is in ("" between steps: it waits for work).
static STEP: Mutex<&'static str> = Mutex::new("");

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// The loop is alive, in `step` from now.
fn beat(step: &'static str) -> &'static str {
    BEAT_MS.store(now_ms(), Ordering::Relaxed);
    let mut current = STEP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    std::mem::replace(&mut *current, step)
}

/// Runs a step of the loop, said (`-v`) if it held the loop past [`HELD`].
pub fn timed<T>(step: &'static str, run: impl FnOnce() -> T) -> T {
    timed_with(step, run, |_| String::new())
}

/// [`timed`], with what the step did said beside it.
pub fn timed_with<T>(
    step: &'static str,
    run: impl FnOnce() -> T,
    detail: impl FnOnce(&T) -> String,
) -> T {
    let started = Instant::now();
    let outer = beat(step);
    let result = run();
    beat(outer);
    let took = started.elapsed();
    if took > HELD {
        let detail = detail(&result);
        let sep = if detail.is_empty() { "" } else { ", " };
        log::info!("loop: {step} held it {took:?}{sep}{detail}");
    }
    result
}

/// The watch, for as long as it is kept: on the calling thread (the loop's).
pub struct LoopWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopWatch {
    pub fn start() -> Self {
        // SAFETY: gettid has no arguments.
        let tid = unsafe { libc::gettid() } as u32;
        beat("");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("loop-watch".into())
            .spawn(move || watch(tid, &stopped))
            .ok();
        Self { stop, thread }
    }
}

impl Drop for LoopWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// One hold of the loop, as the watch saw it.
struct Hold {
    beat_ms: u64,
    /// The loop's thread when the hold was first seen.
    at_start: Option<OwnThread>,
    said_at_ms: Option<u64>,
}

fn watch(tid: u32, stop: &AtomicBool) {
    let mut hold: Option<Hold> = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(LOOK_EVERY);
        let beat_ms = BEAT_MS.load(Ordering::Relaxed);
        let now = now_ms();
        let age = Duration::from_millis(now.saturating_sub(beat_ms));
        // The loop beat since: the hold it was in ended.
        if hold.as_ref().is_some_and(|h| h.beat_ms != beat_ms)
            && let Some(ended) = hold.take()
            && ended.said_at_ms.is_some()
        {
            log::info!(
                "loop: went on after {:?} held",
                Duration::from_millis(beat_ms.saturating_sub(ended.beat_ms))
            );
        }
        // (A loop with nothing to do beats at least every 250 ms: the
        // status line's tick.)
        if age < HELD_LONG / 2 {
            continue;
        }
        let hold = hold.get_or_insert_with(|| Hold {
            beat_ms,
            at_start: procfs::own_thread(tid),
            said_at_ms: None,
        });
        let due = match hold.said_at_ms {
            None => age >= HELD_LONG,
            Some(said) => Duration::from_millis(now - said) >= SAY_AGAIN,
        };
        if due {
            let step = *STEP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            log::info!(
                "loop: held {age:?}{}: {}",
                if step.is_empty() {
                    " waiting for work".to_owned()
                } else {
                    format!(" in {step}")
                },
                describe(hold.at_start.as_ref(), procfs::own_thread(tid).as_ref())
            );
            hold.said_at_ms = Some(now);
        }
    }
}

/// The loop's thread now, with what it did since `before`.
fn describe(before: Option<&OwnThread>, now: Option<&OwnThread>) -> String {
    let Some(now) = now else {
        return "its thread is gone".into();
    };
    let ms = |ns: u64| Duration::from_nanos(ns).as_millis();
    let mut said = procfs::state_name(now.state).to_owned();
    if !now.wchan.is_empty() && now.wchan != "0" {
        said.push_str(&format!(" in {}", now.wchan));
    }
    if let Some(before) = before {
        said.push_str(&format!(
            ", since {} ms on a CPU and {} ms waiting for one",
            ms(now.on_cpu_ns.saturating_sub(before.on_cpu_ns)),
            ms(now.runnable_ns.saturating_sub(before.runnable_ns)),
        ));
    }
    if !now.stack.is_empty() {
        said.push_str(&format!("; kernel stack {}", now.stack.join(" < ")));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_thread_is_said_with_what_it_did_meanwhile() {
        let before = OwnThread {
            state: 'R',
            on_cpu_ns: 5_000_000,
            runnable_ns: 1_000_000,
            ..OwnThread::default()
        };
        let now = OwnThread {
            state: 'D',
            wchan: "lock_mm_and_find_vma".into(),
            on_cpu_ns: 7_000_000,
            runnable_ns: 1_000_000,
            stack: vec!["lock_mm_and_find_vma".into(), "exc_page_fault".into()],
        };
        assert_eq!(
            describe(Some(&before), Some(&now)),
            "disk sleep in lock_mm_and_find_vma, since 2 ms on a CPU and 0 ms waiting for \
             one; kernel stack lock_mm_and_find_vma < exc_page_fault"
        );
        let runnable = OwnThread {
            state: 'R',
            wchan: "0".into(),
            ..OwnThread::default()
        };
        assert_eq!(describe(None, Some(&runnable)), "running");
        assert_eq!(describe(None, None), "its thread is gone");
    }
}

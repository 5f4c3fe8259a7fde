//! `--perfetto`: every read and write syscall, context switch and signal step of
//! the traced threads as it happened, bounded in memory whatever the run's
//! length: reads are thinned evenly (1 in N, N doubling) past
//! [`MAX_READS`], switches are cut past [`MAX_SWITCHES`], and the report
//! says how many of each it left out.

use std::collections::HashMap;

use crate::report::format::thousands;
use crate::{
    events::{IoDone, SignalDelivered, SignalGenerated},
    frame::Frame,
    report::{CpuSlice, ReadSlice, SignalMark, SignalStep, Timeline},
};

use super::signals;
use crate::host::files::table::FileTable;

/// Reads kept (about 80 bytes each): past this, every other one kept is
/// dropped and only 1 in twice as many is kept from then on.
const MAX_READS: usize = 1_000_000;
/// Context switches kept (about 32 bytes each); later ones are counted only.
const MAX_SWITCHES: usize = 2_000_000;
/// Signal steps kept.
const MAX_SIGNALS: usize = 200_000;

struct Switch {
    ts_ns: u64,
    tgid: u32,
    tid: u32,
    out: bool,
    voluntary: bool,
    stack: Option<u32>,
}

#[derive(Default)]
pub struct Recorder {
    reads: Vec<IoDone>,
    reads_seen: u64,
    reads_every: u64,
    switches: Vec<Switch>,
    switches_seen: u64,
    cut_ns: Option<u64>,
    signals: Vec<SignalMark>,
    signals_left_out: u64,
    stacks: Vec<Vec<Frame>>,
    stack_ids: HashMap<Vec<Frame>, u32>,
    /// Threads that exited (tid -> when): no off-CPU stretch after it.
    exits: HashMap<u32, u64>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            reads_every: 1,
            ..Self::default()
        }
    }

    pub fn on_read(&mut self, read: IoDone) {
        let seen = self.reads_seen;
        self.reads_seen += 1;
        if !seen.is_multiple_of(self.reads_every) {
            return;
        }
        if self.reads.len() == MAX_READS {
            // Kept so far: the arrivals at multiples of N; keep those at
            // multiples of 2N (every other one), and 1 in 2N from now on.
            let mut index = 0;
            self.reads.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.reads_every *= 2;
            if !seen.is_multiple_of(self.reads_every) {
                return;
            }
        }
        self.reads.push(read);
    }

    /// `stack`: the thread's Python stack as it left asleep, if captured.
    pub fn on_switch(
        &mut self,
        ts_ns: u64,
        tgid: u32,
        tid: u32,
        out: bool,
        voluntary: bool,
        stack: Option<Vec<Frame>>,
    ) {
        self.switches_seen += 1;
        if self.cut_ns.is_some() {
            return;
        }
        if self.switches.len() == MAX_SWITCHES {
            self.cut_ns = Some(ts_ns);
            return;
        }
        // Interned: most sleeps are in a few places; the frames are cloned
        // only for a stack not seen before.
        let stack = stack.map(|frames| match self.stack_ids.get(&frames) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as u32;
                self.stack_ids.insert(frames.clone(), id);
                self.stacks.push(frames);
                id
            }
        });
        self.switches.push(Switch {
            ts_ns,
            tgid,
            tid,
            out,
            voluntary,
            stack,
        });
    }

    pub fn on_thread_exit(&mut self, tid: u32, ts_ns: u64) {
        self.exits.insert(tid, ts_ns);
    }

    pub fn on_signal(&mut self, mark: SignalMark) {
        if self.signals.len() == MAX_SIGNALS {
            self.signals_left_out += 1;
        } else {
            self.signals.push(mark);
        }
    }

    /// A signal generated, by its sender; `flow` ties its steps together.
    pub fn on_generated(&mut self, g: &SignalGenerated, flow: u64) {
        let sender = signals::sender(g);
        self.on_signal(SignalMark {
            t_ns: g.ts_ns,
            step: SignalStep::Generated,
            signo: g.sig,
            pid: sender.pid,
            tid: sender.tid,
            comm: sender.comm,
            flow,
            detail: format!(
                "to {} ({}): {}",
                g.target_pid,
                g.target_comm,
                signals::result_name(g.result)
            ),
        });
    }

    /// A signal delivered (`flow`: its generation's, when seen).
    pub fn on_delivered(&mut self, d: &SignalDelivered, flow: Option<u64>) {
        self.on_signal(SignalMark {
            t_ns: d.ts_ns,
            step: SignalStep::Delivered,
            signo: d.sig,
            pid: d.tgid,
            tid: d.tid,
            comm: String::new(),
            flow: flow.unwrap_or(0),
            detail: signals::disposition(d.sa_handler).to_owned(),
        });
    }

    /// Python signal handlers that ran at a signal check: (flow, signal).
    pub fn on_handlers_ran(&mut self, ts_ns: u64, tgid: u32, tid: u32, ran: Vec<(u64, i32)>) {
        for (flow, signo) in ran {
            self.on_signal(SignalMark {
                t_ns: ts_ns,
                step: SignalStep::HandlerRan,
                signo,
                pid: tgid,
                tid,
                comm: String::new(),
                flow,
                detail: String::new(),
            });
        }
    }

    /// The timeline, times relative to `base_ns`; `boottime_at_start_ns`:
    /// CLOCK_BOOTTIME at `base_ns`.
    pub fn finish(
        self,
        files: &FileTable,
        base_ns: u64,
        end_ns: u64,
        boottime_at_start_ns: u64,
    ) -> Timeline {
        let rel = |ts: u64| ts.saturating_sub(base_ns);
        let end = self.cut_ns.unwrap_or(end_ns);
        let switches_left_out = self.switches_seen - self.switches.len() as u64;
        let mut switches_unpaired = 0;
        let cpu = cpu_slices(
            self.switches,
            &self.exits,
            base_ns,
            end,
            &mut switches_unpaired,
        );
        let mut file_index: HashMap<(u32, u64, i32), usize> = HashMap::new();
        let mut file_names: Vec<(String, String)> = Vec::new();
        let reads = self
            .reads
            .into_iter()
            .map(|read| {
                let file = *file_index
                    .entry((read.tgid, read.file_id, read.fd))
                    .or_insert_with(|| {
                        let info = files.describe(read.tgid, read.fd, read.file_id);
                        file_names.push((info.path, info.fs.into_owned()));
                        file_names.len() - 1
                    });
                ReadSlice {
                    pid: read.tgid,
                    tid: read.tid,
                    start_ns: rel(read.start_ns),
                    end_ns: rel(read.end_ns),
                    file,
                    fd: read.fd,
                    syscall: read.syscall.name(),
                    write: read.syscall.is_write(),
                    request: read.request,
                    ret: read.ret,
                    voluntary: read.voluntary,
                    involuntary: read.involuntary,
                }
            })
            .collect();
        let mut signals = self.signals;
        for mark in &mut signals {
            mark.t_ns = rel(mark.t_ns);
        }
        Timeline {
            boottime_at_start_ns,
            end_ns: rel(end_ns),
            cpu,
            switches_seen: self.switches_seen,
            switches_left_out,
            switches_unpaired,
            cpu_cut_ns: self.cut_ns.map(rel),
            reads,
            reads_seen: self.reads_seen,
            reads_every: self.reads_every,
            files: file_names,
            signals,
            signals_left_out: self.signals_left_out,
            stacks: self.stacks,
        }
    }
}

/// Per thread, the stretches between its switches: on a CPU from a
/// switch-in to the next switch-out, off it from a switch-out to the next
/// switch-in. A thread first seen leaving was on a CPU since tracing
/// started; one last seen leaving stays off until `end_ns`, unless it
/// exited.
fn cpu_slices(
    mut switches: Vec<Switch>,
    exits: &HashMap<u32, u64>,
    base_ns: u64,
    end_ns: u64,
    unpaired: &mut u64,
) -> Vec<CpuSlice> {
    // Stable: a thread's switches keep their order at equal times.
    switches.sort_by_key(|s| (s.tid, s.ts_ns));
    let rel = |ts: u64| ts.saturating_sub(base_ns);
    let mut slices = Vec::new();
    for thread in switches.chunk_by(|a, b| a.tid == b.tid) {
        let (pid, tid) = (thread[0].tgid, thread[0].tid);
        let slice =
            |start: u64, end: u64, on_cpu: bool, voluntary: bool, stack: Option<u32>| CpuSlice {
                pid,
                tid,
                start_ns: rel(start),
                end_ns: rel(end),
                on_cpu,
                voluntary,
                stack: stack.map(|s| s as usize),
            };
        if thread[0].out {
            slices.push(slice(
                base_ns,
                thread[0].ts_ns,
                true,
                thread[0].voluntary,
                None,
            ));
        }
        for pair in thread.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            // Two of a kind in a row: a record missing in between; no
            // guess, a gap, counted.
            if a.out == b.out {
                *unpaired += 1;
                continue;
            }
            slices.push(if a.out {
                slice(a.ts_ns, b.ts_ns, false, a.voluntary, a.stack)
            } else {
                slice(a.ts_ns, b.ts_ns, true, b.voluntary, None)
            });
        }
        let last = &thread[thread.len() - 1];
        let exited = exits.get(&tid).is_some_and(|&at| at <= last.ts_ns);
        if last.ts_ns < end_ns && !exited {
            slices.push(if last.out {
                slice(last.ts_ns, end_ns, false, last.voluntary, last.stack)
            } else {
                slice(last.ts_ns, end_ns, true, false, None)
            });
        }
    }
    slices
}

/// What the Perfetto trace leaves out, said in the report too.
pub fn warnings(timeline: &Timeline) -> Vec<String> {
    let mut warnings = Vec::new();
    if timeline.reads_every > 1 {
        warnings.push(format!(
            "the Perfetto trace has 1 in {} of the {} read and write syscalls (evenly), to bound its size",
            thousands(timeline.reads_every),
            thousands(timeline.reads_seen)
        ));
    }
    if let Some(cut) = timeline.cpu_cut_ns {
        warnings.push(format!(
            "the Perfetto trace's on/off-CPU slices stop at {:.3} s: {} of {} context \
             switches after it are left out, to bound its size",
            cut as f64 / 1e9,
            thousands(timeline.switches_left_out),
            thousands(timeline.switches_seen)
        ));
    }
    if timeline.switches_unpaired > 0 {
        warnings.push(format!(
            "the Perfetto trace's on/off-CPU slices have {} gaps: a context switch record \
             was missing between two of the same kind",
            thousands(timeline.switches_unpaired)
        ));
    }
    if timeline.signals_left_out > 0 {
        warnings.push(format!(
            "the Perfetto trace leaves out the last {} signal events, to bound its size",
            thousands(timeline.signals_left_out)
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(ts_ns: u64, tid: u32, out: bool, voluntary: bool) -> Switch {
        Switch {
            ts_ns,
            tgid: 7,
            tid,
            out,
            voluntary,
            stack: None,
        }
    }

    #[test]
    fn stretches_between_switches_with_open_ends() {
        let switches = vec![
            switch(110, 8, true, false),
            switch(120, 8, false, false),
            switch(150, 8, true, true),
            // Thread 9 starts on a CPU, sleeps, exits.
            switch(105, 9, false, false),
            switch(130, 9, true, true),
            switch(140, 9, false, false),
            switch(145, 9, true, true),
        ];
        let exits = HashMap::from([(9, 144)]);
        let mut unpaired = 0;
        let slices = cpu_slices(switches, &exits, 100, 200, &mut unpaired);
        assert_eq!(unpaired, 0);
        let got: Vec<_> = slices
            .iter()
            .map(|s| (s.tid, s.start_ns, s.end_ns, s.on_cpu, s.voluntary))
            .collect();
        assert_eq!(
            got,
            vec![
                (8, 0, 10, true, false),
                (8, 10, 20, false, false),
                (8, 20, 50, true, true),
                (8, 50, 100, false, true),
                (9, 5, 30, true, true),
                (9, 30, 40, false, true),
                (9, 40, 45, true, true),
            ]
        );
    }

    #[test]
    fn reads_past_the_limit_are_thinned_evenly() {
        let mut recorder = Recorder::new();
        let read = |n: u64| IoDone {
            tgid: 1,
            tid: 1,
            start_ns: n,
            end_ns: n,
            file_id: 1,
            fd: 3,
            syscall: tracer_common::IoSyscall::Read,
            request: 1,
            ret: 1,
            voluntary: 0,
            involuntary: 0,
        };
        let total = MAX_READS as u64 * 3;
        for n in 0..total {
            recorder.on_read(read(n));
        }
        assert_eq!(recorder.reads_every, 4);
        assert_eq!(recorder.reads_seen, total);
        assert!(recorder.reads.iter().all(|r| r.start_ns % 4 == 0));
        assert_eq!(recorder.reads.len() as u64, total / 4);
    }
}

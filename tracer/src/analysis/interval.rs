//! Cumulative counters -> what grew in an interval: the one engine behind
//! `--serve`'s folds of the kernel's rows ([`super::metrics`]), `--live`'s
//! per-refresh figures ([`super::live`]) and `--every`'s window reports
//! since the last window ([`metrics_since`]). The kernel's rows and the
//! report's series only ever grow; a row or series new since the last
//! reading counts whole. Pure logic, no I/O.

use std::{collections::HashMap, hash::Hash};

use tracer_common::LoopThread;

use crate::report::metrics::{Histogram, IoSeries, Metrics, OtlpFigures, WebFigures};

/// Figures that only grow: what grew between an earlier reading and this one.
pub trait Cumulative: Clone + Default {
    fn grown_since(&self, before: &Self) -> Self;
}

impl Cumulative for u64 {
    fn grown_since(&self, before: &Self) -> Self {
        self.saturating_sub(*before)
    }
}

impl<A: Cumulative, B: Cumulative> Cumulative for (A, B) {
    fn grown_since(&self, before: &Self) -> Self {
        (self.0.grown_since(&before.0), self.1.grown_since(&before.1))
    }
}

impl<A: Cumulative, B: Cumulative, C: Cumulative> Cumulative for (A, B, C) {
    fn grown_since(&self, before: &Self) -> Self {
        (
            self.0.grown_since(&before.0),
            self.1.grown_since(&before.1),
            self.2.grown_since(&before.2),
        )
    }
}

impl Cumulative for std::collections::BTreeMap<u64, u64> {
    fn grown_since(&self, before: &Self) -> Self {
        self.iter()
            .map(|(k, n)| (*k, n.grown_since(before.get(k).unwrap_or(&0))))
            .collect()
    }
}

/// An event loop thread's kernel row: its iterations per bucket and their time.
impl Cumulative for LoopThread {
    fn grown_since(&self, before: &Self) -> Self {
        let mut grown = *self;
        for (n, was) in grown.buckets.iter_mut().zip(&before.buckets) {
            *n = n.saturating_sub(*was);
        }
        grown.iterations = self.iterations.saturating_sub(before.iterations);
        grown.busy_ns = self.busy_ns.saturating_sub(before.busy_ns);
        grown
    }
}

/// Bucket by bucket (a histogram of other buckets is not the same one:
/// counted whole).
impl Cumulative for Histogram {
    fn grown_since(&self, before: &Self) -> Self {
        let mut grown = self.clone();
        if before.bounds == self.bounds {
            for (n, was) in grown.counts.iter_mut().zip(&before.counts) {
                *n = n.saturating_sub(*was);
            }
            grown.sum = (grown.sum - before.sum).max(0.0);
        }
        grown
    }
}

impl Cumulative for OtlpFigures {
    fn grown_since(&self, before: &Self) -> Self {
        OtlpFigures {
            exports: self.exports.grown_since(&before.exports),
            export_failures: self.export_failures.grown_since(&before.export_failures),
            windows_dropped: self.windows_dropped.grown_since(&before.windows_dropped),
            samples_exported: self.samples_exported.grown_since(&before.samples_exported),
            samples_dropped: self.samples_dropped.grown_since(&before.samples_dropped),
        }
    }
}

/// The counters grown; the certificate's end of validity as it is now.
impl Cumulative for WebFigures {
    fn grown_since(&self, before: &Self) -> Self {
        WebFigures {
            no_credentials: self.no_credentials.grown_since(&before.no_credentials),
            wrong_credentials: self
                .wrong_credentials
                .grown_since(&before.wrong_credentials),
            tls_failures: self.tls_failures.grown_since(&before.tls_failures),
            reloads: self.reloads.grown_since(&before.reloads),
            reload_failures: self.reload_failures.grown_since(&before.reload_failures),
            cert_not_after: self.cert_not_after,
        }
    }
}

/// The last reading of each row, to turn the next into what grew.
pub struct LastSeen<K, V> {
    rows: HashMap<K, V>,
}

impl<K, V> Default for LastSeen<K, V> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq, V: Cumulative> LastSeen<K, V> {
    /// What row `key` grew since its last reading (all of `now` for a new
    /// row); `now` is its last reading from here on.
    pub fn grown(&mut self, key: K, now: V) -> V {
        let last = self.rows.entry(key).or_default();
        let grown = now.grown_since(last);
        *last = now;
        grown
    }

    /// One reading of every row: what each grew, and the rows not read
    /// this time forgotten (their process or file is gone).
    pub fn grown_all(&mut self, now: HashMap<K, V>) -> HashMap<K, (V, V)>
    where
        K: Clone,
    {
        let grown = now
            .iter()
            .map(|(key, figures)| {
                let before = self.rows.get(key).cloned().unwrap_or_default();
                (key.clone(), (figures.grown_since(&before), figures.clone()))
            })
            .collect();
        self.rows = now;
        grown
    }

    pub fn forget(&mut self, key: &K) {
        self.rows.remove(key);
    }

    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.rows.retain(keep);
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.rows.keys()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Each series of `now` less the same series in `before`, when it was
/// there; the series that did not grow left out.
fn series_since<S, K: PartialEq, V: Cumulative>(
    now: &[S],
    before: &[S],
    key: impl Fn(&S) -> K,
    figures: impl Fn(&S) -> V,
    with: impl Fn(&S, V) -> S,
    grew: impl Fn(&V) -> bool,
) -> Vec<S> {
    now.iter()
        .filter_map(|series| {
            let was = before
                .iter()
                .find(|b| key(b) == key(series))
                .map(&figures)
                .unwrap_or_default();
            let grown = figures(series).grown_since(&was);
            grew(&grown).then(|| with(series, grown))
        })
        .collect()
}

/// What happened between two snapshots of the same run's figures:
/// counters and histograms less what they were then (a series new since
/// counts whole); the zombies and resident-memory gauges and the
/// containers as they are now.
pub fn metrics_since(now: &Metrics, before: &Metrics) -> Metrics {
    let io_since = |now: &[IoSeries], before: &[IoSeries]| {
        series_since(
            now,
            before,
            |r| (r.pid.clone(), r.path.clone(), r.fs.clone()),
            |r| (r.syscalls, r.bytes, r.syncs),
            |r, (syscalls, bytes, syncs)| IoSeries {
                syscalls,
                bytes,
                syncs,
                ..r.clone()
            },
            |&(syscalls, _, syncs)| syscalls + syncs > 0,
        )
    };
    let reads = io_since(&now.reads, &before.reads);
    let writes = io_since(&now.writes, &before.writes);
    let request_sizes = series_since(
        &now.request_sizes,
        &before.request_sizes,
        |(pid, fs, _)| (pid.clone(), fs.clone()),
        |(_, _, h)| h.clone(),
        |(pid, fs, _), h| (pid.clone(), fs.clone(), h),
        |h| h.count() > 0,
    );
    let switches = series_since(
        &now.switches,
        &before.switches,
        |(pid, _, _)| pid.clone(),
        |&(_, v, i)| (v, i),
        |(pid, _, _), (v, i)| (pid.clone(), v, i),
        |&(v, i)| v + i > 0,
    );
    let signals = series_since(
        &now.signals,
        &before.signals,
        |(signal, event, _)| (signal.clone(), *event),
        |&(_, _, n)| n,
        |(signal, event, _), n| (signal.clone(), *event, n),
        |&n| n > 0,
    );
    let python_samples = series_since(
        &now.python_samples,
        &before.python_samples,
        |(pid, function, _)| (pid.clone(), function.clone()),
        |&(_, _, n)| n,
        |(pid, function, _), n| (pid.clone(), function.clone(), n),
        |&n| n > 0,
    );
    let event_loop_iterations = series_since(
        &now.event_loop_iterations,
        &before.event_loop_iterations,
        |(pid, _)| pid.clone(),
        |(_, h)| h.clone(),
        |(pid, _), h| (pid.clone(), h),
        |h| h.count() > 0,
    );
    Metrics {
        reads,
        writes,
        request_sizes,
        switches,
        signals,
        event_loop_iterations,
        zombies: now.zombies.clone(),
        zombie_seconds: now.zombie_seconds.grown_since(&before.zombie_seconds),
        python_samples,
        resident_bytes: now.resident_bytes.clone(),
        events_lost: now.events_lost.grown_since(&before.events_lost),
        containers: now.containers.clone(),
        otlp: now
            .otlp
            .map(|figures| figures.grown_since(&before.otlp.unwrap_or_default())),
        web: now
            .web
            .map(|web| web.grown_since(&before.web.unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_grows_from_its_last_reading_and_a_new_one_counts_whole() {
        let mut seen: LastSeen<u32, (u64, u64)> = LastSeen::default();
        assert_eq!(seen.grown(1, (5, 50)), (5, 50));
        assert_eq!(seen.grown(1, (7, 80)), (2, 30));
        assert_eq!(seen.grown(1, (7, 80)), (0, 0));
        seen.forget(&1);
        assert_eq!(seen.grown(1, (7, 80)), (7, 80));
    }

    #[test]
    fn a_whole_reading_forgets_the_rows_it_lacks() {
        let mut seen: LastSeen<u32, u64> = LastSeen::default();
        seen.grown_all([(1, 10), (2, 20)].into());
        let grown = seen.grown_all([(2, 25)].into());
        assert_eq!(grown, [(2, (5, 25))].into());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen.grown_all([(1, 10)].into())[&1], (10, 10));
    }

    #[test]
    fn a_histogram_of_other_buckets_counts_whole() {
        let mut before = Histogram::new(&[1.0, 2.0]);
        before.observe(0.5, 3);
        let mut now = before.clone();
        now.observe(1.5, 2);
        let grown = now.grown_since(&before);
        assert_eq!(grown.counts, vec![0, 2, 0]);
        assert_eq!(grown.sum, 3.0);
        let other = Histogram::new(&[5.0]);
        assert_eq!(now.grown_since(&other), now);
    }

    #[test]
    fn a_window_is_what_grew_since_the_last() {
        let series = |syscalls| IoSeries {
            pid: "7".into(),
            path: "/f".into(),
            fs: "ext4".into(),
            syscalls,
            bytes: syscalls * 10,
            syncs: 0,
        };
        let mut sizes = Histogram::new(&[1024.0]);
        sizes.observe(1024.0, 3);
        let before = Metrics {
            reads: vec![series(3)],
            request_sizes: vec![("7".into(), "ext4".into(), sizes.clone())],
            signals: vec![("SIGUSR1".into(), "generated", 1)],
            zombies: vec![("7".into(), 1)],
            ..Metrics::default()
        };
        sizes.observe(1024.0, 2);
        let mut now = before.clone();
        now.reads = vec![series(5)];
        now.request_sizes[0].2 = sizes;
        now.python_samples = vec![("7".into(), "f".into(), 4)];
        let window = metrics_since(&now, &before);
        assert_eq!((window.reads[0].syscalls, window.reads[0].bytes), (2, 20));
        assert_eq!(window.request_sizes[0].2.count(), 2);
        assert!(window.signals.is_empty());
        assert_eq!(window.zombies, vec![("7".into(), 1)]);
        assert_eq!(window.python_samples, vec![("7".into(), "f".into(), 4)]);
    }

    #[test]
    fn a_window_says_its_own_otlp_figures() {
        let before = Metrics {
            otlp: Some(OtlpFigures {
                exports: 3,
                export_failures: 1,
                samples_exported: 300,
                ..OtlpFigures::default()
            }),
            ..Metrics::default()
        };
        let mut now = before.clone();
        now.otlp = Some(OtlpFigures {
            exports: 3,
            export_failures: 4,
            windows_dropped: 1,
            samples_exported: 300,
            samples_dropped: 25,
        });
        assert_eq!(
            metrics_since(&now, &before).otlp,
            Some(OtlpFigures {
                exports: 0,
                export_failures: 3,
                windows_dropped: 1,
                samples_exported: 0,
                samples_dropped: 25
            })
        );
    }
}

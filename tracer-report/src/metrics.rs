//! `--serve`: the continuous mode's figures (plain data, cumulative since
//! tracing started, bounded in size) and their Prometheus exposition,
//! encoded by the Prometheus project's `prometheus-client` crate
//! (OpenMetrics text, which Prometheus scrapes).

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _, MetricEncoder, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use super::{
    Container,
    identity::{ContainerField, container_fields},
};

/// The label value of the series that gathers what does not fit the bound.
pub const OTHER: &str = "other";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Per (pid, path, fs): read syscalls and bytes.
    pub reads: Vec<IoSeries>,
    /// Per (process, file or socket): write-family syscalls, bytes and syncs.
    pub writes: Vec<IoSeries>,
    /// Per (pid, fs): read request sizes.
    pub request_sizes: Vec<(String, String, Histogram)>,
    /// Per pid: (voluntary, involuntary) context switches.
    pub switches: Vec<(String, u64, u64)>,
    /// (signal, event, count); event: generated | delivered | ignored.
    pub signals: Vec<(String, &'static str, u64)>,
    /// Per parent pid: its zombie children now.
    pub zombies: Vec<(String, u64)>,
    /// How long each reaped zombie stayed one.
    pub zombie_seconds: Histogram,
    /// Per (pid, innermost function): Python samples.
    pub python_samples: Vec<(String, String, u64)>,
    /// Per live Python process: its resident memory at its last sampled
    /// page fault.
    pub resident_bytes: Vec<(String, u64)>,
    /// Per Python process: its event loops' iteration times.
    pub event_loop_iterations: Vec<(String, Histogram)>,
    /// Everything the kernel side could not record, and records not decoded.
    pub events_lost: u64,
    /// The container of each pid above that is in one: its series get
    /// its labels (one container per pid, so no more series).
    pub containers: BTreeMap<String, Container>,
    /// `--otlp`: what became of the windows pushed.
    pub otlp: Option<OtlpFigures>,
    /// `--web-config`: what the endpoint refused and reloaded.
    pub web: Option<WebFigures>,
}

/// `--otlp`'s counters: windows the collector took, attempts that failed
/// (each retry counts), and windows and samples that never reached it
/// (the queue full, a refusal, still waiting at the stop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpFigures {
    pub exports: u64,
    pub export_failures: u64,
    pub windows_dropped: u64,
    pub samples_exported: u64,
    pub samples_dropped: u64,
}

/// The endpoint's own counters under `--web-config`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WebFigures {
    /// Requests without credentials, and with wrong ones (answered 401).
    pub no_credentials: u64,
    pub wrong_credentials: u64,
    /// TLS handshakes that failed (plain HTTP to the TLS port included).
    pub tls_failures: u64,
    /// The web config read again after a change, and refused then.
    pub reloads: u64,
    pub reload_failures: u64,
    /// The serving certificate's end of validity (Unix seconds), with TLS.
    pub cert_not_after: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IoSeries {
    pub pid: String,
    pub path: String,
    pub fs: String,
    pub syscalls: u64,
    pub bytes: u64,
    /// A write series' syncs (0 for reads).
    pub syncs: u64,
}

/// Counts per bucket (not cumulative), by upper bound, then above the last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    /// One per bound, plus one for +Inf.
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts per bucket (as many as `counts` has), and their sum.
    pub fn add(&mut self, counts: &[u64], sum: f64) {
        for (n, more) in self.counts.iter_mut().zip(counts) {
            *n += more;
        }
        self.sum += sum;
    }

    /// `n` observations of `value`.
    pub fn observe(&mut self, value: f64, n: u64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += n;
        self.sum += value * n as f64;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Its lines: the buckets go to the encoder as (upper bound, count in
    /// that bucket alone), +Inf last (it writes them cumulative).
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count(), &buckets, None)
    }
}

/// The labels of a per-process series: `pid`, then its container's
/// (`container_id`, `container_name`, `pod_uid`, `pod`, `namespace`;
/// those not known are left out).
fn process_labels(m: &Metrics, pid: &str) -> Labels {
    let mut labels: Labels = vec![("pid", pid.to_owned())];
    if let Some(c) = m.containers.get(pid) {
        for (field, value) in container_fields(c) {
            let label = match field {
                ContainerField::Id => "container_id",
                ContainerField::Name => "container_name",
                ContainerField::PodUid => "pod_uid",
                ContainerField::Pod => "pod",
                ContainerField::Namespace => "namespace",
            };
            labels.push((label, value.to_owned()));
        }
    }
    labels
}

/// `--every`: the figures as a window report's JSON, the families under
/// the names and labels of the exposition.
pub fn window_json(m: &Metrics) -> serde_json::Value {
    use serde_json::json;
    // A per-process entry: its pid's labels, then its own fields.
    let process = |pid: &str, fields: serde_json::Value| {
        let mut entry: serde_json::Map<String, serde_json::Value> = process_labels(m, pid)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        if let serde_json::Value::Object(fields) = fields {
            entry.extend(fields);
        }
        serde_json::Value::Object(entry)
    };
    let histogram = |h: &Histogram| {
        json!({
            "bounds": h.bounds,
            "counts": h.counts,
            "count": h.count(),
            "sum": h.sum,
        })
    };
    let mut json = json!({
        "read_syscalls_and_bytes": m.reads.iter().map(|r| {
            process(&r.pid, json!({
                "path": r.path, "fs": r.fs, "syscalls": r.syscalls, "bytes": r.bytes
            }))
        }).collect::<Vec<_>>(),
        "write_syscalls_and_bytes": m.writes.iter().map(|w| {
            process(&w.pid, json!({
                "path": w.path, "fs": w.fs, "syscalls": w.syscalls, "bytes": w.bytes,
                "syncs": w.syncs
            }))
        }).collect::<Vec<_>>(),
        "read_request_bytes": m.request_sizes.iter().map(|(pid, fs, h)| {
            process(pid, json!({"fs": fs, "histogram": histogram(h)}))
        }).collect::<Vec<_>>(),
        "context_switches": m.switches.iter().map(|(pid, voluntary, involuntary)| {
            process(pid, json!({"voluntary": voluntary, "involuntary": involuntary}))
        }).collect::<Vec<_>>(),
        "signals": m.signals.iter().map(|(signal, event, n)| {
            json!({"signal": signal, "event": event, "count": n})
        }).collect::<Vec<_>>(),
        "event_loop_iteration_seconds": m.event_loop_iterations.iter().map(|(pid, h)| {
            process(pid, json!({"histogram": histogram(h)}))
        }).collect::<Vec<_>>(),
        "zombies_now": m.zombies.iter().map(|(pid, n)| {
            process(pid, json!({"zombies": n}))
        }).collect::<Vec<_>>(),
        "zombie_seconds": histogram(&m.zombie_seconds),
        "resident_bytes_now": m.resident_bytes.iter().map(|(pid, bytes)| {
            process(pid, json!({"bytes": bytes}))
        }).collect::<Vec<_>>(),
        "python_samples": m.python_samples.iter().map(|(pid, function, n)| {
            process(pid, json!({"function": function, "samples": n}))
        }).collect::<Vec<_>>(),
        "events_lost": m.events_lost,
        "otlp": m.otlp,
    });
    if let Some(web) = m.web {
        json["web"] = json!({
            "auth_failures": {
                "no_credentials": web.no_credentials,
                "wrong_credentials": web.wrong_credentials,
            },
            "tls_handshake_failures": web.tls_failures,
            "config_reloads": {"success": web.reloads, "failure": web.reload_failures},
            "tls_certificate_not_after_unix_s": web.cert_not_after,
        });
    }
    json
}

/// The OpenMetrics text of `metrics` (what `/metrics` serves).
pub fn prometheus_text(metrics: &Metrics) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Encoded(metrics.clone())));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct Encoded(Metrics);

type Labels = Vec<(&'static str, String)>;

impl Collector for Encoded {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        io_families(&mut encoder, m)?;
        process_families(&mut encoder, m)?;
        own_families(&mut encoder, m)
    }
}

/// A process's labels, then `more`.
fn labels(m: &Metrics, pid: &str, more: &[(&'static str, &str)]) -> Labels {
    let mut labels = process_labels(m, pid);
    labels.extend(more.iter().map(|&(k, v)| (k, v.to_owned())));
    labels
}

/// A file's or socket's series: its process, path and file system.
fn io_labels(m: &Metrics, r: &IoSeries) -> Labels {
    labels(m, &r.pid, &[("path", &r.path), ("fs", &r.fs)])
}

/// Reads and writes per process and file, and the reads' request sizes.
fn io_families(encoder: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    counters(
        encoder,
        "tracer_read_syscalls",
        "Read-family syscalls (read, pread64, readv, preadv, recvfrom, recvmsg, recvmmsg) per process and file or socket \
         (the busiest files recently; the rest in path=\"other\")",
        m.reads.iter().map(|r| (io_labels(m, r), r.syscalls)),
    )?;
    counters(
        encoder,
        "tracer_read_bytes",
        "Bytes returned by read-family syscalls per process and file or socket",
        m.reads.iter().map(|r| (io_labels(m, r), r.bytes)),
    )?;
    counters(
        encoder,
        "tracer_write_syscalls",
        "Write-family syscalls (write, pwrite64, writev, pwritev, sendto, sendmsg, sendmmsg) \
         per process and file or socket (the busiest recently; the rest in path=\"other\")",
        m.writes.iter().map(|w| (io_labels(m, w), w.syscalls)),
    )?;
    counters(
        encoder,
        "tracer_write_bytes",
        "Bytes written by write-family syscalls per process and file or socket",
        m.writes.iter().map(|w| (io_labels(m, w), w.bytes)),
    )?;
    counters(
        encoder,
        "tracer_sync_syscalls",
        "fsync, fdatasync and sync_file_range calls per process and file",
        m.writes.iter().map(|w| (io_labels(m, w), w.syncs)),
    )?;
    let mut family = encoder.encode_descriptor(
        "tracer_read_request_bytes",
        "Bytes asked for per read-family syscall (CPython reads procfs 1 KiB at a time)",
        None,
        MetricType::Histogram,
    )?;
    for (pid, fs, histogram) in &m.request_sizes {
        let labels = labels(m, pid, &[("fs", fs)]);
        histogram.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Per process: event loops, context switches, zombies, resident memory,
/// Python samples; signals by name.
fn process_families(encoder: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "tracer_event_loop_iteration_seconds",
        "Iterations of the event loops (asyncio...) of each Python process: from a \
         selector wait's return (epoll_wait, select, poll) to its next wait; a long one \
         froze every other request of that loop",
        None,
        MetricType::Histogram,
    )?;
    for (pid, histogram) in &m.event_loop_iterations {
        histogram.encode(family.encode_family(&labels(m, pid, &[]))?)?;
    }
    counters(
        encoder,
        "tracer_context_switches",
        "Scheduler context switches of the traced threads per process: voluntary \
         (it slept) or involuntary (it was preempted)",
        m.switches.iter().flat_map(|(pid, voluntary, involuntary)| {
            [
                (labels(m, pid, &[("kind", "voluntary")]), *voluntary),
                (labels(m, pid, &[("kind", "involuntary")]), *involuntary),
            ]
        }),
    )?;
    counters(
        encoder,
        "tracer_signals",
        "Signals generated for or by traced processes, delivered to them, or \
         ignored (at generation or delivery)",
        m.signals.iter().map(|(signal, event, n)| {
            (
                vec![("signal", signal.clone()), ("event", (*event).to_owned())],
                *n,
            )
        }),
    )?;
    let mut family = encoder.encode_descriptor(
        "tracer_zombies",
        "Zombie children of each traced process now (exited, not reaped yet)",
        None,
        MetricType::Gauge,
    )?;
    for (pid, n) in &m.zombies {
        let labels = labels(m, pid, &[]);
        ConstGauge::new(*n as i64).encode(family.encode_family(&labels)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "tracer_process_resident_bytes",
        "Resident memory of each live Python process, as of its last sampled page fault \
         (--memory-sample)",
        None,
        MetricType::Gauge,
    )?;
    for (pid, bytes) in &m.resident_bytes {
        let labels = labels(m, pid, &[]);
        ConstGauge::new(*bytes as i64).encode(family.encode_family(&labels)?)?;
    }
    let histogram = &m.zombie_seconds;
    histogram.encode(encoder.encode_descriptor(
        "tracer_zombie_seconds",
        "How long each reaped child stayed a zombie, from its exit to its reaping",
        None,
        MetricType::Histogram,
    )?)?;
    counters(
        encoder,
        "tracer_python_samples",
        "CPU samples of Python stacks per process and innermost function \
         (the busiest recently; the rest in function=\"other\")",
        m.python_samples
            .iter()
            .map(|(pid, function, n)| (labels(m, pid, &[("function", function)]), *n)),
    )?;
    Ok(())
}

/// The tracer's own: what it lost, `--otlp`'s exports, the endpoint's
/// authentication, TLS and configuration.
fn own_families(encoder: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let family = encoder.encode_descriptor(
        "tracer_events_lost",
        "Events the tracer could not record (ring buffer or a kernel table full, \
         a run of its programs the kernel skipped, a record not decoded)",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(m.events_lost).encode(family)?;
    if let Some(otlp) = &m.otlp {
        let families = [
            (
                "tracer_otlp_exports",
                "--otlp: windows of profiles the collector took",
                otlp.exports,
            ),
            (
                "tracer_otlp_export_failures",
                "--otlp: export attempts that failed (the collector down, refusing \
                 or too slow; each retry counts)",
                otlp.export_failures,
            ),
            (
                "tracer_otlp_windows_dropped",
                "--otlp: windows that never reached the collector (the queue full \
                 while it was down, refused, or still waiting at the stop)",
                otlp.windows_dropped,
            ),
            (
                "tracer_otlp_samples_exported",
                "--otlp: Python samples in the windows the collector took",
                otlp.samples_exported,
            ),
            (
                "tracer_otlp_samples_dropped",
                "--otlp: Python samples in the windows dropped",
                otlp.samples_dropped,
            ),
        ];
        for (name, help, value) in families {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(family)?;
        }
    }
    if let Some(web) = &m.web {
        counters(
            encoder,
            "tracer_web_auth_failures",
            "Requests to this endpoint refused with 401: without credentials, or with \
             wrong ones (an unknown user, a wrong password, not basic auth)",
            [
                ("no_credentials", web.no_credentials),
                ("wrong_credentials", web.wrong_credentials),
            ]
            .map(|(reason, n)| (vec![("reason", reason.to_owned())], n))
            .into_iter(),
        )?;
        let family = encoder.encode_descriptor(
            "tracer_web_tls_handshake_failures",
            "TLS handshakes with this endpoint that failed (plain HTTP to its TLS port, \
             a client certificate refused, no common version or cipher suite)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(web.tls_failures).encode(family)?;
        counters(
            encoder,
            "tracer_web_config_reloads",
            "Times the --web-config file was read again after a change: success, or \
             failure (the last good config kept)",
            [("success", web.reloads), ("failure", web.reload_failures)]
                .map(|(result, n)| (vec![("result", result.to_owned())], n))
                .into_iter(),
        )?;
        if let Some(not_after) = web.cert_not_after {
            let family = encoder.encode_descriptor(
                "tracer_web_tls_certificate_not_after_timestamp_seconds",
                "When the certificate this endpoint serves expires (Unix seconds): \
                 alert on it, a renewed file is read again without a restart",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(not_after).encode(family)?;
        }
    }
    Ok(())
}

/// One counter family (`name` gets its `_total`).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_fixed_names_labels_and_buckets() {
        let mut sizes = Histogram::new(&[512.0, 1024.0, 4096.0]);
        sizes.observe(1024.0, 3);
        sizes.observe(8192.0, 1);
        let mut loops = Histogram::new(&[0.1, 1.0]);
        loops.add(&[5, 2, 0], 0.9);
        let metrics = Metrics {
            reads: vec![IoSeries {
                pid: "7".into(),
                path: "/proc/self/stat".into(),
                fs: "proc".into(),
                syscalls: 3,
                bytes: 300,
                syncs: 0,
            }],
            writes: vec![IoSeries {
                pid: "7".into(),
                path: "/var/log/app.log".into(),
                fs: "ext4".into(),
                syscalls: 300,
                bytes: 6900,
                syncs: 30,
            }],
            request_sizes: vec![("7".into(), "proc".into(), sizes)],
            switches: vec![("7".into(), 5, 2)],
            signals: vec![("SIGUSR1".into(), "delivered", 1)],
            zombies: vec![("7".into(), 1)],
            zombie_seconds: Histogram::new(&[1.0]),
            python_samples: vec![("7".into(), "burn".into(), 30)],
            resident_bytes: vec![("7".into(), 80 << 20)],
            event_loop_iterations: vec![("7".into(), loops)],
            events_lost: 0,
            containers: BTreeMap::new(),
            otlp: None,
            web: Some(WebFigures {
                no_credentials: 2,
                wrong_credentials: 1,
                tls_failures: 3,
                reloads: 1,
                reload_failures: 0,
                cert_not_after: Some(1_800_000_000),
            }),
        };
        let text = prometheus_text(&metrics);
        for line in [
            r#"tracer_web_auth_failures_total{reason="no_credentials"} 2"#,
            r#"tracer_web_auth_failures_total{reason="wrong_credentials"} 1"#,
            "tracer_web_tls_handshake_failures_total 3",
            r#"tracer_web_config_reloads_total{result="success"} 1"#,
            r#"tracer_web_config_reloads_total{result="failure"} 0"#,
            "tracer_web_tls_certificate_not_after_timestamp_seconds 1800000000",
            r#"tracer_event_loop_iteration_seconds_bucket{le="0.1",pid="7"} 5"#,
            r#"tracer_event_loop_iteration_seconds_bucket{le="1.0",pid="7"} 7"#,
            r#"tracer_event_loop_iteration_seconds_count{pid="7"} 7"#,
            r#"tracer_read_syscalls_total{pid="7",path="/proc/self/stat",fs="proc"} 3"#,
            r#"tracer_read_bytes_total{pid="7",path="/proc/self/stat",fs="proc"} 300"#,
            r#"tracer_read_request_bytes_bucket{le="1024.0",pid="7",fs="proc"} 3"#,
            r#"tracer_read_request_bytes_bucket{le="+Inf",pid="7",fs="proc"} 4"#,
            r#"tracer_read_request_bytes_count{pid="7",fs="proc"} 4"#,
            r#"tracer_context_switches_total{pid="7",kind="involuntary"} 2"#,
            r#"tracer_signals_total{signal="SIGUSR1",event="delivered"} 1"#,
            r#"tracer_zombies{pid="7"} 1"#,
            r#"tracer_zombie_seconds_count 0"#,
            r#"tracer_python_samples_total{pid="7",function="burn"} 30"#,
            r#"tracer_process_resident_bytes{pid="7"} 83886080"#,
            "tracer_events_lost_total 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }

    #[test]
    fn a_process_in_a_container_has_its_labels() {
        let mut k8s = super::super::fixtures::container();
        k8s.pod_uid = Some("0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d".into());
        k8s.pod = Some("web-0".into());
        k8s.namespace = Some("shop".into());
        let metrics = Metrics {
            switches: vec![("7".into(), 5, 2), ("8".into(), 1, 0)],
            python_samples: vec![("7".into(), "burn".into(), 30)],
            containers: BTreeMap::from([("7".into(), k8s)]),
            otlp: None,
            ..Metrics::default()
        };
        let text = prometheus_text(&metrics);
        let labels = r#"pid="7",container_id="88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a",container_name="tr-probe",pod_uid="0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d",pod="web-0",namespace="shop""#;
        for line in [
            format!(r#"tracer_context_switches_total{{{labels},kind="voluntary"}} 5"#),
            format!(r#"tracer_python_samples_total{{{labels},function="burn"}} 30"#),
            r#"tracer_context_switches_total{pid="8",kind="voluntary"} 1"#.to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
        let window = window_json(&metrics);
        let switches = &window["context_switches"];
        assert_eq!(switches[0]["container_name"], "tr-probe");
        assert_eq!(switches[0]["voluntary"], 5);
        assert!(switches[1].get("container_id").is_none());
        assert_eq!(window["python_samples"][0]["pod"], "web-0");
    }

    #[test]
    fn otlp_figures_are_counters() {
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
        let text = prometheus_text(&now);
        for line in [
            "tracer_otlp_exports_total 3",
            "tracer_otlp_export_failures_total 4",
            "tracer_otlp_windows_dropped_total 1",
            "tracer_otlp_samples_exported_total 300",
            "tracer_otlp_samples_dropped_total 25",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
        // Without --otlp: no family, and null in the window reports.
        assert!(!prometheus_text(&Metrics::default()).contains("otlp"));
        assert!(window_json(&Metrics::default())["otlp"].is_null());
    }
}

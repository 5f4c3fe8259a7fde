//! `--otlp`: each window's Python samples pushed to an OpenTelemetry
//! Collector (or Pyroscope) as OTLP/HTTP profiles, from a thread of its own
//! so that a slow or absent collector never stalls the trace. The trace
//! loop hands it each window's report ([`Exporter::push`]); it encodes
//! (`report::otlp`) and sends them in order, retrying what is worth
//! retrying with exponential backoff. What waits is bounded
//! ([`MAX_QUEUED`] windows): past it the oldest window is dropped, and
//! every window and sample that never reached the collector is counted
//! ([`Counters`], in `/metrics` and the window reports).

mod http;
mod resolve;

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::report::{Report, metrics::OtlpFigures};

/// Windows waiting while one is being sent: a minute at the default 10 s.
pub const MAX_QUEUED: usize = 6;
/// The first wait before a retry, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// At the stop, how long what is left is given to be sent.
const FLUSH: Duration = Duration::from_secs(5);
/// The path OTLP/HTTP profiles are posted to under a base URL.
const PROFILES_PATH: &str = "/v1development/profiles";
/// The OTel SDKs' endpoint when none is given.
const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("--otlp {url}: {why}")]
    Url { url: String, why: String },
    #[error("{name}: {why}")]
    Headers { name: &'static str, why: String },
    #[error("--otlp-ca {path}: {why}", path = path.display())]
    Ca { path: PathBuf, why: String },
    #[error("--otlp: TLS: {0}")]
    Tls(String),
    #[error("--otlp: cannot start its thread: {0}")]
    Thread(std::io::Error),
}

/// Where the profiles go.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The whole URL, as said to the user.
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]`, as the `Host` header says it.
    pub authority: String,
    /// The request target: path and query.
    pub path: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `..._PROFILES_HEADERS`.
    pub headers: Vec<(String, String)>,
    /// `--otlp-ca`, or `OTEL_EXPORTER_OTLP_[PROFILES_]CERTIFICATE`.
    pub ca: Option<PathBuf>,
}

/// The endpoint as the OTel SDKs find it: `url` (from `--otlp URL`) is a
/// base URL that gets `/v1development/profiles`; without it,
/// `OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT` is used as it is, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` gets the path, else
/// `http://localhost:4318` does. Headers from `OTEL_EXPORTER_OTLP_HEADERS`
/// and `OTEL_EXPORTER_OTLP_PROFILES_HEADERS` (`key=value,...`,
/// percent-encoded; the signal's own win).
pub fn endpoint(
    url: Option<&str>,
    ca: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Endpoint, OtlpError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let full = match url {
        Some(base) => with_path(base),
        None => match env("OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT") {
            Some(url) => url,
            None => with_path(
                &env("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            ),
        },
    };
    let mut endpoint = parse_url(full.trim())?;
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_PROFILES_HEADERS",
    ] {
        for (key, value) in parse_headers(name, &env(name).unwrap_or_default())? {
            endpoint
                .headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            endpoint.headers.push((key, value));
        }
    }
    endpoint.ca = ca.map(Path::to_owned).or_else(|| {
        env("OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE")
            .or_else(|| env("OTEL_EXPORTER_OTLP_CERTIFICATE"))
            .map(PathBuf::from)
    });
    Ok(endpoint)
}

/// A base URL with the profiles' path (no doubled slash).
fn with_path(base: &str) -> String {
    format!("{}{PROFILES_PATH}", base.trim().trim_end_matches('/'))
}

/// `http[s]://host[:port][/path]`.
fn parse_url(url: &str) -> Result<Endpoint, OtlpError> {
    let bad = |why: &str| OtlpError::Url {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad(
            "user information in the URL is not supported; use OTEL_EXPORTER_OTLP_HEADERS",
        ));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(bad("not host:port")),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad("not a port number"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(Endpoint {
        url: url.to_owned(),
        tls,
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        path: path.to_owned(),
        headers: Vec::new(),
        ca: None,
    })
}

/// `key=value,key2=value2`, values percent-decoded (W3C baggage style,
/// as the OTel SDKs read it).
fn parse_headers(name: &'static str, text: &str) -> Result<Vec<(String, String)>, OtlpError> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let bad = |why: &str| OtlpError::Headers {
                name,
                why: format!("{pair:?}: {why}"),
            };
            let (key, value) = pair.split_once('=').ok_or_else(|| bad("not key=value"))?;
            let (key, value) = (percent_decode(key.trim()), percent_decode(value.trim()));
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if key.is_empty() || !key.chars().all(token) {
                return Err(bad("not a header name"));
            }
            if value.chars().any(|c| c == '\r' || c == '\n') {
                return Err(bad("a line break in a value"));
            }
            Ok((key, value))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Random bytes from the kernel (a profile's id, a DNS query's id).
fn random(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Never on Linux >= 3.17 for 16 bytes; an id need only differ.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (byte, from) in buf.iter_mut().zip(now.to_le_bytes().iter().cycle()) {
            *byte = *from;
        }
    }
}

/// What became of the windows, as they happen: read by the trace loop for
/// `/metrics` and the window reports.
#[derive(Debug, Default)]
pub struct Counters {
    exports: AtomicU64,
    failures: AtomicU64,
    windows_dropped: AtomicU64,
    samples_exported: AtomicU64,
    samples_dropped: AtomicU64,
}

impl Counters {
    pub fn figures(&self) -> OtlpFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OtlpFigures {
            exports: get(&self.exports),
            export_failures: get(&self.failures),
            windows_dropped: get(&self.windows_dropped),
            samples_exported: get(&self.samples_exported),
            samples_dropped: get(&self.samples_dropped),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn dropped(&self, samples: u64) {
        Self::add(&self.windows_dropped, 1);
        Self::add(&self.samples_dropped, samples);
    }
}

/// The windows waiting, and the stop.
#[derive(Default)]
struct Queue {
    windows: VecDeque<Report>,
    /// Set at the stop: what is not sent by then is dropped.
    flush_by: Option<Instant>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    counters: Counters,
}

/// The sending thread, and what it shares with the trace loop.
pub struct Exporter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
}

impl Exporter {
    /// Before tracing: the endpoint checked (and its TLS roots loaded), the
    /// thread started.
    pub fn start(endpoint: Endpoint) -> Result<Self, OtlpError> {
        let url = endpoint.url.clone();
        let client = http::Client::new(endpoint)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let sender = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tracer-otlp".into())
            .spawn(move || send_all(&client, &sender))
            .map_err(OtlpError::Thread)?;
        Ok(Self {
            shared,
            thread: Some(thread),
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A window to send; the oldest waiting is dropped (and counted) when
    /// [`MAX_QUEUED`] already wait.
    pub fn push(&self, report: Report) {
        let mut queue = lock(&self.shared.queue);
        if queue.windows.len() >= MAX_QUEUED
            && let Some(oldest) = queue.windows.pop_front()
        {
            let samples = crate::report::otlp::samples(&oldest);
            self.shared.counters.dropped(samples);
            log::warn!(
                "otlp: {MAX_QUEUED} windows wait for the collector: the oldest dropped ({samples} samples)"
            );
        }
        queue.windows.push_back(report);
        self.shared.wake.notify_all();
    }

    pub fn figures(&self) -> OtlpFigures {
        self.shared.counters.figures()
    }

    /// At the stop: what waits is given [`FLUSH`] to be sent (a collector
    /// found down is not tried again); the rest is dropped and counted.
    pub fn finish(&mut self) -> OtlpFigures {
        lock(&self.shared.queue).flush_by = Some(Instant::now() + FLUSH);
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.figures()
    }
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The sending thread: each window in order, until the stop's flush.
fn send_all(client: &http::Client, shared: &Shared) {
    let counters = &shared.counters;
    // Failures in a row: the first is said, the recovery too.
    let mut failing = 0u64;
    loop {
        let report = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(report) = queue.windows.pop_front() {
                    break report;
                }
                if queue.flush_by.is_some() {
                    return;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        let mut id = [0u8; 16];
        random(&mut id);
        let (body, samples) = crate::report::otlp::encode(&report, id);
        drop(report);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let flush_by = lock(&shared.queue).flush_by;
            let timeout = match flush_by {
                // At the stop, a collector already failing is not waited for.
                Some(_) if failing > 0 => Duration::ZERO,
                Some(by) => by.saturating_duration_since(Instant::now()),
                None => REQUEST_TIMEOUT,
            }
            .min(REQUEST_TIMEOUT);
            if timeout.is_zero() {
                counters.dropped(samples);
                break;
            }
            let after = match client.post(&body, timeout) {
                http::Outcome::Accepted { rejected, why } => {
                    Counters::add(&counters.exports, 1);
                    Counters::add(&counters.samples_exported, samples);
                    if failing > 0 {
                        log::warn!(
                            "otlp: {} takes profiles again after {failing} failed exports",
                            client.endpoint().url
                        );
                        failing = 0;
                    }
                    if rejected > 0 {
                        log::warn!("otlp: the collector rejected {rejected} profiles: {why}");
                    }
                    break;
                }
                http::Outcome::Refused { why } => {
                    Counters::add(&counters.failures, 1);
                    counters.dropped(samples);
                    log::warn!("otlp: a window of {samples} samples dropped: {why}");
                    break;
                }
                http::Outcome::Retry { why, after } => {
                    Counters::add(&counters.failures, 1);
                    failing += 1;
                    if failing == 1 {
                        log::warn!(
                            "otlp: cannot export to {}: {why}; retrying with backoff (windows wait, at most {MAX_QUEUED})",
                            client.endpoint().url
                        );
                    } else {
                        log::info!("otlp: export failed again: {why}");
                    }
                    after.unwrap_or(backoff).min(MAX_BACKOFF)
                }
            };
            backoff = (backoff * 2).min(MAX_BACKOFF);
            // Until the retry is due, or the stop.
            let queue = lock(&shared.queue);
            if queue.flush_by.is_none() {
                let _ = shared
                    .wake
                    .wait_timeout_while(queue, after, |q| q.flush_by.is_none());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoints_as_the_sdks_find_them() {
        let none = env(&[]);
        let e = endpoint(None, None, &none).unwrap();
        assert_eq!(e.url, "http://localhost:4318/v1development/profiles");
        assert_eq!((e.host.as_str(), e.port, e.tls), ("localhost", 4318, false));
        assert_eq!(e.path, "/v1development/profiles");
        // The generic variable is a base; the signal's is used as is.
        let generic = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/")]);
        let e = endpoint(None, None, &generic).unwrap();
        assert_eq!(e.url, "https://collector:4318/v1development/profiles");
        assert!(e.tls);
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT",
                "http://b:9999/custom/path?x=1",
            ),
        ]);
        let e = endpoint(None, None, &both).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("b", 9999));
        assert_eq!(e.path, "/custom/path?x=1");
        // --otlp URL wins over both, and is a base.
        let e = endpoint(Some("http://[::1]:4318/otlp"), None, &both).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 4318));
        assert_eq!(e.authority, "[::1]:4318");
        assert_eq!(e.path, "/otlp/v1development/profiles");
        let e = endpoint(Some("https://collector.example"), None, &none).unwrap();
        assert_eq!((e.port, e.path.as_str()), (443, "/v1development/profiles"));
        for bad in [
            "collector:4318",
            "ftp://x",
            "http://:80",
            "http://x:port",
            "http://u:p@x",
        ] {
            assert!(endpoint(Some(bad), None, &none).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_and_certificates_from_the_environment() {
        let vars = env(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Basic%20dXNlcjpwYXNz, X-Scope-OrgID=a,x-tenant=old",
            ),
            ("OTEL_EXPORTER_OTLP_PROFILES_HEADERS", "X-Tenant=new"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
        ]);
        let e = endpoint(Some("http://c:4318"), None, &vars).unwrap();
        assert_eq!(
            e.headers,
            [
                ("Authorization".to_owned(), "Basic dXNlcjpwYXNz".to_owned()),
                ("X-Scope-OrgID".to_owned(), "a".to_owned()),
                ("X-Tenant".to_owned(), "new".to_owned()),
            ]
        );
        assert_eq!(e.ca, Some(PathBuf::from("/etc/ca.pem")));
        let e = endpoint(Some("http://c"), Some(Path::new("/mine.pem")), &vars).unwrap();
        assert_eq!(e.ca, Some(PathBuf::from("/mine.pem")));
        for bad in ["novalue", "bad key=1", "k=a%0Db"] {
            let given = [("OTEL_EXPORTER_OTLP_HEADERS", bad)];
            assert!(endpoint(None, None, env(&given)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_window_and_counts_it() {
        // A collector that is never reached: the thread waits in backoff.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let mut exporter = Exporter::start(endpoint(Some(&url), None, env(&[])).unwrap()).unwrap();
        let window = |samples: u64| {
            let mut report = Report::default();
            report.python.rate_hz = 100;
            report.python.stacks = vec![crate::report::PythonStack {
                pid: 1,
                tid: 1,
                samples,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![crate::frame::Frame::default()],
            }];
            report
        };
        for samples in 1..=(MAX_QUEUED as u64 + 3) {
            exporter.push(window(samples));
        }
        let figures = exporter.finish();
        assert_eq!(figures.exports, 0);
        assert_eq!(figures.samples_exported, 0);
        // Every window dropped, one way or another, and every sample counted.
        let all: u64 = (1..=(MAX_QUEUED as u64 + 3)).sum();
        assert_eq!(figures.samples_dropped, all);
        assert_eq!(figures.windows_dropped, MAX_QUEUED as u64 + 3);
        assert!(figures.export_failures >= 1);
    }
}

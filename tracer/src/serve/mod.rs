//! `--serve ADDR`: the HTTP endpoint Prometheus scrapes, and that Parca or
//! Grafana Alloy pull profiles from (`/debug/pprof/profile?seconds=N`, as
//! of a Go service). The address is bound before tracing starts (a port in
//! use fails at once); each connection is served by a task of its own with
//! a deadline, at most [`MAX_CONNECTIONS`] at a time, from the latest
//! exposition text the trace loop published, or from a window of samples
//! it was asked for: a client that connects and never reads (or never
//! sends) costs a slot for [`DEADLINE`] (plus a profile's seconds) and
//! never stalls the trace.
//!
//! `--web-config FILE` puts every path behind TLS and credentials
//! ([`web_config`], [`auth`]), checked per connection before the request
//! is routed; the file is read again when it (or a file it names) changes.

pub mod auth;
pub mod web_config;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc, oneshot, watch},
};

use self::{
    auth::{Checker, Verdict, WebStats},
    web_config::{Stamp, WebConfig, WebConfigError},
};
use crate::report::Report;

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// The longest a connection may take, request and response (a profile's
/// takes its seconds more).
const DEADLINE: Duration = Duration::from_secs(10);
/// At the stop, how long answers in flight (a profile's partial window,
/// a scrape) are given to be written before the tracer exits.
const DRAIN: Duration = Duration::from_secs(3);
/// The longest request head read.
const MAX_REQUEST: usize = 8192;
/// A profile's seconds when the request does not say (Go's default), and
/// the most it may ask for.
const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const PPROF: &str = "application/octet-stream";
/// The challenge of a 401 (RFC 7617).
const CHALLENGE: &str = "WWW-Authenticate: Basic realm=\"tracer\", charset=\"UTF-8\"\r\n";
const HOME: &str = "tracer: Prometheus metrics at /metrics, pprof profiles at /debug/pprof/\n";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--serve {addr}: not an address (HOST:PORT, [IPv6]:PORT or :PORT)")]
    BadAddress { addr: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
}

/// `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 address.
pub fn parse_address(addr: &str) -> Result<SocketAddr, ServeError> {
    let full = match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_owned(),
    };
    full.parse().map_err(|_| ServeError::BadAddress {
        addr: addr.to_owned(),
    })
}

/// Listens on `addr` now (before tracing), for [`serve`] to accept on.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok(listener)
}

/// What `--serve` exposes to whoever reaches `addr` when nothing guards
/// it: a warning for an address other than loopback (`None`: loopback, or
/// TLS with users or client certificates required).
pub fn exposure_warning(addr: SocketAddr, web: Option<&WebConfig>) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    let (tls, users, client_certs) = web.map_or((false, false, false), |c| {
        (
            c.tls.is_some(),
            !c.users.is_empty(),
            c.client_certs_required(),
        )
    });
    let guard = match web {
        _ if tls && (users || client_certs) => return None,
        None => "without --web-config",
        Some(_) if !tls && !users => "with a web config that has neither TLS nor users",
        Some(_) if !tls => "with basic auth but no TLS (the passwords cross the network in clear)",
        Some(_) => "with TLS but neither users nor client certificates",
    };
    Some(format!(
        "--serve {addr} {guard}: anyone who can reach it reads the paths of the files every \
         traced process reads (/metrics) and the Python code it runs (/debug/pprof/profile); \
         give --web-config FILE with tls_server_config and basic_auth_users, or serve on \
         127.0.0.1 behind an authenticating proxy (docs/security.md)"
    ))
}

/// `--web-config`: the config in force, read again when its files change
/// (as exporter-toolkit does, with no restart): a config that no longer
/// reads or checks out is said once and the last good one is kept.
pub struct Web {
    path: PathBuf,
    state: Mutex<Loaded>,
    checker: Checker,
    pub stats: Arc<WebStats>,
}

struct Loaded {
    config: Arc<WebConfig>,
    stamp: Stamp,
    /// The files as they were when they last failed to load.
    refused: Option<Stamp>,
}

impl Web {
    /// Reads and checks `path` now: before tracing, its errors stop the start.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let config = WebConfig::load(path, SystemTime::now())?;
        let stamp = Stamp::of(&config.files);
        let stats = Arc::new(WebStats::default());
        stats.set_cert(config.cert_not_after);
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(Loaded {
                config: Arc::new(config),
                stamp,
                refused: None,
            }),
            checker: Checker::default(),
            stats,
        })
    }

    /// The credentials of a request head against `users`, counted when
    /// refused.
    pub async fn check(&self, users: &auth::Users, head: &str) -> Verdict {
        let verdict = self.checker.check(users, head).await;
        match verdict {
            Verdict::Allowed => {}
            Verdict::NoCredentials => WebStats::count(&self.stats.no_credentials),
            Verdict::Wrong => WebStats::count(&self.stats.wrong_credentials),
        }
        verdict
    }

    /// The config for a new connection: read again if a file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        // Nothing that holds it can panic: a poisoned lock's state is whole.
        let mut loaded = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stamp = Stamp::of(&loaded.config.files);
        if stamp != loaded.stamp && loaded.refused.as_ref() != Some(&stamp) {
            match WebConfig::load(&self.path, SystemTime::now()) {
                Ok(config) => {
                    log::warn!(
                        "{}: changed, reloaded ({})",
                        self.path.display(),
                        config.describe()
                    );
                    loaded.stamp = Stamp::of(&config.files);
                    self.stats.set_cert(config.cert_not_after);
                    loaded.config = Arc::new(config);
                    loaded.refused = None;
                    WebStats::count(&self.stats.reloads);
                }
                Err(err) => {
                    log::warn!("{err}; the last good web config is kept");
                    loaded.refused = Some(stamp);
                    WebStats::count(&self.stats.reload_failures);
                }
            }
        }
        loaded.config.clone()
    }
}

/// What the endpoint serves from: the latest exposition text the trace
/// loop published, and the way to ask it for a profile window.
pub struct Endpoint {
    pub exposition: watch::Receiver<Arc<String>>,
    pub profiles: mpsc::Sender<ProfileRequest>,
    /// `--web-config`: TLS and credentials.
    pub web: Option<Arc<Web>>,
    /// Profiles taken at once, at most (the trace keeps that many windows
    /// open; more requests are turned away with 503).
    pub max_profiles: usize,
}

/// A `/debug/pprof/profile` request, for the trace loop: a window of
/// `seconds` from now, and where its report (or why there is none) goes.
pub struct ProfileRequest {
    pub seconds: u64,
    pub reply: oneshot::Sender<Result<Report, String>>,
}

/// Accepts connections until `stop`, answering `GET /metrics` with the
/// latest exposition and `GET /debug/pprof/profile` with a window of
/// samples; then gives the answers in flight [`DRAIN`] to be written (a
/// profile open when the trace stopped is answered with what it has: the
/// tracer must not exit under it).
pub async fn serve(
    listener: std::net::TcpListener,
    endpoint: Endpoint,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            log::warn!("serving metrics: {err}");
            return;
        }
    };
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let windows = Arc::new(Semaphore::new(endpoint.max_profiles));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            log::warn!("metrics: {peer} turned away ({MAX_CONNECTIONS} connections open)");
            continue;
        };
        let (endpoint, windows) = (endpoint.clone(), windows.clone());
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            // Read per connection: a changed web config applies to the next one.
            let config = endpoint.web.as_ref().map(|web| web.current());
            match config.as_ref().and_then(|c| c.tls.clone()) {
                Some(tls) => {
                    let accepted =
                        tokio::time::timeout_at(start + DEADLINE, handshake(stream, tls)).await;
                    match accepted {
                        Ok(Ok(stream)) => {
                            let connection = Connection {
                                peer,
                                start,
                                config: config.as_deref(),
                            };
                            connection.serve(stream, &endpoint, &windows).await
                        }
                        Ok(Err(why)) => {
                            if let Some(web) = &endpoint.web {
                                WebStats::count(&web.stats.tls_failures);
                            }
                            log::info!("metrics: {peer}: TLS handshake failed: {why}");
                        }
                        Err(_) => {
                            log::info!(
                                "metrics: {peer}: no TLS handshake within {DEADLINE:?}, dropped"
                            )
                        }
                    }
                }
                None => {
                    let connection = Connection {
                        peer,
                        start,
                        config: config.as_deref(),
                    };
                    connection.serve(stream, &endpoint, &windows).await
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it is answered (or dropped).
    if tokio::time::timeout(DRAIN, slots.acquire_many(MAX_CONNECTIONS as u32))
        .await
        .is_err()
    {
        log::info!("metrics: connections still open {DRAIN:?} after the stop, closed");
    }
}

/// A TLS handshake; a client that speaks plain HTTP to the TLS port is
/// told so in plain HTTP (as Go's server tells it), and gets nothing else.
async fn handshake(
    mut stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    let mut first = [0u8; 1];
    // A TLS connection opens with a handshake record (type 0x16).
    if matches!(stream.peek(&mut first).await, Ok(1)) && first[0] != 0x16 {
        // Its request read first: a close with unread data would reset it.
        let _ = read_head(&mut stream).await;
        let why = "Client sent an HTTP request to an HTTPS server.\n";
        let _ = respond(&mut stream, "400 Bad Request", TEXT, "", why.as_bytes()).await;
        return Err("plain HTTP to the TLS port".into());
    }
    tokio_rustls::TlsAcceptor::from(tls)
        .accept(stream)
        .await
        .map_err(|err| err.to_string())
}

/// One connection (TLS or not) once accepted: its request, its
/// credentials when the web config has users, its answer.
struct Connection<'a> {
    peer: SocketAddr,
    start: tokio::time::Instant,
    config: Option<&'a WebConfig>,
}

impl Connection<'_> {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        mut stream: S,
        endpoint: &Endpoint,
        windows: &Semaphore,
    ) {
        let (peer, start) = (self.peer, self.start);
        let head = tokio::time::timeout_at(start + DEADLINE, read_head(&mut stream)).await;
        let Ok(Some(head)) = head else {
            log::info!("metrics: {peer} sent no whole request within {DEADLINE:?}, dropped");
            return;
        };
        let headers = self.config.map_or("", |c| c.header_lines.as_str());
        if let (Some(web), Some(config)) = (&endpoint.web, self.config)
            && !config.users.is_empty()
        {
            let verdict =
                tokio::time::timeout_at(start + DEADLINE, web.check(&config.users, &head))
                    .await
                    .unwrap_or(Verdict::Wrong);
            if verdict != Verdict::Allowed {
                log::info!("metrics: {peer}: {verdict:?}, answered 401");
                let challenge = format!("{headers}{CHALLENGE}");
                let why = b"401 Unauthorized: basic credentials needed\n";
                let answer = respond(&mut stream, "401 Unauthorized", TEXT, &challenge, why);
                let _ = tokio::time::timeout_at(start + DEADLINE, answer).await;
                return;
            }
        }
        let route = route(&head);
        // A profile takes its seconds, then the deadline of any request.
        let deadline = match route {
            Route::Profile(seconds) => start + DEADLINE + Duration::from_secs(seconds),
            _ => start + DEADLINE,
        };
        let answer = answer(&mut stream, route, headers, endpoint, windows);
        if tokio::time::timeout_at(deadline, answer).await.is_err() {
            log::info!("metrics: {peer} not served by its deadline, dropped");
        }
    }
}

/// Reads one request head; `None`: the client closed, or sent too much
/// (answered 431).
async fn read_head<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST {
            let status = "431 Request Header Fields Too Large";
            let _ = respond(stream, status, TEXT, "", b"").await;
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
enum Route {
    Metrics,
    Home,
    PprofIndex,
    /// A profile of the next N seconds.
    Profile(u64),
    /// A refusal: its status line and why.
    Refused(&'static str, String),
}

/// The route of a request head (its first line: `METHOD TARGET VERSION`).
fn route(head: &str) -> Route {
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return Route::Refused("405 Method Not Allowed", "GET only\n".into());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/metrics" => Route::Metrics,
        "/" => Route::Home,
        "/debug/pprof" | "/debug/pprof/" => Route::PprofIndex,
        "/debug/pprof/profile" => match profile_seconds(query) {
            Ok(seconds) => Route::Profile(seconds),
            Err(why) => Route::Refused("400 Bad Request", why + "\n"),
        },
        _ => Route::Refused("404 Not Found", "not found\n".into()),
    }
}

/// The `seconds` of a profile's query string: Go's default when it is not
/// there, else a whole number from 1 to [`MAX_SECONDS`] (Go's endpoint takes
/// nonsense for its default; this one says what is wrong).
fn profile_seconds(query: &str) -> Result<u64, String> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("seconds="));
    let Some(value) = value else {
        return Ok(DEFAULT_SECONDS);
    };
    match value.parse::<u64>() {
        Ok(seconds @ 1..=MAX_SECONDS) => Ok(seconds),
        _ => Err(format!(
            "seconds={value}: a profile lasts a whole number of seconds from 1 to {MAX_SECONDS}"
        )),
    }
}

/// `/debug/pprof/`: what is served there.
fn pprof_index() -> String {
    format!(
        "tracer: pprof profiles of the sampled Python stacks\n\n\
         /debug/pprof/profile?seconds=N  CPU samples of the next N seconds (default \
         {DEFAULT_SECONDS}, at most {MAX_SECONDS}), a gzipped profile.proto:\n  \
         go tool pprof http://HOST:PORT/debug/pprof/profile?seconds=5\n"
    )
}

/// `headers`: the web config's extra response headers (head lines).
async fn answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    route: Route,
    headers: &str,
    endpoint: &Endpoint,
    windows: &Semaphore,
) {
    let ok = "200 OK";
    let _ = match route {
        Route::Metrics => {
            let text = endpoint.exposition.borrow().clone();
            respond(stream, ok, OPENMETRICS, headers, text.as_bytes()).await
        }
        Route::Home => respond(stream, ok, TEXT, headers, HOME.as_bytes()).await,
        Route::PprofIndex => respond(stream, ok, TEXT, headers, pprof_index().as_bytes()).await,
        Route::Profile(seconds) => match profile(seconds, endpoint, windows).await {
            Ok(body) => respond(stream, ok, PPROF, headers, &body).await,
            Err((status, why)) => respond(stream, status, TEXT, headers, why.as_bytes()).await,
        },
        Route::Refused(status, why) => respond(stream, status, TEXT, headers, why.as_bytes()).await,
    };
}

/// A window of `seconds` asked of the trace loop and awaited (the loop
/// never waits for this task), then encoded off the loop's thread.
async fn profile(
    seconds: u64,
    endpoint: &Endpoint,
    windows: &Semaphore,
) -> Result<Vec<u8>, (&'static str, String)> {
    let unavailable = |why: String| ("503 Service Unavailable", why + "\n");
    let Ok(_window) = windows.try_acquire() else {
        return Err(unavailable(format!(
            "{} profiles are being taken, the most at once; ask again when one ends",
            endpoint.max_profiles
        )));
    };
    let (reply, report) = oneshot::channel();
    let stopped = || unavailable("tracing has stopped".into());
    endpoint
        .profiles
        .try_send(ProfileRequest { seconds, reply })
        .map_err(|_| stopped())?;
    let report = report.await.map_err(|_| stopped())?.map_err(unavailable)?;
    tokio::task::spawn_blocking(move || crate::report::pprof::encode(&report))
        .await
        .map_err(|err| err.to_string())
        .and_then(|encoded| encoded)
        .map_err(|err| ("500 Internal Server Error", err + "\n"))
}

/// `extra`: more head lines (each ending in CRLF).
async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<()> {
    // A download named `profile`, as Go's endpoint sends it.
    let disposition = if content_type == PPROF {
        "Content-Disposition: attachment; filename=\"profile\"\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {disposition}{extra}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_a_host() {
        assert_eq!(
            parse_address(":9464").unwrap(),
            "0.0.0.0:9464".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(parse_address("localhost").is_err());
    }

    #[test]
    fn an_unguarded_address_beyond_loopback_is_warned_about() {
        let any: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        let warning = exposure_warning(any, None).unwrap();
        assert!(
            warning.starts_with("--serve 0.0.0.0:9464 without --web-config: anyone"),
            "{warning}"
        );
        assert!(warning.contains("(/metrics)") && warning.contains("(/debug/pprof/profile)"));
        for loopback in ["127.0.0.1:9464", "[::1]:9464"] {
            assert_eq!(exposure_warning(loopback.parse().unwrap(), None), None);
        }
        // Users without TLS: the passwords would cross the network in clear.
        let file = std::env::temp_dir().join(format!("users-only-{}.yml", std::process::id()));
        let hash = bcrypt::hash("pw", auth::MIN_BCRYPT_COST).unwrap();
        std::fs::write(&file, format!("basic_auth_users:\n  u: '{hash}'\n")).unwrap();
        let config = WebConfig::load(&file, SystemTime::now()).unwrap();
        let _ = std::fs::remove_file(&file);
        let warning = exposure_warning(any, Some(&config)).unwrap();
        assert!(warning.contains("basic auth but no TLS"), "{warning}");
    }

    fn get(target: &str) -> Route {
        route(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    #[test]
    fn routes_and_profile_seconds() {
        assert_eq!(get("/metrics"), Route::Metrics);
        assert_eq!(get("/metrics?x=1"), Route::Metrics);
        assert_eq!(get("/"), Route::Home);
        assert_eq!(get("/debug/pprof/"), Route::PprofIndex);
        assert_eq!(get("/debug/pprof"), Route::PprofIndex);
        assert_eq!(get("/debug/pprof/profile?seconds=5"), Route::Profile(5));
        // Go's default, and other parameters ignored as Go's endpoint does.
        assert_eq!(get("/debug/pprof/profile"), Route::Profile(30));
        assert_eq!(
            get("/debug/pprof/profile?debug=0&seconds=2"),
            Route::Profile(2)
        );
        assert_eq!(
            get(&format!("/debug/pprof/profile?seconds={MAX_SECONDS}")),
            Route::Profile(MAX_SECONDS)
        );
        for nonsense in ["0", "-1", "2.5", "", "abc", "301", "99999999999999999999"] {
            match get(&format!("/debug/pprof/profile?seconds={nonsense}")) {
                Route::Refused(status, why) => {
                    assert_eq!(status, "400 Bad Request");
                    assert!(why.starts_with(&format!("seconds={nonsense}: ")), "{why}");
                    assert!(why.contains("from 1 to 300"), "{why}");
                }
                other => panic!("seconds={nonsense}: {other:?}"),
            }
        }
        assert!(matches!(
            get("/debug/pprof/heap"),
            Route::Refused("404 Not Found", _)
        ));
        assert!(matches!(
            route("POST /metrics HTTP/1.1\r\n\r\n"),
            Route::Refused("405 Method Not Allowed", _)
        ));
    }
}

//! Requests, from the records of the connections that carried an HTTP/1.x
//! request line (`tracer-ebpf/src/requests.rs`): a request line read
//! starts a request; the status line written answers it; its last write
//! before the connection's next request line, its close or the trace's end
//! ends it. Folded per (method, route), the slowest kept one by one.

use std::collections::{BTreeMap, HashMap};

use tracer_common::{RequestIoEvent, request_io};

use crate::report::{self, MAX_ROUTES, MAX_SLOWEST, RequestLatency};

/// The methods of RFC 9110 (and PATCH): any other token is not a request.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

#[derive(Default)]
pub struct Requests {
    /// The request in progress on each connection: (pid, fd, file id).
    open: HashMap<(u32, i32, u64), InProgress>,
    routes: HashMap<(String, String), RouteRow>,
    /// The slowest answered, slowest first, at most `MAX_SLOWEST`.
    slowest: Vec<report::Request>,
    unanswered: u64,
    past_route_bound: u64,
}

struct InProgress {
    method: &'static str,
    path: String,
    pid: u32,
    tid: u32,
    start_ns: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// The status line's code, once written (a 1xx may be followed by the
    /// final one).
    status: Option<u16>,
    last_write_ns: u64,
}

#[derive(Default)]
struct RouteRow {
    count: u64,
    errors: u64,
    client_errors: u64,
    latencies: Histogram,
    bytes_in: u64,
    bytes_out: u64,
}

impl Requests {
    /// One record of a connection.
    pub fn on_io(&mut self, event: &RequestIoEvent, base_ns: u64) {
        let conn = (event.header.tgid, event.fd, event.file_id);
        let line = &event.line[..(event.line_len as usize).min(event.line.len())];
        match event.kind {
            request_io::READ => {
                if let Some((method, path)) = request_line(line) {
                    if let Some(previous) = self.open.remove(&conn) {
                        self.end(previous, base_ns);
                    }
                    let request = InProgress {
                        method,
                        path,
                        pid: event.header.tgid,
                        tid: event.header.tid,
                        start_ns: event.header.ts_ns,
                        bytes_in: event.bytes,
                        bytes_out: 0,
                        status: None,
                        last_write_ns: 0,
                    };
                    self.open.insert(conn, request);
                } else if let Some(request) = self.open.get_mut(&conn) {
                    request.bytes_in += event.bytes;
                }
            }
            request_io::WRITE => {
                let Some(request) = self.open.get_mut(&conn) else {
                    return;
                };
                if let Some(status) = status_line(line)
                    && request.status.is_none_or(|s| s < 200)
                {
                    request.status = Some(status);
                }
                if request.status.is_some() {
                    request.bytes_out += event.bytes;
                    request.last_write_ns = event.header.ts_ns;
                }
            }
            request_io::CLOSE => {
                if let Some(request) = self.open.remove(&conn) {
                    self.end(request, base_ns);
                }
            }
            _ => {}
        }
    }

    /// A request's connection moved on (its next request, its close, the
    /// trace's end): answered if a status line was written.
    fn end(&mut self, request: InProgress, base_ns: u64) {
        let Some(status) = request.status else {
            self.unanswered += 1;
            return;
        };
        let latency_ns = request.last_write_ns.saturating_sub(request.start_ns);
        let route = route_of(&request.path);
        let mut key = (request.method.to_string(), route);
        if !self.routes.contains_key(&key) && self.routes.len() >= MAX_ROUTES {
            self.past_route_bound += 1;
            key.1 = OTHER_ROUTE.to_string();
        }
        let row = self.routes.entry(key.clone()).or_default();
        row.count += 1;
        row.errors += u64::from(status >= 500);
        row.client_errors += u64::from((400..500).contains(&status));
        row.latencies.add(latency_ns);
        row.bytes_in += request.bytes_in;
        row.bytes_out += request.bytes_out;
        let slow_enough = self.slowest.len() < MAX_SLOWEST
            || self
                .slowest
                .last()
                .is_some_and(|r| latency_ns > r.latency_ns);
        if slow_enough {
            let at = self.slowest.partition_point(|r| r.latency_ns >= latency_ns);
            self.slowest.insert(
                at,
                report::Request {
                    method: key.0,
                    path: request.path,
                    route: key.1,
                    status,
                    latency_ns,
                    start_ns: request.start_ns.saturating_sub(base_ns),
                    pid: request.pid,
                    tid: request.tid,
                    bytes_in: request.bytes_in,
                    bytes_out: request.bytes_out,
                },
            );
            self.slowest.truncate(MAX_SLOWEST);
        }
    }

    /// The section: requests still open end here (answered if their status
    /// line was written: their last write is their end).
    pub fn finish(mut self, base_ns: u64) -> report::Requests {
        let mut open: Vec<_> = std::mem::take(&mut self.open).into_iter().collect();
        open.sort_by_key(|(_, r)| r.start_ns);
        for (_, request) in open {
            self.end(request, base_ns);
        }
        let mut routes: Vec<report::RouteRequests> = self
            .routes
            .into_iter()
            .map(|((method, route), row)| report::RouteRequests {
                method,
                route,
                count: row.count,
                errors: row.errors,
                client_errors: row.client_errors,
                latency_ns: row.latencies.latency(),
                bytes_in: row.bytes_in,
                bytes_out: row.bytes_out,
            })
            .collect();
        routes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.method, &a.route).cmp(&(&b.method, &b.route)))
        });
        report::Requests {
            routes,
            slowest: self.slowest,
            unanswered: self.unanswered,
            past_route_bound: self.past_route_bound,
        }
    }
}

/// The route of requests past [`MAX_ROUTES`].
const OTHER_ROUTE: &str = "{other}";

/// `METHOD SP target [SP HTTP/1.x]` (the version may be past the bytes
/// copied): the method and the target's path (an absolute-form target,
/// `http://host/path`, is cut to its path).
fn request_line(line: &[u8]) -> Option<(&'static str, String)> {
    let space = line.iter().position(|&b| b == b' ')?;
    let method = METHODS
        .into_iter()
        .find(|m| m.as_bytes() == &line[..space])?;
    let rest = &line[space + 1..];
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    let target = std::str::from_utf8(&rest[..end]).ok()?;
    if let Some(version) = rest.get(end + 1..)
        && rest[end] == b' '
        && !version.starts_with(b"HTTP/1.")
        && version.len() >= 7
    {
        return None;
    }
    let path = match target.find("://") {
        Some(scheme) => {
            let after = &target[scheme + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None if target.starts_with('/') || target == "*" => target,
        None if method == "CONNECT" => target,
        None => return None,
    };
    Some((method, path.to_string()))
}

/// `HTTP/1.x NNN`: the status code.
fn status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The path without its query or fragment, each segment that names one
/// thing among many folded to `{id}`: all digits (`/orders/42`), a UUID,
/// 16 or more hex digits (a hash), 20 or more of `[A-Za-z0-9_-]` with a
/// digit among them (a token).
pub fn route_of(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return "/".to_string();
    }
    path.split('/')
        .map(|segment| if names_one(segment) { "{id}" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

fn names_one(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let uuid = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let token = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    digits == bytes.len()
        || uuid
        || (bytes.len() >= 16 && bytes.iter().all(u8::is_ascii_hexdigit) && digits > 0)
        || (bytes.len() >= 20 && bytes.iter().all(token) && digits > 0)
}

/// Latencies by bucket, 32 buckets per doubling (each bucket's bounds
/// 2.2% apart): percentiles within 1.1% of the exact ones, in a few
/// hundred bytes per route however many requests.
#[derive(Default)]
struct Histogram {
    buckets: BTreeMap<u16, u64>,
    count: u64,
    min: u64,
    max: u64,
}

const BUCKETS_PER_DOUBLING: f64 = 32.0;

impl Histogram {
    fn add(&mut self, ns: u64) {
        let bucket = ((ns.max(1) as f64).log2() * BUCKETS_PER_DOUBLING) as u16;
        *self.buckets.entry(bucket).or_default() += 1;
        self.min = if self.count == 0 {
            ns
        } else {
            self.min.min(ns)
        };
        self.max = self.max.max(ns);
        self.count += 1;
    }

    /// The value at quantile `q`: its bucket's geometric middle, within
    /// the latencies seen.
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&bucket, &count) in &self.buckets {
            seen += count;
            if seen >= rank {
                let middle = (f64::from(bucket) + 0.5) / BUCKETS_PER_DOUBLING;
                return (middle.exp2() as u64).clamp(self.min, self.max);
            }
        }
        self.max
    }

    fn latency(&self) -> RequestLatency {
        RequestLatency {
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{EventHeader, EventKind, REQUEST_LINE_LEN};

    #[test]
    fn ids_fold_into_the_route_and_the_query_is_cut() {
        assert_eq!(route_of("/orders/42?full=1"), "/orders/{id}");
        assert_eq!(
            route_of("/u/123e4567-e89b-12d3-a456-426614174000/avatar"),
            "/u/{id}/avatar"
        );
        assert_eq!(route_of("/blob/9f86d081884c7d659a2f"), "/blob/{id}");
        assert_eq!(route_of("/static/app.js#top"), "/static/app.js");
        assert_eq!(route_of("/api/v2/users"), "/api/v2/users");
        assert_eq!(route_of("/report/2026"), "/report/{id}");
        assert_eq!(route_of(""), "/");
        assert_eq!(route_of("/"), "/");
        // Words, even long ones, stay.
        assert_eq!(route_of("/internationalization"), "/internationalization");
        assert_eq!(route_of("/s/AbCdEfGhIjKlMnOpQrSt1"), "/s/{id}");
    }

    #[test]
    fn request_lines_and_status_lines_are_parsed() {
        assert_eq!(
            request_line(b"GET /orders/42?x=1 HTTP/1.1\r\nHost: a\r\n"),
            Some(("GET", "/orders/42?x=1".into()))
        );
        // Cut by the kernel's copy before the version.
        assert_eq!(
            request_line(b"POST /upload/very/long"),
            Some(("POST", "/upload/very/long".into()))
        );
        assert_eq!(
            request_line(b"GET http://example.com/a/b HTTP/1.1\r\n"),
            Some(("GET", "/a/b".into()))
        );
        assert_eq!(request_line(b"GETS / HTTP/1.1\r\n"), None);
        assert_eq!(request_line(b"GET / HTTP/2.0\r\n"), None);
        assert_eq!(request_line(b"GET nopath HTTP/1.1\r\n"), None);
        assert_eq!(status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_line(b"HTTP/1.0 503 Busy"), Some(503));
        assert_eq!(status_line(b"HTTP/1.1 2000"), Some(200));
        assert_eq!(status_line(b"HTTP/1.1 OK"), None);
    }

    fn record(
        kind: u32,
        (pid, fd, ts): (u32, i32, u64),
        bytes: u64,
        line: &[u8],
    ) -> RequestIoEvent {
        let mut event = RequestIoEvent {
            header: EventHeader {
                kind: EventKind::RequestIo as u32,
                tgid: pid,
                tid: pid + 1,
                _pad: 0,
                ts_ns: ts,
            },
            file_id: 7,
            bytes,
            fd,
            kind,
            line_len: line.len().min(REQUEST_LINE_LEN) as u32,
            ..RequestIoEvent::default()
        };
        event.line[..line.len()].copy_from_slice(line);
        event
    }

    #[test]
    fn keep_alive_requests_end_at_their_last_write_before_the_next() {
        let mut requests = Requests::default();
        let conn = |ts| (10, 5, ts);
        let feed = [
            record(request_io::READ, conn(1_000), 40, b"GET /a/1 HTTP/1.1\r\n"),
            record(request_io::WRITE, conn(3_000), 100, b"HTTP/1.1 200 OK\r\n"),
            record(request_io::WRITE, conn(4_000), 900, b""),
            record(request_io::READ, conn(9_000), 40, b"GET /a/2 HTTP/1.1\r\n"),
            record(
                request_io::WRITE,
                conn(19_000),
                50,
                b"HTTP/1.1 500 Oops\r\n",
            ),
            record(request_io::CLOSE, conn(25_000), 0, b""),
            // A request never answered: its connection closed first.
            record(
                request_io::READ,
                (10, 6, 30_000),
                40,
                b"POST /b HTTP/1.1\r\n",
            ),
            record(request_io::CLOSE, (10, 6, 31_000), 0, b""),
        ];
        for event in &feed {
            requests.on_io(event, 0);
        }
        let section = requests.finish(0);
        assert_eq!(section.unanswered, 1);
        assert_eq!(section.routes.len(), 1);
        let route = &section.routes[0];
        assert_eq!(
            (route.method.as_str(), route.route.as_str()),
            ("GET", "/a/{id}")
        );
        assert_eq!((route.count, route.errors, route.client_errors), (2, 1, 0));
        assert_eq!((route.bytes_in, route.bytes_out), (80, 1_050));
        assert_eq!(route.latency_ns.max, 10_000);
        let slowest: Vec<_> = section
            .slowest
            .iter()
            .map(|r| (r.path.as_str(), r.latency_ns, r.status))
            .collect();
        assert_eq!(slowest, [("/a/2", 10_000, 500), ("/a/1", 3_000, 200)]);
        assert_eq!((section.slowest[0].pid, section.slowest[0].tid), (10, 11));
    }

    #[test]
    fn a_scan_of_random_paths_stops_at_the_route_bound() {
        let mut requests = Requests::default();
        for i in 0..(MAX_ROUTES as u64 + 50) {
            // Words, not ids: each its own route.
            let word: String = (0..4)
                .map(|k| (b'a' + (i / 26u64.pow(k) % 26) as u8) as char)
                .collect();
            let line = format!("GET /page/{word} HTTP/1.1\r\n");
            let fd = i as i32;
            requests.on_io(
                &record(request_io::READ, (1, fd, 10 * i), 10, line.as_bytes()),
                0,
            );
            requests.on_io(
                &record(
                    request_io::WRITE,
                    (1, fd, 10 * i + 5),
                    10,
                    b"HTTP/1.1 404 No\r\n",
                ),
                0,
            );
        }
        let section = requests.finish(0);
        assert_eq!(section.routes.len(), MAX_ROUTES + 1);
        assert_eq!(section.past_route_bound, 50);
        let other = section
            .routes
            .iter()
            .find(|r| r.route == OTHER_ROUTE)
            .unwrap();
        assert_eq!((other.count, other.client_errors), (50, 50));
    }

    #[test]
    fn percentiles_are_within_their_bucket() {
        let mut h = Histogram::default();
        for ns in 1..=1_000u64 {
            h.add(ns * 1_000_000);
        }
        let l = h.latency();
        let near = |got: u64, want: u64| (got as f64 / want as f64 - 1.0).abs() < 0.011;
        assert!(near(l.p50, 500_000_000), "{l:?}");
        assert!(near(l.p95, 950_000_000), "{l:?}");
        assert!(near(l.p99, 990_000_000), "{l:?}");
        assert_eq!(l.max, 1_000_000_000);
        let mut one = Histogram::default();
        one.add(1_234);
        assert_eq!(one.latency().p50, 1_234);
    }
}

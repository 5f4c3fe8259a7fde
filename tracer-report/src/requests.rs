//! The requests section: the HTTP/1.x requests a traced server answered,
//! seen from its sockets (no code in the process), per route and the
//! slowest one by one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Requests {
    /// Answered requests per (method, route), most first.
    pub routes: Vec<RouteRequests>,
    /// The slowest answered requests, slowest first (at most [`MAX_SLOWEST`]).
    pub slowest: Vec<Request>,
    /// Request lines read whose response was never seen: the connection
    /// closed first, the next request came first, or the trace ended.
    pub unanswered: u64,
    /// Requests counted under the route `{other}` of their method: the
    /// table holds [`MAX_ROUTES`] routes (a scan of random paths cannot
    /// grow it).
    pub past_route_bound: u64,
}

/// Distinct (method, route) rows kept; past that, `{other}`.
pub const MAX_ROUTES: usize = 500;
/// Requests listed one by one.
pub const MAX_SLOWEST: usize = 10;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RouteRequests {
    pub method: String,
    /// The path without its query, each id-like segment folded (`{id}`,
    /// see docs/report-schema.md).
    pub route: String,
    pub count: u64,
    /// Answered with a 5xx status.
    pub errors: u64,
    /// Answered with a 4xx status.
    pub client_errors: u64,
    pub latency_ns: RequestLatency,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Percentiles of a route's latencies (from its request line read to its
/// response's last write).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestLatency {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub method: String,
    /// As read, query included (its first bytes only: the kernel copies a
    /// line's first 128).
    pub path: String,
    pub route: String,
    pub status: u16,
    pub latency_ns: u64,
    /// From the trace's start.
    pub start_ns: u64,
    /// The process and thread that read the request line.
    pub pid: u32,
    pub tid: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

//! REQUESTS: the HTTP/1.x requests the traced servers answered, per route,
//! and the slowest one by one.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{
    Report,
    format::{bytes, duration, thousands},
};

const MAX_ROUTES_SHOWN: usize = 15;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let requests = &report.requests;
    if requests.routes.is_empty() && requests.unanswered == 0 {
        return;
    }
    let answered: u64 = requests.routes.iter().map(|r| r.count).sum();
    let _ = writeln!(
        out,
        "REQUESTS: {} HTTP/1.x request{} answered on {} route{}, seen from the sockets",
        thousands(answered),
        if answered == 1 { "" } else { "s" },
        thousands(requests.routes.len() as u64),
        if requests.routes.len() == 1 { "" } else { "s" },
    );
    let mut table = Table::new(
        2,
        vec![
            left("method"),
            left("route").shrinks_to(12),
            right("count"),
            right("5xx"),
            right("4xx"),
            right("p50"),
            right("p95"),
            right("p99"),
            right("max"),
            right("in"),
            right("out"),
        ],
    );
    for r in requests.routes.iter().take(MAX_ROUTES_SHOWN) {
        table.row(vec![
            r.method.clone(),
            r.route.clone(),
            thousands(r.count),
            thousands(r.errors),
            thousands(r.client_errors),
            duration(r.latency_ns.p50),
            duration(r.latency_ns.p95),
            duration(r.latency_ns.p99),
            duration(r.latency_ns.max),
            bytes(r.bytes_in),
            bytes(r.bytes_out),
        ]);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if requests.routes.len() > MAX_ROUTES_SHOWN {
        super::more(out, requests.routes.len() - MAX_ROUTES_SHOWN, " routes");
    }
    if !requests.slowest.is_empty() {
        let _ = writeln!(out, "  slowest:");
        for r in &requests.slowest {
            let _ = writeln!(
                out,
                "    {:>9}  {} {} -> {}  (pid {}, tid {}; {} in, {} out)",
                duration(r.latency_ns),
                r.method,
                r.path,
                r.status,
                r.pid,
                r.tid,
                bytes(r.bytes_in),
                bytes(r.bytes_out)
            );
        }
    }
    if requests.unanswered > 0 {
        let _ = writeln!(
            out,
            "  {} request{} read but not answered (the connection closed, or the trace ended, first)",
            thousands(requests.unanswered),
            if requests.unanswered == 1 { "" } else { "s" },
        );
    }
    if requests.past_route_bound > 0 {
        let _ = writeln!(
            out,
            "  {} request{} past the first {} routes counted under {{other}}",
            thousands(requests.past_route_bound),
            if requests.past_route_bound == 1 {
                ""
            } else {
                "s"
            },
            crate::MAX_ROUTES
        );
    }
    out.push('\n');
}

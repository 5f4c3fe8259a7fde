//! `--serve ADDR`: the HTTP endpoint Prometheus scrapes. The address is
//! bound before tracing starts (a port in use fails at once); each
//! connection is served by a task of its own with a deadline, at most
//! [`MAX_CONNECTIONS`] at a time, from the latest exposition text the
//! trace loop published: a client that connects and never reads (or
//! never sends) costs a slot for [`DEADLINE`] and never stalls the trace.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// The longest a connection may take, request and response.
const DEADLINE: Duration = Duration::from_secs(10);
/// The longest request head read.
const MAX_REQUEST: usize = 8192;
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Accepts connections until the runtime stops, answering `GET /metrics`
/// with the latest text of `exposition`.
pub async fn serve(listener: std::net::TcpListener, exposition: watch::Receiver<Arc<String>>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            log::warn!("serving metrics: {err}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            log::warn!("metrics: {peer} turned away ({MAX_CONNECTIONS} connections open)");
            continue;
        };
        let text = exposition.borrow().clone();
        tokio::spawn(async move {
            if tokio::time::timeout(DEADLINE, answer(stream, &text))
                .await
                .is_err()
            {
                log::info!("metrics: {peer} took longer than {DEADLINE:?}, dropped");
            }
            drop(slot);
        });
    }
}

/// Reads one request head and writes the response; the connection closes.
async fn answer(mut stream: TcpStream, exposition: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST {
            let _ = respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
            return;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let _ = match (method, path) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", OPENMETRICS, exposition).await,
        ("GET", "/") => {
            let page = "tracer: Prometheus metrics at /metrics\n";
            respond(&mut stream, "200 OK", "text/plain; charset=utf-8", page).await
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    };
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
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
}

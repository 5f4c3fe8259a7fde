//! OTLP/HTTP's one request: `POST` a protobuf body to the collector, over
//! TCP or TLS (rustls with the `ring` provider; the collector's
//! certificate verified against the system's roots, or the CA file given),
//! a connection per request (`Connection: close`; a window every few
//! seconds needs no pool). The answer is sorted as the OTLP specification
//! says: accepted, worth retrying (429, 502, 503, 504, and any failure to
//! connect or to read an answer), or refused.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message as _;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};

use super::{Endpoint, OtlpError, resolve};
use crate::report::otlp::proto::ExportProfilesServiceResponse;

/// The most of an answer read (an OTLP answer is a few bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// How a request went.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// 2xx; `rejected`: profiles the collector said it dropped (partial
    /// success), with why.
    Accepted { rejected: i64, why: String },
    /// Worth sending again, after `after` when the collector said
    /// (`Retry-After`).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Refused for good (400, 401, 404...): sending it again would not help.
    Refused { why: String },
}

pub struct Client {
    endpoint: Endpoint,
    /// `https`: the TLS configuration (roots loaded once).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// For `endpoint`; an `https` one loads its roots now (a CA file that
    /// cannot be read fails before tracing).
    pub fn new(endpoint: Endpoint) -> Result<Self, OtlpError> {
        let tls = match endpoint.tls {
            true => Some(Arc::new(tls_config(endpoint.ca.as_deref())?)),
            false => None,
        };
        Ok(Self { endpoint, tls })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// POSTs `body`, all of it within `timeout` (connecting included).
    pub fn post(&self, body: &[u8], timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let retry = |why: String| Outcome::Retry { why, after: None };
        let stream = match self.connect(deadline) {
            Ok(stream) => stream,
            Err(why) => return retry(why),
        };
        let result = match &self.tls {
            Some(config) => {
                let name = match ServerName::try_from(self.endpoint.host.clone()) {
                    Ok(name) => name,
                    Err(err) => return retry(format!("{}: {err}", self.endpoint.host)),
                };
                match rustls::ClientConnection::new(config.clone(), name) {
                    Ok(connection) => {
                        let mut tls = rustls::StreamOwned::new(connection, stream);
                        self.exchange(&mut tls, body)
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            None => {
                let mut stream = stream;
                self.exchange(&mut stream, body)
            }
        };
        match result {
            Ok((status, retry_after, answer)) => sort(status, retry_after, &answer),
            Err(why) => retry(why),
        }
    }

    /// A connection to the first address that takes one.
    fn connect(&self, deadline: Instant) -> Result<TcpStream, String> {
        let endpoint = &self.endpoint;
        let addresses =
            resolve::resolve(&endpoint.host, endpoint.port).map_err(|e| e.to_string())?;
        let mut why = String::new();
        for address in addresses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{why} (timed out)"));
            }
            match connect(address, left) {
                Ok(stream) => return Ok(stream),
                Err(err) => why = format!("cannot connect to {address}: {err}"),
            }
        }
        Err(why)
    }

    /// The request written, the answer read: (status, Retry-After, body).
    fn exchange(
        &self,
        stream: &mut impl ReadWrite,
        body: &[u8],
    ) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
        let endpoint = &self.endpoint;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Length: {}\r\nUser-Agent: tracer/{}\r\nConnection: close\r\n",
            endpoint.path,
            endpoint.authority,
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in &endpoint.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let io = |err: std::io::Error| err.to_string();
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        stream.flush().map_err(io)?;
        let mut answer = Vec::new();
        // A server that closes without TLS's close_notify still answered.
        match stream.take(MAX_ANSWER).read_to_end(&mut answer) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            Err(err) => return Err(format!("no answer: {err}")),
        }
        parse_answer(&answer).ok_or_else(|| {
            let start = String::from_utf8_lossy(&answer[..answer.len().min(80)]).into_owned();
            format!("not an HTTP answer: {start:?}")
        })
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn connect(address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// rustls (ring) verifying the collector's certificate against `ca`, or
/// the system's roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the usual bundle
/// paths).
fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, OtlpError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certificates: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|err| OtlpError::Ca {
                    path: path.to_owned(),
                    why: err.to_string(),
                })?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(OtlpError::Ca {
                    path: path.to_owned(),
                    why: "no certificate in it".into(),
                });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                log::warn!(
                    "--otlp: no system root certificate found ({:?}); give the collector's CA with --otlp-ca",
                    found.errors
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| OtlpError::Tls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// (status, Retry-After, body) of an HTTP/1.x answer.
fn parse_answer(answer: &[u8]) -> Option<(u16, Option<Duration>, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?;
    if !status.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = status.split(' ').nth(1)?.parse().ok()?;
    let mut retry_after = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("retry-after") {
            retry_after = value.parse().ok().map(Duration::from_secs);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    // A chunked body is not decoded: only a partial success is read from it.
    let body = if chunked {
        Vec::new()
    } else {
        answer[end + 4..].to_vec()
    };
    Some((status, retry_after, body))
}

/// The outcome of an answer, as the OTLP specification sorts statuses.
fn sort(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Outcome {
    match status {
        200..=299 => {
            let partial = ExportProfilesServiceResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .unwrap_or_default();
            Outcome::Accepted {
                rejected: partial.rejected_profiles,
                why: partial.error_message,
            }
        }
        429 | 502 | 503 | 504 => Outcome::Retry {
            why: format!("the collector answered {status}"),
            after: retry_after,
        },
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            Outcome::Refused {
                why: format!("the collector answered {status}: {}", text.trim()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_as_the_specification_says() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n";
        let (status, after, body) = parse_answer(ok).unwrap();
        assert_eq!(
            sort(status, after, &body),
            Outcome::Accepted {
                rejected: 0,
                why: String::new()
            }
        );
        let partial = ExportProfilesServiceResponse {
            partial_success: Some(crate::report::otlp::proto::ExportProfilesPartialSuccess {
                rejected_profiles: 2,
                error_message: "too old".into(),
            }),
        };
        assert_eq!(
            sort(200, None, &partial.encode_to_vec()),
            Outcome::Accepted {
                rejected: 2,
                why: "too old".into()
            }
        );
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\r\n";
        let (status, after, body) = parse_answer(busy).unwrap();
        assert_eq!(
            sort(status, after, &body),
            Outcome::Retry {
                why: "the collector answered 503".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(sort(429, None, b""), Outcome::Retry { .. }));
        let refused = b"HTTP/1.0 404 Not Found\r\n\r\nno such path\n";
        let (status, after, body) = parse_answer(refused).unwrap();
        assert_eq!(
            sort(status, after, &body),
            Outcome::Refused {
                why: "the collector answered 404: no such path".into()
            }
        );
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_none());
    }

    #[test]
    fn a_collector_that_is_not_there_is_worth_retrying() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint =
            super::super::endpoint(Some(&format!("http://127.0.0.1:{port}")), None, |_| None)
                .unwrap();
        let client = Client::new(endpoint).unwrap();
        match client.post(b"x", Duration::from_secs(5)) {
            Outcome::Retry { why, after: None } => assert!(why.contains("cannot connect"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}

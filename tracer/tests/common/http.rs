//! What the `--serve` tests ask the endpoint with: plain HTTP/1.0 GETs, a
//! real Prometheus's query API, `go tool pprof -traces` output parsed.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use super::{Proc, Scratch};

/// `go tool pprof -traces URL`, pulling a profile from the endpoint as
/// Parca or Alloy would; it answers once the profile's seconds are up.
pub struct PprofPull(Proc);

impl PprofPull {
    /// Started now; `tmp`: where pprof keeps what it fetched.
    pub fn start(url: &str, tmp: &str) -> Self {
        Self(Proc::spawn(
            Command::new("go")
                .args(["tool", "pprof", "-traces", url])
                .env("PPROF_TMPDIR", tmp)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            "go tool pprof (Debian's golang-go; `cargo xtask test` installs it)",
        ))
    }

    /// Its `-traces` text, once the profile came; it must have succeeded.
    pub fn traces(mut self) -> String {
        let mut traces = String::new();
        self.0
            .child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut traces)
            .unwrap();
        let stderr = self.0.stderr_lines().rest();
        assert!(self.0.wait().success(), "go tool pprof: {stderr}\n{traces}");
        traces
    }
}

/// A port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.0: (status code, body), or `None` if the
/// server is not answering.
pub fn http_get(port: u16, path: &str) -> Option<(u32, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL expression that selects one series (`None`: no
/// series yet, or Prometheus not ready).
pub fn query(prometheus: u16, expr: &str) -> Option<f64> {
    let (status, body) = http_get(
        prometheus,
        &format!("/api/v1/query?query={}", percent_encode(expr)),
    )?;
    // 503: still starting (its storage not ready yet).
    if status == 503 {
        return None;
    }
    assert_eq!(status, 200, "{expr}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let result = answer["data"]["result"].as_array()?;
    assert!(
        result.len() <= 1,
        "{expr} selects {} series: {body}",
        result.len()
    );
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// A real Prometheus (Debian's package) scraping `target` every second,
/// its API on 127.0.0.1:`port`.
pub fn prometheus(scratch: &Scratch, target: &str, port: u16) -> Proc {
    prometheus_with(scratch, target, port, "")
}

/// [`prometheus`] with more settings for its scrape job (`job`: YAML
/// lines indented for it: `scheme`, `tls_config`, `basic_auth`...).
pub fn prometheus_with(scratch: &Scratch, target: &str, port: u16, job: &str) -> Proc {
    let config = scratch.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: tracer\n{job}    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(scratch.path("prometheus.log")).unwrap();
    Proc::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={config}"))
            .arg(format!("--storage.tsdb.path={}", scratch.path("tsdb")))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
        "prometheus (Debian's package; `cargo xtask test` installs it)",
    )
}

/// `-traces` output of `go tool pprof`: one block per sample, its labels
/// (`key: value`) and its frames (innermost first).
pub struct Trace {
    pub labels: Vec<(String, String)>,
    pub frames: Vec<String>,
}

pub fn parse_traces(text: &str) -> Vec<Trace> {
    text.split("-----------+-------------------------------------------------------")
        .skip(1)
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut trace = Trace {
                labels: Vec::new(),
                frames: Vec::new(),
            };
            for line in block.lines().filter(|l| !l.trim().is_empty()) {
                match line.split_once(":  ") {
                    Some((key, value)) => trace
                        .labels
                        .push((key.trim().to_owned(), value.trim().to_owned())),
                    None => trace
                        .frames
                        .push(line.split_whitespace().last().unwrap().to_owned()),
                }
            }
            trace
        })
        .collect()
}

impl Trace {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

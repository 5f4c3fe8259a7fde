//! What the `--web-config` tests need: certificates made by `openssl` (a
//! CA, a server certificate for 127.0.0.1, a client certificate, ones
//! expired or about to expire), bcrypt hashes, and `curl` over HTTPS.

use std::process::{Command, Stdio};

use super::Scratch;

/// A test PKI in `dir`: `ca.pem`, `server.pem` / `server.key` (for
/// 127.0.0.1), `client.pem` / `client.key`, all signed by the CA.
pub struct Pki {
    pub dir: String,
}

fn openssl(dir: &str, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (Debian's; `cargo xtask test` installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl Pki {
    pub fn new(scratch: &Scratch) -> Self {
        let dir = scratch.subdir("pki");
        let ca = [&["req", "-x509"], &EC[..], &["-nodes", "-keyout", "ca.key"]].concat();
        let ca = [
            &ca[..],
            &[
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=tracer test CA",
            ],
        ]
        .concat();
        openssl(&dir, &ca);
        let pki = Self { dir };
        pki.sign(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            "30",
        );
        pki.sign("client", "extendedKeyUsage=clientAuth\n", "30");
        pki
    }

    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// `NAME.key` and `NAME.csr`, then `NAME.pem` valid for `days`.
    fn sign(&self, name: &str, extensions: &str, days: &str) {
        self.request(name);
        let ext = format!("{name}.ext");
        std::fs::write(self.path(&ext), extensions).unwrap();
        let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                days,
                "-extfile",
                &ext,
            ],
        );
    }

    fn request(&self, name: &str) {
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let subject = format!("/CN={name}");
        let args = [
            &["req"],
            &EC[..],
            &["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subject],
        ]
        .concat();
        openssl(&self.dir, &args);
    }

    /// `NAME.pem` / `NAME.key` for 127.0.0.1, valid from `start` to `end`
    /// (`YYYYMMDDHHMMSSZ`), signed by the CA with `openssl ca` (which alone
    /// sets both dates).
    pub fn dated(&self, name: &str, start: &str, end: &str) {
        self.request(name);
        let db = format!("{name}.index");
        std::fs::write(self.path(&db), "").unwrap();
        std::fs::write(self.path(&format!("{name}.serial")), "1000\n").unwrap();
        let config = format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = {dir}/{db}\nnew_certs_dir = {dir}\n\
             serial = {dir}/{name}.serial\ndefault_md = sha256\npolicy = any\n\
             unique_subject = no\n[any]\ncommonName = supplied\n",
            dir = self.dir
        );
        let cnf = format!("{name}.cnf");
        std::fs::write(self.path(&cnf), config).unwrap();
        let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
        openssl(
            &self.dir,
            &[
                "ca",
                "-batch",
                "-config",
                &cnf,
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                &csr,
                "-out",
                &pem,
                "-notext",
                "-startdate",
                start,
                "-enddate",
                end,
            ],
        );
    }
}

/// A certificate's end of validity, Unix seconds (as openssl reads it).
pub fn not_after(pem: &str) -> i64 {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in", pem])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let date = text.trim().strip_prefix("notAfter=").unwrap().to_owned();
    let output = Command::new("date")
        .args(["-u", "-d", &date, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `date -u -d WHEN +%Y%m%d%H%M%SZ`: a certificate date.
pub fn cert_date(when: &str) -> String {
    let output = Command::new("date")
        .args(["-u", "-d", when, "+%Y%m%d%H%M%SZ"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A response as curl got it.
pub struct Answer {
    pub status: u32,
    /// The head's lines after the status line.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}\n{}", self.status, self.headers, self.text())
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `curl https://127.0.0.1:PORT/PATH` with the test CA and `args` (`-u
/// USER:PASSWORD`, `--cert`...): the answer, or curl's error (exit status
/// and message) when there is none (a refused handshake).
pub fn curl(pki: &Pki, port: u16, path: &str, args: &[&str]) -> Result<Answer, String> {
    let url = format!("https://127.0.0.1:{port}{path}");
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-i", "--http1.1", "--max-time", "20", "--cacert"])
        .arg(pki.path("ca.pem"))
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // --max-time bounds it: no watchdog needed.
    let output = command
        .output()
        .expect("curl (Debian's; `cargo xtask test` installs it)");
    if !output.status.success() {
        return Err(format!(
            "curl {url}: {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let raw = output.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    Ok(Answer {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: raw[split + 4..].to_vec(),
    })
}

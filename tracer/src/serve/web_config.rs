//! `--web-config FILE`: the endpoint's TLS and credentials, in the format
//! of Prometheus's exporter-toolkit (node_exporter's `--web.config.file`),
//! so a file written for an exporter works here unchanged. Everything in
//! it is checked when it is read: a setting that cannot be honoured is
//! refused, never ignored (a TLS or auth setting dropped silently would
//! leave the endpoint more open than its operator thinks).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{
    RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
    crypto::CryptoProvider,
    server::WebPkiClientVerifier,
    version::{TLS12, TLS13},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use serde::Deserialize;

use super::auth::Users;

/// A certificate is refused once less than this much of its validity is
/// left, or less than a tenth of its lifetime for a short-lived one (a
/// mesh's one-hour certificate): it would fail the scrapes soon after
/// the start.
const EXPIRY_MARGIN: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
#[error("--web-config {}: {message}", path.display())]
pub struct WebConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The file as exporter-toolkit reads it (`yaml.UnmarshalStrict`: an
/// unknown key is an error, a misspelt one must not leave TLS off).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<String>,
    key_file: Option<String>,
    /// The certificate and key inline (PEM), instead of the files.
    cert: Option<String>,
    key: Option<String>,
    client_ca_file: Option<String>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// Go ignores it since 1.18; so does rustls (the server's order wins).
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// HTTP/2 is not served; HTTP/1.1 is what Prometheus scrapes with.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit lets a web config add, and the values
/// each may take (`None`: any).
const ALLOWED_HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// A web config as the endpoint uses it.
pub struct WebConfig {
    /// `tls_server_config`: connections are TLS only.
    pub tls: Option<Arc<ServerConfig>>,
    /// `basic_auth_users`: every request needs one's credentials.
    pub users: Users,
    /// `http_server_config.headers`, as response head lines.
    pub header_lines: String,
    /// The files it was read from (the config and those it names), for
    /// [`Stamp`]: a change to any of them reloads it.
    pub files: Vec<PathBuf>,
    /// The serving certificate's end of validity, Unix seconds.
    pub cert_not_after: Option<i64>,
    /// `RequireAndVerifyClientCert`.
    client_certs_required: bool,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebConfig({})", self.describe())
    }
}

impl WebConfig {
    /// Reads and checks `path` now (`now`: the time certificates are
    /// checked against).
    pub fn load(path: &Path, now: SystemTime) -> Result<Self, WebConfigError> {
        let error = |message: String| WebConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        // An empty file is a valid config with nothing in it (plain HTTP).
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_norway::from_str(&text).map_err(|e| error(e.to_string()))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut files = vec![path.to_owned()];
        let users = Users::new(file.basic_auth_users.unwrap_or_default()).map_err(error)?;
        let header_lines = header_lines(
            file.http_server_config
                .and_then(|h| h.headers)
                .unwrap_or_default(),
        )
        .map_err(error)?;
        let (tls, cert_not_after, client_certs_required) = match file.tls_server_config {
            Some(tls) => {
                let required =
                    tls.client_auth_type.as_deref() == Some("RequireAndVerifyClientCert");
                let (config, not_after) = tls_config(&tls, dir, &mut files, now).map_err(error)?;
                (Some(Arc::new(config)), Some(not_after), required)
            }
            None => (None, None, false),
        };
        Ok(Self {
            tls,
            users,
            header_lines,
            files,
            cert_not_after,
            client_certs_required,
        })
    }

    /// TLS with a client certificate verified on every connection.
    pub fn client_certs_required(&self) -> bool {
        self.client_certs_required
    }

    /// What it protects, for the start-up line (`TLS, basic auth`...).
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.tls.is_some() {
            what.push(if self.client_certs_required() {
                "TLS with client certificates"
            } else {
                "TLS"
            });
        }
        if !self.users.is_empty() {
            what.push("basic auth");
        }
        if what.is_empty() {
            "neither TLS nor credentials".into()
        } else {
            what.join(", ")
        }
    }
}

/// The file's path, relative to the config file's directory as
/// exporter-toolkit resolves it.
fn resolve(dir: &Path, file: &str) -> PathBuf {
    dir.join(file)
}

fn read(dir: &Path, file: &str, what: &str, files: &mut Vec<PathBuf>) -> Result<Vec<u8>, String> {
    let path = resolve(dir, file);
    let bytes = std::fs::read(&path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    files.push(path);
    Ok(bytes)
}

/// One of `file` or `inline` (PEM), not both, and one of them.
fn pem(
    dir: &Path,
    file: &Option<String>,
    inline: &Option<String>,
    what: &str,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<u8>, String> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: give {what}_file or {what}, not both"
        )),
        (Some(file), None) => read(dir, file, &format!("{what}_file"), files),
        (None, Some(inline)) => Ok(inline.as_bytes().to_vec()),
        (None, None) => Err(format!("tls_server_config: {what}_file is missing")),
    }
}

fn tls_config(
    tls: &TlsFile,
    dir: &Path,
    files: &mut Vec<PathBuf>,
    now: SystemTime,
) -> Result<(ServerConfig, i64), String> {
    if tls.client_allowed_sans.is_some() {
        return Err(
            "tls_server_config: client_allowed_sans is not supported (it would be \
                    ignored): verify client certificates with a client_ca_file of their own"
                .into(),
        );
    }
    let cert_pem = pem(dir, &tls.cert_file, &tls.cert, "cert", files)?;
    let key_pem = pem(dir, &tls.key_file, &tls.key, "key", files)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config: the certificate: {e}"))?;
    let Some(leaf) = certs.first() else {
        return Err("tls_server_config: the certificate file holds no certificate".into());
    };
    let not_after = check_validity(leaf, now)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("tls_server_config: the private key: {e}"))?;
    let provider = Arc::new(provider(tls)?);
    let versions = versions(tls)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match client_auth(tls, dir, files)? {
        None => builder.with_no_client_auth(),
        Some((roots, optional)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("tls_server_config: client_ca_file: {e}"))?,
            )
        }
    };
    // rustls checks that the key is the certificate's.
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: the certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, not_after))
}

/// The leaf certificate's end of validity (Unix seconds), unless it is
/// not valid yet, expired, or about to expire (see [`EXPIRY_MARGIN`]).
fn check_validity(leaf: &CertificateDer, now: SystemTime) -> Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("tls_server_config: the certificate: {e}"))?;
    let validity = cert.validity();
    let (from, until) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let margin = (EXPIRY_MARGIN.as_secs() as i64).min((until - from) / 10);
    let subject = cert.subject().to_string();
    if now < from {
        Err(format!(
            "tls_server_config: the certificate ({subject}) is not valid until {} ({} s from now)",
            validity.not_before,
            from - now
        ))
    } else if now >= until {
        Err(format!(
            "tls_server_config: the certificate ({subject}) expired on {}",
            validity.not_after
        ))
    } else if until - now < margin {
        Err(format!(
            "tls_server_config: the certificate ({subject}) expires on {}, in {} s: renew it \
             (refused with less than {} s left, a tenth of its lifetime or a day)",
            validity.not_after,
            until - now,
            margin
        ))
    } else {
        Ok(until)
    }
}

/// The `ring` provider, its cipher suites and key exchange groups narrowed
/// to `cipher_suites` and `curve_preferences` (Go's names).
fn provider(tls: &TlsFile) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        let all = provider.cipher_suites.clone();
        // Go applies cipher_suites to TLS 1.2 only; 1.3's are kept.
        let mut kept: Vec<SupportedCipherSuite> = all
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .copied()
            .collect();
        for name in names {
            let suite = all.iter().find(|s| {
                let rustls_name = format!("{:?}", s.suite());
                matches!(s, SupportedCipherSuite::Tls12(_))
                    && (rustls_name == *name || rustls_name == format!("{name}_SHA256"))
            });
            match suite {
                Some(suite) => kept.push(*suite),
                None => {
                    return Err(format!(
                        "tls_server_config: cipher_suites: {name} is not one this tracer \
                         offers (TLS 1.2: {})",
                        all.iter()
                            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
                            .map(|s| format!("{:?}", s.suite()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        provider.cipher_suites = kept;
    }
    if let Some(names) = &tls.curve_preferences {
        let all = provider.kx_groups.clone();
        let mut kept = Vec::new();
        for name in names {
            let rustls_name = match name.as_str() {
                "CurveP256" => "secp256r1",
                "CurveP384" => "secp384r1",
                "X25519" => "X25519",
                _ => "",
            };
            match all
                .iter()
                .find(|g| format!("{:?}", g.name()) == rustls_name)
            {
                Some(group) => kept.push(*group),
                None => {
                    return Err(format!(
                        "tls_server_config: curve_preferences: {name} is not supported \
                         (CurveP256, CurveP384 or X25519)"
                    ));
                }
            }
        }
        provider.kx_groups = kept;
    }
    Ok(provider)
}

/// `min_version` (default TLS 1.2, as exporter-toolkit's) to `max_version`.
/// TLS 1.0 and 1.1 are not offered by rustls: a minimum of either serves 1.2.
fn versions(tls: &TlsFile) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let rank = |field: &str, version: &Option<String>, default: u8| match version.as_deref() {
        None => Ok(default),
        Some("TLS10") => Ok(10),
        Some("TLS11") => Ok(11),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(format!(
            "tls_server_config: {field}: {other} is not TLS10, TLS11, TLS12 or TLS13"
        )),
    };
    let min = rank("min_version", &tls.min_version, 12)?;
    let max = rank("max_version", &tls.max_version, 13)?;
    let versions: Vec<_> = [(12, &TLS12), (13, &TLS13)]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, version)| version)
        .collect();
    if versions.is_empty() {
        return Err(format!(
            "tls_server_config: no TLS version from min_version to max_version is offered \
             (TLS 1.2 and 1.3 are; min {min}, max {max})"
        ));
    }
    Ok(versions)
}

/// `client_auth_type` and `client_ca_file`: the client CAs, and whether a
/// client may come without a certificate; `None`: none asked for.
fn client_auth(
    tls: &TlsFile,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<(RootCertStore, bool)>, String> {
    let kind = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let optional = match kind {
        // Asks, checks nothing: no different from not asking.
        "NoClientCert" | "RequestClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
        "RequireAnyClientCert" | "RequireClientCert" => {
            return Err(format!(
                "tls_server_config: client_auth_type {kind} accepts any certificate without \
                 verifying it: use RequireAndVerifyClientCert with a client_ca_file"
            ));
        }
        other => {
            return Err(format!(
                "tls_server_config: invalid client_auth_type {other}"
            ));
        }
    };
    match (&tls.client_ca_file, optional) {
        (Some(_), None) => Err(
            "tls_server_config: a client_ca_file without a client_auth_type that verifies \
             (RequireAndVerifyClientCert or VerifyClientCertIfGiven)"
                .into(),
        ),
        (None, Some(_)) => Err(format!(
            "tls_server_config: client_auth_type {kind} needs a client_ca_file"
        )),
        (None, None) => Ok(None),
        (Some(file), Some(optional)) => {
            let pem = read(dir, file, "client_ca_file", files)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("tls_server_config: client_ca_file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_server_config: client_ca_file: {e}"))?;
            }
            if roots.is_empty() {
                return Err("tls_server_config: client_ca_file holds no certificate".into());
            }
            Ok(Some((roots, optional)))
        }
    }
}

fn header_lines(headers: BTreeMap<String, String>) -> Result<String, String> {
    let mut lines = String::new();
    for (name, value) in headers {
        let Some((_, values)) = ALLOWED_HEADERS
            .iter()
            .find(|(allowed, _)| allowed.eq_ignore_ascii_case(&name))
        else {
            return Err(format!(
                "http_server_config: the header {name} cannot be set (only {})",
                ALLOWED_HEADERS.map(|(n, _)| n).join(", ")
            ));
        };
        if let Some(values) = values
            && !values.contains(&value.as_str())
        {
            return Err(format!(
                "http_server_config: the header {name} may only be {}",
                values.join(" or ")
            ));
        }
        if value.contains(['\r', '\n']) {
            return Err(format!(
                "http_server_config: the header {name}: a line break"
            ));
        }
        lines.push_str(&format!("{name}: {value}\r\n"));
    }
    Ok(lines)
}

/// What the files of a config were when it was read: any change (a
/// rewrite, a Kubernetes Secret's symlink swapped) reloads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp(Vec<Option<FileStamp>>);

/// A file's device, inode, modification time (s, ns) and size.
type FileStamp = (u64, u64, i64, i64, u64);

impl Stamp {
    pub fn of(files: &[PathBuf]) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self(
            files
                .iter()
                .map(|f| {
                    std::fs::metadata(f)
                        .ok()
                        .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::auth::MIN_BCRYPT_COST;

    /// `text` as a web config file of its own (tests run in parallel).
    fn load(text: &str) -> Result<WebConfig, String> {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("web-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{n}.yml"));
        std::fs::write(&path, text).unwrap();
        let loaded = WebConfig::load(&path, SystemTime::now()).map_err(|e| e.message);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn an_empty_file_is_plain_http() {
        let config = load("").unwrap();
        assert!(config.tls.is_none() && config.users.is_empty());
        assert_eq!(config.describe(), "neither TLS nor credentials");
    }

    #[test]
    fn users_need_strong_bcrypt_hashes() {
        let strong = bcrypt::hash("pw", MIN_BCRYPT_COST).unwrap();
        let config = load(&format!("basic_auth_users:\n  alice: '{strong}'\n")).unwrap();
        assert_eq!(config.describe(), "basic auth");
        let weak = bcrypt::hash("pw", 5).unwrap();
        let err = load(&format!("basic_auth_users:\n  alice: '{weak}'\n")).unwrap_err();
        assert!(err.contains("alice") && err.contains("cost 5"), "{err}");
        let err = load("basic_auth_users:\n  alice: hunter2\n").unwrap_err();
        assert!(err.contains("not a bcrypt hash"), "{err}");
        assert!(!err.contains("hunter2"), "the secret is not echoed: {err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = load("tls_server_config:\n  cert_fil: x\n").unwrap_err();
        assert!(err.contains("cert_fil"), "{err}");
        let err = load("basic_auth_users: [1, 2]\n").unwrap_err();
        assert!(err.contains("basic_auth_users"), "{err}");
        let err = load("tls_server_config:\n  key_file: k\n").unwrap_err();
        assert!(err.contains("cert_file is missing"), "{err}");
        let err =
            load("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: k\n").unwrap_err();
        assert!(err.contains("/nonexistent.crt"), "{err}");
    }

    #[test]
    fn headers_are_exporter_toolkits() {
        assert_eq!(
            header_lines(BTreeMap::from([(
                "X-Frame-Options".to_owned(),
                "deny".to_owned()
            )]))
            .unwrap(),
            "X-Frame-Options: deny\r\n"
        );
        assert!(
            header_lines(BTreeMap::from([(
                "X-Frame-Options".to_owned(),
                "allow".to_owned()
            )]))
            .is_err()
        );
        assert!(header_lines(BTreeMap::from([("Set-Cookie".to_owned(), "x".to_owned())])).is_err());
    }

    #[test]
    fn versions_and_client_auth() {
        let tls = |min: Option<&str>, max: Option<&str>| TlsFile {
            min_version: min.map(str::to_owned),
            max_version: max.map(str::to_owned),
            ..TlsFile::default()
        };
        assert_eq!(versions(&tls(None, None)).unwrap().len(), 2);
        assert_eq!(versions(&tls(Some("TLS13"), None)).unwrap(), [&TLS13]);
        assert_eq!(versions(&tls(Some("TLS10"), None)).unwrap().len(), 2);
        assert!(versions(&tls(Some("TLS13"), Some("TLS12"))).is_err());
        assert!(versions(&tls(Some("SSL3"), None)).is_err());
        let auth = |kind: Option<&str>, ca: Option<&str>| {
            client_auth(
                &TlsFile {
                    client_auth_type: kind.map(str::to_owned),
                    client_ca_file: ca.map(str::to_owned),
                    ..TlsFile::default()
                },
                Path::new("/"),
                &mut Vec::new(),
            )
        };
        assert!(auth(None, None).unwrap().is_none());
        assert!(auth(Some("RequireAnyClientCert"), None).is_err());
        assert!(auth(Some("RequireAndVerifyClientCert"), None).is_err());
        assert!(auth(None, Some("ca.pem")).is_err());
        assert!(auth(Some("Sometimes"), None).is_err());
    }

    #[test]
    fn cipher_suites_by_gos_names() {
        let tls = |names: &[&str]| TlsFile {
            cipher_suites: Some(names.iter().map(|n| n.to_string()).collect()),
            ..TlsFile::default()
        };
        let p = provider(&tls(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])).unwrap();
        let tls12 = p
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .count();
        assert_eq!(tls12, 1);
        assert!(provider(&tls(&["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"])).is_ok());
        assert!(provider(&tls(&["TLS_RSA_WITH_RC4_128_SHA"])).is_err());
    }
}

//! `--serve` as a security boundary (`--web-config`, `--redact-paths`): a
//! real Prometheus scrapes over TLS with basic auth; curl without
//! credentials or with wrong ones gets 401 on every path, plain HTTP gets
//! no metrics, and the refusals are counted in `/metrics`; a process with
//! a password in its argv and a secret in its environment has neither in
//! anything served; a bad web config stops the start before tracing
//! (exit status 8); a changed one is read again; client certificates are
//! required when asked for; an unguarded address other than loopback is
//! warned about.

mod common;

use std::{
    collections::BTreeMap,
    io::Read as _,
    process::{ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

use common::{http::*, tls::*, *};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";
const ARGV_SECRET: &str = "argv-hunter2-XYZZY";
const ENV_SECRET: &str = "env-token-PLUGH-42";

/// `basic_auth_users` with `users` (name, password) at bcrypt cost 10.
fn users_yaml(users: &[(&str, &str)]) -> String {
    let mut yaml = String::from("basic_auth_users:\n");
    for (name, password) in users {
        let hash = bcrypt::hash(password, 10).unwrap();
        yaml.push_str(&format!("  {name}: '{hash}'\n"));
    }
    yaml
}

/// TLS with the PKI's server certificate, named relative to the config
/// (as exporter-toolkit resolves them).
const TLS_YAML: &str =
    "tls_server_config:\n  cert_file: pki/server.pem\n  key_file: pki/server.key\n";

fn basic(user: &str, password: &str) -> [String; 2] {
    ["-u".into(), format!("{user}:{password}")]
}

fn args(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// The value of the exposition line that starts with `series `.
fn exposed(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` (with credentials) once `series` has reached `want`, or as it
/// is after 10 s (the exposition is published every second).
fn metrics_once(pki: &Pki, port: u16, series: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = curl(pki, port, "/metrics", &args(&basic(USER, PASSWORD))).unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        let text = answer.text();
        let reached = series
            .iter()
            .all(|(s, want)| exposed(&text, s).is_some_and(|got| got >= *want));
        if reached || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `tracer --pid SLEEPER --serve 127.0.0.1:PORT --web-config WEB`, once
/// it serves; the sleeper is killed when dropped.
fn serve_idle(scratch: &Scratch, port: u16, web: &str) -> (Proc, Lines<ChildStderr>, Proc) {
    let sleeper = Proc::spawn(Command::new("/bin/sleep").arg("120"), "sleep");
    let address = format!("127.0.0.1:{port}");
    let final_metrics = scratch.path("final.prom");
    let (tracer, mut stderr) = attach_tracer(
        sleeper.pid(),
        &[
            "--serve",
            &address,
            "--web-config",
            web,
            "-o",
            &final_metrics,
        ],
    );
    stderr.wait_for("Prometheus metrics at https://");
    (tracer, stderr, sleeper)
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_nothing_secret_is_served() {
    require_root();
    let scratch = Scratch::new("secure_prometheus");
    let pki = Pki::new(&scratch);
    let web = scratch.path("web.yml");
    std::fs::write(
        &web,
        format!(
            "{TLS_YAML}{}http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            users_yaml(&[(USER, PASSWORD)])
        ),
    )
    .unwrap();
    let private = scratch.subdir("private");
    let secret_file = format!("{private}/secret-token-file");
    std::fs::write(&secret_file, "x".repeat(100)).unwrap();

    // The service: a password in its argv, a secret in its environment.
    let command = python_command(
        python(STATIC_PYTHON),
        "secret_service.py",
        &[&secret_file, &format!("--password={ARGV_SECRET}")],
    );
    let mut service = Proc::spawn(
        Command::new(&command[0])
            .args(&command[1..])
            .env("SERVICE_API_TOKEN", ENV_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "secret_service.py",
    );
    let mut stdout = service.stdout_lines();
    let pid: u32 = stdout.wait_for("ready ")[6..].trim().parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains(ARGV_SECRET));

    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let final_metrics = scratch.path("final.prom");
    let (mut tracer, mut stderr) = attach_tracer(
        pid,
        &[
            "--serve",
            &address,
            "--web-config",
            &web,
            "--redact-paths",
            &private,
            "-o",
            &final_metrics,
        ],
    );
    let serving = stderr.wait_for("Prometheus metrics at");
    assert!(
        serving.contains(&format!("https://{address}/metrics"))
            && serving.contains("(TLS, basic auth)"),
        "{serving}"
    );

    // Every path needs credentials: none, a wrong password, an unknown
    // user and a bearer token are all answered 401 with a challenge.
    let mut no_credentials = 0;
    for path in [
        "/metrics",
        "/",
        "/debug/pprof/",
        "/debug/pprof/profile?seconds=1",
        "/nothing",
    ] {
        let answer = curl(&pki, port, path, &[]).unwrap();
        no_credentials += 1;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
        assert_eq!(
            answer.header("WWW-Authenticate"),
            Some("Basic realm=\"tracer\", charset=\"UTF-8\""),
            "{path}: {answer:?}"
        );
        assert!(!answer.text().contains("tracer_"), "{path}: {answer:?}");
    }
    let wrong: [Vec<String>; 3] = [
        basic(USER, "wrong password").to_vec(),
        basic("intruder", PASSWORD).to_vec(),
        vec!["-H".into(), "Authorization: Bearer abc".into()],
    ];
    for credentials in &wrong {
        let answer = curl(&pki, port, "/metrics", &args(credentials)).unwrap();
        assert_eq!(answer.status, 401, "{credentials:?}: {answer:?}");
        assert!(answer.header("WWW-Authenticate").is_some(), "{answer:?}");
        assert!(!answer.text().contains("tracer_"), "{answer:?}");
    }
    // Plain HTTP to the TLS port: told so, no metrics.
    let (status, body) = http_get(port, "/metrics").expect("an answer in plain HTTP");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HTTP request to an HTTPS server"), "{body}");
    assert!(!body.contains("tracer_"), "{body}");

    // The right credentials: metrics, with the configured header.
    let answer = curl(&pki, port, "/metrics", &args(&basic(USER, PASSWORD))).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("X-Frame-Options"), Some("deny"), "{answer:?}");
    assert!(answer.text().ends_with("# EOF\n"), "{answer:?}");

    say_go(&mut service);
    stdout.wait_for("burning");
    // A profile of the burning service, and every other page.
    let profile = curl(
        &pki,
        port,
        "/debug/pprof/profile?seconds=1",
        &args(&basic(USER, PASSWORD)),
    )
    .unwrap();
    assert_eq!(profile.status, 200, "{profile:?}");
    let mut pprof = Vec::new();
    flate2::read::GzDecoder::new(&profile.body[..])
        .read_to_end(&mut pprof)
        .unwrap();
    let pprof = String::from_utf8_lossy(&pprof).into_owned();
    assert!(
        pprof.contains("burn_cpu"),
        "the profile has the service's samples"
    );
    say_go(&mut service);
    stdout.wait_for("done");

    let prometheus_port = free_port();
    let job = format!(
        "    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      \
         username: {USER}\n      password: '{PASSWORD}'\n",
        pki.path("ca.pem")
    );
    let _prometheus = prometheus_with(&scratch, &address, prometheus_port, &job);
    let reads = format!("sum(tracer_read_syscalls_total{{pid=\"{pid}\",path=\"{private}\"}})");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && query(prometheus_port, &reads) != Some(40.0) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        query(prometheus_port, &reads),
        Some(40.0),
        "Prometheus scraped the 40 reads of the redacted file over TLS with basic auth; its log:\n{}",
        std::fs::read_to_string(scratch.path("prometheus.log")).unwrap_or_default()
    );
    assert_eq!(query(prometheus_port, "up{job=\"tracer\"}"), Some(1.0));

    // The refusals, counted (Prometheus's scrapes were all let in).
    let failures = [
        (
            "tracer_web_auth_failures_total{reason=\"no_credentials\"}",
            no_credentials as f64,
        ),
        (
            "tracer_web_auth_failures_total{reason=\"wrong_credentials\"}",
            wrong.len() as f64,
        ),
        ("tracer_web_tls_handshake_failures_total", 1.0),
    ];
    let metrics = metrics_once(&pki, port, &failures);
    assert_eq!(
        exposed(
            &metrics,
            "tracer_web_tls_certificate_not_after_timestamp_seconds"
        ),
        Some(not_after(&pki.path("server.pem")) as f64),
        "{metrics}"
    );
    for (series, want) in failures {
        assert_eq!(
            exposed(&metrics, series),
            Some(want),
            "{series} in\n{metrics}"
        );
    }

    // Nothing served holds the secrets, nor the redacted file's name.
    let mut served = vec![("/metrics", metrics.clone()), ("pprof", pprof)];
    for path in ["/", "/debug/pprof/"] {
        let answer = curl(&pki, port, path, &args(&basic(USER, PASSWORD))).unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        served.push((path, answer.text()));
    }
    for (what, text) in &served {
        for secret in [ARGV_SECRET, ENV_SECRET, "secret-token-file", "--password"] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
    assert!(
        metrics.contains(&format!("path=\"{private}\"")),
        "the redacted reads under their prefix:\n{metrics}"
    );

    say_go(&mut service);
    assert!(service.wait().success());
    let status = tracer.wait();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    let last = std::fs::read_to_string(&final_metrics).unwrap();
    for secret in [ARGV_SECRET, ENV_SECRET, "secret-token-file"] {
        assert!(
            !last.contains(secret),
            "{secret} in the final report:\n{last}"
        );
    }
}

/// A web config that cannot be honoured stops the start with exit status
/// 8 and the reason, before anything is traced: the command is never run.
#[test]
fn a_bad_web_config_exits_8_before_tracing() {
    require_root();
    let scratch = Scratch::new("secure_bad_config");
    let pki = Pki::new(&scratch);
    pki.dated("expired", &cert_date("-30 days"), &cert_date("-1 day"));
    pki.dated("expiring", &cert_date("-300 days"), &cert_date("+2 hours"));
    pki.dated("future", &cert_date("+1 day"), &cert_date("+30 days"));
    let weak = bcrypt::hash(PASSWORD, 5).unwrap();
    let tls = |cert: &str| {
        format!("tls_server_config:\n  cert_file: pki/{cert}.pem\n  key_file: pki/{cert}.key\n")
    };
    let cases: BTreeMap<&str, (String, &str)> = BTreeMap::from([
        (
            "malformed",
            (
                "basic_auth_users: {alice: 'x'\n".into(),
                "did not find expected",
            ),
        ),
        (
            "unknown key",
            (
                "tls_server_config:\n  cert_fil: x\n".into(),
                "unknown field `cert_fil`",
            ),
        ),
        (
            "missing certificate",
            (
                "tls_server_config:\n  cert_file: pki/nothing.pem\n  key_file: pki/server.key\n"
                    .into(),
                "pki/nothing.pem: No such file",
            ),
        ),
        (
            "key of another certificate",
            (
                "tls_server_config:\n  cert_file: pki/server.pem\n  key_file: pki/client.key\n"
                    .into(),
                "the certificate and key",
            ),
        ),
        (
            "weak hash",
            (
                format!("basic_auth_users:\n  alice: '{weak}'\n"),
                "bcrypt cost 5 is too weak",
            ),
        ),
        (
            "plain password",
            (
                "basic_auth_users:\n  alice: hunter2\n".into(),
                "not a bcrypt hash",
            ),
        ),
        ("expired", (tls("expired"), "expired on")),
        ("about to expire", (tls("expiring"), "renew it")),
        ("not yet valid", (tls("future"), "is not valid until")),
        (
            "unverified client certificates",
            (
                format!("{TLS_YAML}  client_auth_type: RequireAnyClientCert\n"),
                "without verifying",
            ),
        ),
    ]);
    for (case, (yaml, why)) in &cases {
        let web = scratch.path(&format!("{}.yml", case.replace(' ', "-")));
        std::fs::write(&web, yaml).unwrap();
        let marker = scratch.path("ran");
        let address = format!("127.0.0.1:{}", free_port());
        let output = tracer(&[
            "--verbose",
            "--serve",
            &address,
            "--web-config",
            &web,
            "--",
            "/usr/bin/touch",
            &marker,
        ]);
        assert_exit(&output, 8);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("--web-config {web}: ")),
            "{case}: {stderr}"
        );
        assert!(stderr.contains(why), "{case}: no `{why}` in {stderr}");
        assert!(
            !stderr.contains("programs attached"),
            "{case}: loaded: {stderr}"
        );
        assert!(
            !std::path::Path::new(&marker).exists(),
            "{case}: the command ran"
        );
        // The secret is never quoted back.
        assert!(!stderr.contains("hunter2"), "{case}: {stderr}");
    }
    // Without --serve, --web-config is a command-line error.
    let output = tracer(&["--web-config", "x.yml", "--", "/bin/true"]);
    assert_exit(&output, 2);
}

/// A changed web config applies to the next connection, no restart; one
/// that no longer checks out is said, counted, and the last good one kept.
#[test]
fn a_changed_web_config_is_read_again() {
    require_root();
    let scratch = Scratch::new("secure_reload");
    let pki = Pki::new(&scratch);
    let web = scratch.path("web.yml");
    // Replaced by a rename, as a config manager (or a Secret's volume) does.
    let replace = |yaml: String| {
        let new = scratch.path("web.yml.new");
        std::fs::write(&new, yaml).unwrap();
        std::fs::rename(&new, &web).unwrap();
    };
    replace(format!("{TLS_YAML}{}", users_yaml(&[(USER, "first")])));
    let port = free_port();
    let (mut tracer, mut stderr, _sleeper) = serve_idle(&scratch, port, &web);
    let status = |password: &str| {
        curl(&pki, port, "/metrics", &args(&basic(USER, password)))
            .unwrap()
            .status
    };
    assert_eq!(status("first"), 200);
    assert_eq!(status("second"), 401);
    replace(format!("{TLS_YAML}{}", users_yaml(&[(USER, "second")])));
    assert_eq!(status("second"), 200);
    assert_eq!(status("first"), 401);
    // Broken: the last good config still answers.
    replace(format!(
        "{TLS_YAML}basic_auth_users:\n  {USER}: not-a-hash\n"
    ));
    assert_eq!(status("second"), 200);
    assert_eq!(status("first"), 401);
    let reloads = [
        ("tracer_web_config_reloads_total{result=\"success\"}", 1.0),
        ("tracer_web_config_reloads_total{result=\"failure\"}", 1.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        let answer = curl(&pki, port, "/metrics", &args(&basic(USER, "second"))).unwrap();
        metrics = answer.text();
        if reloads
            .iter()
            .all(|(s, want)| exposed(&metrics, s) == Some(*want))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (series, want) in reloads {
        assert_eq!(
            exposed(&metrics, series),
            Some(want),
            "{series} in\n{metrics}"
        );
    }
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0));
    let said = stderr.rest();
    assert!(said.contains("changed, reloaded"), "{said}");
    assert!(
        said.contains("not a bcrypt hash") && said.contains("the last good web config is kept"),
        "{said}"
    );
}

/// `RequireAndVerifyClientCert`: a client with a certificate from the
/// client CA is served; one without gets no TLS connection (counted).
#[test]
fn client_certificates_are_required_when_asked_for() {
    require_root();
    let scratch = Scratch::new("secure_mtls");
    let pki = Pki::new(&scratch);
    let web = scratch.path("web.yml");
    std::fs::write(
        &web,
        format!(
            "{TLS_YAML}  client_ca_file: pki/ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n  \
             min_version: TLS13\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let (mut tracer, _stderr, _sleeper) = serve_idle(&scratch, port, &web);
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with_cert = ["--cert", cert.as_str(), "--key", key.as_str()];
    let answer = curl(&pki, port, "/metrics", &with_cert).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let refused = curl(&pki, port, "/metrics", &[]);
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    // TLS 1.2 is below min_version.
    let old = curl(
        &pki,
        port,
        "/metrics",
        &[&with_cert[..], &["--tlsv1.2", "--tls-max", "1.2"]].concat(),
    );
    assert!(old.is_err(), "served over TLS 1.2: {old:?}");
    let failures = [("tracer_web_tls_handshake_failures_total", 2.0)];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        metrics = curl(&pki, port, "/metrics", &with_cert).unwrap().text();
        if exposed(&metrics, failures[0].0) == Some(2.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(exposed(&metrics, failures[0].0), Some(2.0), "{metrics}");
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0));
}

/// `--serve` on every address without --web-config is warned about, with
/// what it exposes; on loopback it is not.
#[test]
fn serving_beyond_loopback_unguarded_is_warned_about() {
    require_root();
    let port = free_port();
    let output = tracer(&["--serve", &format!("0.0.0.0:{port}"), "--", "/bin/true"]);
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "--serve 0.0.0.0:{port} without --web-config: anyone who can reach it reads"
        )) && stderr.contains("/metrics")
            && stderr.contains("/debug/pprof/profile"),
        "{stderr}"
    );
    let output = tracer(&["--serve", &format!("127.0.0.1:{port}"), "--", "/bin/true"]);
    assert_exit(&output, 0);
    assert!(
        !text(&output.stderr).contains("anyone who can reach"),
        "{output:?}"
    );
}

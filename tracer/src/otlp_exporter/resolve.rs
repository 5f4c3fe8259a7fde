//! A collector's host name to addresses, without glibc's name service:
//! the static binary must not call `getaddrinfo` (it loads NSS modules
//! with dlopen; `cargo xtask dist` checks it is not linked). hickory's
//! resolver reads `/etc/hosts` and `/etc/resolv.conf` as the system's does,
//! `search` domains and `ndots` included (how `otel-collector.monitoring`
//! in a Kubernetes pod becomes `otel-collector.monitoring.svc.cluster.local`).

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {why}")]
pub struct ResolveError {
    host: String,
    why: String,
}

/// The addresses of `host`, with `port`.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let fail = |why: String| ResolveError {
        host: host.to_owned(),
        why,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // Called from the exporter's own thread, seldom (a connection).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let ips = runtime.block_on(async {
        let resolver = hickory_resolver::Resolver::builder_tokio()
            .map_err(|e| format!("reading /etc/resolv.conf: {e}"))?
            .build()
            .map_err(|e| e.to_string())?;
        resolver
            .lookup_ip(host)
            .await
            .map(|found| found.iter().collect::<Vec<IpAddr>>())
            .map_err(|e| e.to_string())
    });
    let ips = ips.map_err(fail)?;
    if ips.is_empty() {
        return Err(fail("no address".into()));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_hosts_entries_need_no_query() {
        assert_eq!(
            resolve("127.0.0.1", 4318).unwrap(),
            ["127.0.0.1:4318".parse().unwrap()]
        );
        assert_eq!(resolve("::1", 1).unwrap(), ["[::1]:1".parse().unwrap()]);
        assert!(resolve("localhost", 4318).unwrap()[0].ip().is_loopback());
    }
}

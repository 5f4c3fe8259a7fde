//! A collector's host name to addresses, without glibc's name service:
//! the static binary must not call `getaddrinfo` (it loads NSS modules
//! with dlopen; `cargo xtask dist` checks it is not linked). As the
//! resolver does it: an address as is, `/etc/hosts`, then a DNS query
//! (A, then AAAA) over UDP to each `nameserver` of `/etc/resolv.conf`,
//! with its `search` domains and `ndots` (how `otel-collector.monitoring`
//! in a Kubernetes pod becomes `otel-collector.monitoring.svc.cluster.local`).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    time::Duration,
};

/// How long a name server is given to answer one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const A: u16 = 1;
const AAAA: u16 = 28;

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
    let with_port = |ips: Vec<IpAddr>| {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    };
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let found = in_hosts(&hosts, host);
    if !found.is_empty() {
        return Ok(with_port(found));
    }
    if host == "localhost" {
        return Ok(with_port(vec![Ipv4Addr::LOCALHOST.into()]));
    }
    let conf = Conf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    let mut last = "no nameserver in /etc/resolv.conf".to_owned();
    for name in conf.candidates(host) {
        for server in &conf.servers {
            for kind in [A, AAAA] {
                match query(*server, &name, kind) {
                    Ok(ips) if !ips.is_empty() => return Ok(with_port(ips)),
                    Ok(_) => last = format!("{name}: no address"),
                    Err(err) => last = format!("{name}: name server {server}: {err}"),
                }
            }
        }
    }
    Err(fail(last))
}

/// The addresses `/etc/hosts` gives `host`.
fn in_hosts(text: &str, host: &str) -> Vec<IpAddr> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields
                .any(|name| name.eq_ignore_ascii_case(host))
                .then_some(ip)
        })
        .collect()
}

/// What `/etc/resolv.conf` says.
#[derive(Debug, PartialEq)]
struct Conf {
    servers: Vec<IpAddr>,
    search: Vec<String>,
    ndots: usize,
}

impl Conf {
    fn parse(text: &str) -> Self {
        let mut conf = Conf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => {
                    // A link-local IPv6 server's `%scope` is not kept.
                    let server = fields
                        .next()
                        .and_then(|s| s.split('%').next()?.parse::<IpAddr>().ok());
                    conf.servers.extend(server);
                }
                // The last `search` or `domain` line wins.
                Some("search") | Some("domain") => {
                    conf.search = fields.map(|d| d.trim_end_matches('.').to_owned()).collect()
                }
                Some("options") => {
                    for option in fields {
                        if let Some(n) = option.strip_prefix("ndots:").and_then(|n| n.parse().ok())
                        {
                            conf.ndots = n;
                        }
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The names to ask for, in order: with fewer dots than `ndots`, the
    /// search domains first; a name ending in a dot as is only.
    fn candidates(&self, host: &str) -> Vec<String> {
        if let Some(absolute) = host.strip_suffix('.') {
            return vec![absolute.to_owned()];
        }
        let searched = self.search.iter().map(|domain| format!("{host}.{domain}"));
        if host.matches('.').count() >= self.ndots {
            std::iter::once(host.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(host.to_owned())).collect()
        }
    }
}

/// One query of `kind` for `name` to `server`: its addresses (none: the
/// name has none of that kind, or does not exist).
fn query(server: IpAddr, name: &str, kind: u16) -> Result<Vec<IpAddr>, String> {
    let mut id = [0u8; 2];
    super::random(&mut id);
    let id = u16::from_be_bytes(id);
    let question = question(id, name, kind).ok_or("not a host name")?;
    let local: SocketAddr = match server {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket
        .connect((server, 53))
        .and_then(|()| socket.set_read_timeout(Some(QUERY_TIMEOUT)))
        .and_then(|()| socket.send(&question).map(drop))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    loop {
        let n = socket.recv(&mut buf).map_err(|e| e.to_string())?;
        // Another query's late answer on this port: not ours.
        if let Some(answer) = answer(&buf[..n], id, kind) {
            return answer;
        }
    }
}

/// A query message: header (recursion desired), one question.
fn question(id: u16, name: &str, kind: u16) -> Option<Vec<u8>> {
    let mut message = Vec::with_capacity(name.len() + 18);
    message.extend(id.to_be_bytes());
    message.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        message.push(label.len() as u8);
        message.extend(label.as_bytes());
    }
    message.push(0);
    message.extend(kind.to_be_bytes());
    message.extend(1u16.to_be_bytes()); // class IN
    Some(message)
}

/// The addresses of kind `kind` in a response to query `id` (`None`: not
/// a response to it; `Err`: the server's error).
fn answer(message: &[u8], id: u16, kind: u16) -> Option<Result<Vec<IpAddr>, String>> {
    let u16_at = |at: usize| {
        Some(u16::from_be_bytes([
            *message.get(at)?,
            *message.get(at + 1)?,
        ]))
    };
    if message.len() < 12 || u16_at(0)? != id || message[2] & 0x80 == 0 {
        return None;
    }
    match message[3] & 0x0f {
        0 => {}
        // NXDOMAIN: the name does not exist (the next search domain may).
        3 => return Some(Ok(Vec::new())),
        rcode => return Some(Err(format!("error code {rcode}"))),
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at)?;
        let (rtype, length) = (u16_at(at)?, usize::from(u16_at(at + 8)?));
        let data = message.get(at + 10..at + 10 + length)?;
        at += 10 + length;
        match (rtype, data.len()) {
            (A, 4) if kind == A => ips.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (AAAA, 16) if kind == AAAA => ips.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            // CNAMEs come with their target's records in the same answer.
            _ => {}
        }
    }
    Some(Ok(ips))
}

/// The offset after the name at `at` (labels, or a compression pointer).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv_conf() {
        let hosts =
            "127.0.0.1 localhost\n10.0.0.5  collector otel # the collector\n::1 ip6-localhost\n";
        assert_eq!(in_hosts(hosts, "otel"), [IpAddr::from([10, 0, 0, 5])]);
        assert_eq!(in_hosts(hosts, "the"), Vec::<IpAddr>::new());
        let conf = Conf::parse(
            "search monitoring.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.96.0.10\nnameserver fe80::1%eth0\noptions ndots:5\n",
        );
        assert_eq!(
            conf.servers,
            [
                IpAddr::from([10, 96, 0, 10]),
                "fe80::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(conf.ndots, 5);
        // Fewer dots than ndots: the search domains first, as in a pod.
        assert_eq!(
            conf.candidates("otel-collector.monitoring")[1],
            "otel-collector.monitoring.svc.cluster.local"
        );
        assert_eq!(
            conf.candidates("otel-collector.monitoring").last().unwrap(),
            "otel-collector.monitoring"
        );
        assert_eq!(
            conf.candidates("collector.example.com."),
            ["collector.example.com"]
        );
        let plain = Conf::parse("nameserver 1.1.1.1\nsearch example.com\n");
        assert_eq!(
            plain.candidates("collector.example.org"),
            ["collector.example.org", "collector.example.org.example.com"]
        );
    }

    #[test]
    fn a_query_and_its_answer() {
        let q = question(0x1234, "otel.example", A).unwrap();
        assert_eq!(
            q,
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b'o', b't', b'e', b'l', 7, b'e', b'x',
                b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1
            ]
        );
        assert!(question(1, "a..b", A).is_none());
        // The answer: the question echoed, a CNAME, then an A record, both
        // named by a compression pointer to the question's name.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2;
        r.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
        r.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        assert_eq!(
            answer(&r, 0x1234, A),
            Some(Ok(vec![IpAddr::from([10, 1, 2, 3])]))
        );
        assert_eq!(answer(&r, 0x9999, A), None);
        r[3] = 0x83;
        assert_eq!(answer(&r, 0x1234, A), Some(Ok(vec![])));
        r[3] = 0x82;
        assert_eq!(answer(&r, 0x1234, A), Some(Err("error code 2".into())));
    }

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

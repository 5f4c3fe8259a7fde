//! `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}`: the sockets of a process's
//! network namespace (read through the process, so a container's are its
//! own), by socket inode: what `socket:[INODE]` in `/proc/PID/fd` is.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

/// An internet socket's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// One line of `tcp`, `tcp6`, `udp` or `udp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetSocket {
    pub inode: u64,
    pub transport: Transport,
    pub local: SocketAddr,
    /// `None` when not connected (`0.0.0.0:0`, `[::]:0`).
    pub peer: Option<SocketAddr>,
    /// TCP `LISTEN` state.
    pub listening: bool,
}

/// One line of `unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    pub inode: u64,
    /// The bound path (`@name` for the abstract namespace); an accepted
    /// connection shows its listener's. `None`: unnamed (a client, a
    /// socketpair).
    pub path: Option<String>,
}

/// The sockets of one network namespace.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetSockets {
    pub inet: Vec<InetSocket>,
    pub unix: Vec<UnixSocket>,
}

/// TCP's `LISTEN` in the `st` column (`include/net/tcp_states.h`).
const TCP_LISTEN: u8 = 0x0a;

/// Every socket of `pid`'s network namespace; `None` when the process is
/// gone (a table the kernel lacks, e.g. no IPv6, is just empty).
pub fn sockets(pid: u32) -> Option<NetSockets> {
    let read = |name: &str| fs::read_to_string(format!("/proc/{pid}/net/{name}")).ok();
    let mut found = NetSockets::default();
    let mut any = false;
    for (name, transport) in [
        ("tcp", Transport::Tcp),
        ("tcp6", Transport::Tcp),
        ("udp", Transport::Udp),
        ("udp6", Transport::Udp),
    ] {
        if let Some(text) = read(name) {
            any = true;
            found.inet.extend(parse_inet(&text, transport));
        }
    }
    if let Some(text) = read("unix") {
        any = true;
        found.unix = parse_unix(&text);
    }
    any.then_some(found)
}

/// The network namespace `pid` is in (the inode of `/proc/PID/ns/net`).
pub fn namespace(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Parses a `tcp`/`tcp6`/`udp`/`udp6` table: `sl local rem st ... uid
/// timeout inode ...`. Sockets without an inode (TIME_WAIT, closing) are
/// left out: no descriptor names them any more.
pub fn parse_inet(text: &str, transport: Transport) -> Vec<InetSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = parse_address(fields.get(1)?)?;
            let peer = parse_address(fields.get(2)?)?;
            let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            (inode != 0).then_some(InetSocket {
                inode,
                transport,
                local,
                peer: (!peer.ip().is_unspecified() || peer.port() != 0).then_some(peer),
                listening: transport == Transport::Tcp && state == TCP_LISTEN,
            })
        })
        .collect()
}

/// `0100007F:1F40` (IPv4) or 32 hex digits (IPv6) and a port. The kernel
/// prints each 32-bit word of the address as a native-endian number.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses the `unix` table: `Num RefCount Protocol Flags Type St Inode
/// [Path]`; the path is the rest of the line (it may hold spaces).
pub fn parse_unix(text: &str) -> Vec<UnixSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut rest = line.trim_start();
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                let end = rest.find(' ').unwrap_or(rest.len());
                fields.push(&rest[..end]);
                rest = rest[end..].trim_start_matches(' ');
            }
            let inode: u64 = fields[6].parse().ok()?;
            let path = (!rest.is_empty()).then(|| rest.to_owned());
            (inode != 0).then_some(UnixSocket { inode, path })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F40 0100007F:C852 01 00000000:00000000 00:00000000 00000000     0        0 41240 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C852 0100007F:1F40 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn parses_tcp_listeners_connections_and_skips_time_wait() {
        let found = parse_inet(TCP, Transport::Tcp);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].local.to_string(), "127.0.0.1:8000");
        assert_eq!(found[0].peer, None);
        assert!(found[0].listening);
        assert_eq!(found[1].inode, 41240);
        assert_eq!(found[1].peer.unwrap().to_string(), "127.0.0.1:51282");
        assert!(!found[1].listening);
    }

    #[test]
    fn parses_ipv6_and_mapped_ipv4() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 5150 1 0000000000000000 20 4 0 10 -1
   1: 0000000000000000FFFF00000100007F:270F 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 5151 2 0000000000000000 0
";
        let found = parse_inet(text, Transport::Udp);
        assert_eq!(found[0].local.to_string(), "[::1]:8080");
        assert_eq!(found[0].peer.unwrap().to_string(), "[::1]:54321");
        assert!(!found[0].listening, "UDP never listens");
        assert_eq!(found[1].local.to_string(), "[::ffff:127.0.0.1]:9999");
        assert_eq!(found[1].transport, Transport::Udp);
    }

    #[test]
    fn an_unconnected_udp_socket_has_no_peer() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:270F 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0
";
        let found = parse_inet(text, Transport::Udp);
        assert_eq!(found[0].local.to_string(), "127.0.0.1:9999");
        assert_eq!(found[0].peer, None);
    }

    #[test]
    fn parses_unix_paths_abstract_names_and_unnamed_sockets() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 30001 /run/x.sock
0000000000000000: 00000003 00000000 00000000 0001 03 30002 /run/x.sock
0000000000000000: 00000003 00000000 00000000 0001 03 30003
0000000000000000: 00000002 00000000 00000000 0002 01 30004 @abstract name
0000000000000000: 00000002 00000000 00000000 0002 01 0
";
        let found = parse_unix(text);
        let pairs: Vec<(u64, Option<&str>)> =
            found.iter().map(|s| (s.inode, s.path.as_deref())).collect();
        assert_eq!(
            pairs,
            [
                (30001, Some("/run/x.sock")),
                (30002, Some("/run/x.sock")),
                (30003, None),
                (30004, Some("@abstract name")),
            ]
        );
    }

    #[test]
    fn garbage_lines_are_skipped_not_fatal() {
        assert!(
            parse_inet(
                "header\nnot a table line\n   0: zz:1 00:0 01",
                Transport::Tcp
            )
            .is_empty()
        );
        assert!(parse_unix("header\n0000: 1 2\n\n").is_empty());
        assert_eq!(parse_address("0100007F:1F40").unwrap().port(), 8000);
        assert_eq!(parse_address("0100007F"), None);
        assert_eq!(parse_address("01007F:1F40"), None);
    }

    #[test]
    fn our_own_namespace_lists_a_socket_we_hold() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let found = sockets(me).unwrap();
        assert!(
            found
                .inet
                .iter()
                .any(|s| s.listening && s.local.port() == port),
            "{found:?}"
        );
        assert!(namespace(me).is_some());
        assert_eq!(sockets(u32::MAX - 1), None);
    }
}

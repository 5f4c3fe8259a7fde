//! What a socket descriptor is: its protocol and addresses, looked up by
//! the socket's inode (`socket:[INODE]`) in the tables of the process's
//! network namespace (`procfs::net`), while the socket is open.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use tracer_common::SocketEnds;

use crate::procfs::net::{self, NetSockets, Transport};

/// A socket, named.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Socket {
    /// "TCP", "UDP" or "unix".
    pub protocol: &'static str,
    /// `127.0.0.1:8000`, `[::1]:8000`, a unix path; `None`: an unnamed
    /// unix socket.
    pub local: Option<String>,
    /// The connected peer; `None`: not connected (a UDP server), or unix
    /// (its table does not say).
    pub peer: Option<String>,
    /// One of several connections whose ephemeral port was replaced by `*`.
    pub folded: bool,
    /// Which port is the ephemeral one, for folding.
    ephemeral: Ephemeral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ephemeral {
    /// An accepted connection (its local port is a listening one): the peer's.
    Peer,
    /// A client's connection: its own.
    Local,
    /// Nothing to fold (unconnected, unix).
    None,
}

impl Socket {
    /// `TCP 127.0.0.1:8000 <- 127.0.0.1:51234`, `UDP 127.0.0.1:9999`,
    /// `unix /run/x.sock`, `unix (unnamed)`: data comes from the peer.
    pub fn name(&self) -> String {
        let local = self.local.as_deref().unwrap_or("(unnamed)");
        match &self.peer {
            Some(peer) => format!("{} {local} <- {peer}", self.protocol),
            None => format!("{} {local}", self.protocol),
        }
    }

    /// The same socket with its ephemeral port as `*`: what its connections
    /// from (or to) one host have in common. `None` when there is none.
    pub fn folded(&self) -> Option<Socket> {
        let (local, peer) = match self.ephemeral {
            Ephemeral::Peer => (self.local.clone(), self.peer.as_deref().map(any_port)),
            Ephemeral::Local => (self.local.as_deref().map(any_port), self.peer.clone()),
            Ephemeral::None => return None,
        };
        Some(Socket {
            local,
            peer,
            folded: true,
            ephemeral: Ephemeral::None,
            ..self.clone()
        })
    }

    /// An accepted connection as one of any peer's: `TCP 127.0.0.1:8000 <- *`.
    pub fn folded_any_peer(&self) -> Option<Socket> {
        (self.ephemeral == Ephemeral::Peer).then(|| Socket {
            peer: Some("*".into()),
            folded: true,
            ephemeral: Ephemeral::None,
            ..self.clone()
        })
    }
}

/// For tests (see `FileTable::insert`).
impl Socket {
    /// A TCP connection accepted on `local` from `peer`.
    pub fn accepted(local: &str, peer: &str) -> Self {
        Socket {
            protocol: "TCP",
            local: Some(local.into()),
            peer: Some(peer.into()),
            folded: false,
            ephemeral: Ephemeral::Peer,
        }
    }
}

/// A TCP or UDP socket's ends as the kernel read them at its first read
/// or write: its name when the socket is closed before `/proc/PID/net`
/// lists it (a short client connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSocket {
    pub transport: Transport,
    pub local: SocketAddr,
    /// `None`: not connected.
    pub peer: Option<SocketAddr>,
}

impl KernelSocket {
    const AF_INET: u16 = 2;
    const AF_INET6: u16 = 10;
    const IPPROTO_TCP: u16 = 6;
    const IPPROTO_UDP: u16 = 17;

    /// `None` for anything but a TCP or UDP socket over IPv4 or IPv6.
    pub fn from_ends(ends: &SocketEnds) -> Option<Self> {
        let transport = match ends.protocol {
            Self::IPPROTO_TCP => Transport::Tcp,
            Self::IPPROTO_UDP => Transport::Udp,
            _ => return None,
        };
        let address = |bytes: &[u8; 16]| -> Option<IpAddr> {
            match ends.family {
                Self::AF_INET => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()),
                Self::AF_INET6 => Some(Ipv6Addr::from(*bytes).into()),
                _ => None,
            }
        };
        let local = SocketAddr::new(address(&ends.local)?, ends.local_port);
        let peer_port = u16::from_be(ends.peer_port);
        let peer = match peer_port {
            0 => None,
            port => Some(SocketAddr::new(address(&ends.peer)?, port)),
        };
        Some(KernelSocket {
            transport,
            local,
            peer,
        })
    }

    /// Named as `/proc/PID/net` would have it. Which port is the ephemeral
    /// one (for folding) is not known from the socket alone: the higher
    /// (an ephemeral port is above the services' usually).
    pub fn socket(&self) -> Socket {
        let ephemeral = match self.peer {
            None => Ephemeral::None,
            Some(peer) if peer.port() > self.local.port() => Ephemeral::Peer,
            Some(peer) if peer.port() < self.local.port() => Ephemeral::Local,
            Some(_) => Ephemeral::None,
        };
        Socket {
            protocol: match self.transport {
                Transport::Tcp => "TCP",
                Transport::Udp => "UDP",
            },
            local: Some(self.local.to_string()),
            peer: self.peer.map(|p| p.to_string()),
            folded: false,
            ephemeral,
        }
    }
}

/// `127.0.0.1:51234` -> `127.0.0.1:*`, `[::1]:51234` -> `[::1]:*`.
fn any_port(address: &str) -> String {
    match address.rsplit_once(':') {
        Some((host, _)) => format!("{host}:*"),
        None => address.to_owned(),
    }
}

/// The name of a row of a process's many sockets that could not be named.
pub const UNNAMED_SOCKETS: &str = "socket:[*]";

/// Why a socket has no name but `socket:[INODE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamed {
    /// The process exited before its sockets were looked up.
    Gone,
    /// Not in the namespace's tables: closed before it was looked up, or
    /// not a TCP, UDP or unix socket (netlink, packet...).
    NotListed,
}

impl Unnamed {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Gone => "the process was gone before its sockets could be looked up",
            Self::NotListed => {
                "not in /proc/PID/net: closed before it could be looked up, or not a TCP, \
                 UDP or unix socket"
            }
        }
    }
}

/// The tables of each network namespace seen, as last read: a new socket
/// is looked for there first, and the sockets not there are named in a
/// batch (one read of their namespace's tables per batch, not per socket).
#[derive(Default)]
pub struct SocketNames {
    by_namespace: HashMap<u64, HashMap<u64, Socket>>,
}

impl SocketNames {
    /// Socket `inode` of process `pid` in its namespace's tables as last
    /// read (no table is read).
    pub fn cached(&self, pid: u32, inode: u64) -> Option<Socket> {
        let namespace = net::namespace(pid)?;
        self.by_namespace.get(&namespace)?.get(&inode).cloned()
    }

    /// Names each (pid, inode), reading each namespace's tables once.
    pub fn name_all(&mut self, wanted: &[(u32, u64)]) -> Vec<Result<Socket, Unnamed>> {
        let mut read: HashSet<u64> = HashSet::new();
        wanted
            .iter()
            .map(|&(pid, inode)| {
                let namespace = net::namespace(pid).ok_or(Unnamed::Gone)?;
                if read.insert(namespace) {
                    let found = net::sockets(pid).ok_or(Unnamed::Gone)?;
                    self.by_namespace.insert(namespace, index(&found));
                }
                let table = self.by_namespace.get(&namespace);
                table
                    .and_then(|t| t.get(&inode).cloned())
                    .ok_or(Unnamed::NotListed)
            })
            .collect()
    }
}

/// The inode of `socket:[INODE]`, the name `/proc/PID/fd` gives a socket.
pub fn inode_of(path: &str) -> Option<u64> {
    path.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every socket of a namespace by inode, named.
fn index(found: &NetSockets) -> HashMap<u64, Socket> {
    // A connected socket whose local port something listens on (TCP
    // LISTEN, an unconnected UDP socket) was accepted there: the peer's
    // port is the ephemeral one.
    let serving: HashSet<(Transport, u16)> = found
        .inet
        .iter()
        .filter(|s| s.listening || (s.transport == Transport::Udp && s.peer.is_none()))
        .map(|s| (s.transport, s.local.port()))
        .collect();
    let mut sockets = HashMap::new();
    for s in &found.inet {
        let ephemeral = match s.peer {
            None => Ephemeral::None,
            Some(_) if serving.contains(&(s.transport, s.local.port())) => Ephemeral::Peer,
            Some(_) => Ephemeral::Local,
        };
        let protocol = match s.transport {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        };
        let socket = Socket {
            protocol,
            local: Some(s.local.to_string()),
            peer: s.peer.map(|p| p.to_string()),
            folded: false,
            ephemeral,
        };
        sockets.insert(s.inode, socket);
    }
    for s in &found.unix {
        let socket = Socket {
            protocol: "unix",
            local: s.path.clone(),
            peer: None,
            folded: false,
            ephemeral: Ephemeral::None,
        };
        sockets.insert(s.inode, socket);
    }
    sockets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::net::{InetSocket, UnixSocket};

    /// A connection closed before `/proc/PID/net` was read: named from
    /// the ends the kernel read, as the table would have named it.
    #[test]
    fn a_closed_connection_is_named_from_the_kernels_ends() {
        let mut ends = SocketEnds {
            family: 2,
            protocol: 6,
            sock_type: 1,
            local_port: 45648,
            peer_port: 34331u16.to_be(),
            ..Default::default()
        };
        ends.local[..4].copy_from_slice(&[127, 0, 0, 1]);
        ends.peer[..4].copy_from_slice(&[10, 0, 0, 2]);
        let socket = KernelSocket::from_ends(&ends).unwrap().socket();
        assert_eq!(socket.name(), "TCP 127.0.0.1:45648 <- 10.0.0.2:34331");
        // A client's: its own port is the ephemeral one.
        assert_eq!(
            socket.folded().unwrap().name(),
            "TCP 127.0.0.1:* <- 10.0.0.2:34331"
        );
        let v6 = SocketEnds {
            family: 10,
            protocol: 17,
            local: std::net::Ipv6Addr::LOCALHOST.octets(),
            peer_port: 0,
            ..ends
        };
        let socket = KernelSocket::from_ends(&v6).unwrap().socket();
        assert_eq!(socket.name(), "UDP [::1]:45648");
        // Not an inet socket (unix), or not TCP / UDP: no name from it.
        assert_eq!(
            KernelSocket::from_ends(&SocketEnds { family: 1, ..ends }),
            None
        );
        assert_eq!(
            KernelSocket::from_ends(&SocketEnds {
                protocol: 1,
                ..ends
            }),
            None
        );
    }

    fn inet(inode: u64, transport: Transport, local: &str, peer: Option<&str>) -> InetSocket {
        InetSocket {
            inode,
            transport,
            local: local.parse().unwrap(),
            peer: peer.map(|p| p.parse().unwrap()),
            listening: transport == Transport::Tcp && peer.is_none(),
        }
    }

    fn named() -> HashMap<u64, Socket> {
        index(&NetSockets {
            inet: vec![
                inet(1, Transport::Tcp, "127.0.0.1:8000", None),
                inet(2, Transport::Tcp, "127.0.0.1:8000", Some("127.0.0.1:51234")),
                inet(3, Transport::Tcp, "127.0.0.1:51234", Some("127.0.0.1:8000")),
                inet(4, Transport::Udp, "127.0.0.1:9999", None),
                inet(5, Transport::Udp, "127.0.0.1:40000", Some("127.0.0.1:9999")),
                inet(6, Transport::Tcp, "[::1]:8443", Some("[::1]:40404")),
                inet(9, Transport::Tcp, "[::]:8443", None),
            ],
            unix: vec![
                UnixSocket {
                    inode: 7,
                    path: Some("/run/x.sock".into()),
                },
                UnixSocket {
                    inode: 8,
                    path: None,
                },
            ],
        })
    }

    #[test]
    fn names_sockets_by_protocol_and_addresses() {
        let names = named();
        let name = |inode: u64| names[&inode].name();
        assert_eq!(name(1), "TCP 127.0.0.1:8000");
        assert_eq!(name(2), "TCP 127.0.0.1:8000 <- 127.0.0.1:51234");
        assert_eq!(name(4), "UDP 127.0.0.1:9999");
        assert_eq!(name(5), "UDP 127.0.0.1:40000 <- 127.0.0.1:9999");
        assert_eq!(name(6), "TCP [::1]:8443 <- [::1]:40404");
        assert_eq!(name(7), "unix /run/x.sock");
        assert_eq!(name(8), "unix (unnamed)");
        assert_eq!(inode_of("socket:[41240]"), Some(41240));
        assert_eq!(inode_of("pipe:[41240]"), None);
    }

    #[test]
    fn folding_replaces_the_ephemeral_port() {
        let names = named();
        let folded = |inode: u64| names[&inode].folded().map(|s| s.name());
        // Accepted by the listener on 8000: the client's port goes.
        assert_eq!(
            folded(2).as_deref(),
            Some("TCP 127.0.0.1:8000 <- 127.0.0.1:*")
        );
        // The client's side: its own port goes.
        assert_eq!(
            folded(3).as_deref(),
            Some("TCP 127.0.0.1:* <- 127.0.0.1:8000")
        );
        assert_eq!(folded(6).as_deref(), Some("TCP [::1]:8443 <- [::1]:*"));
        // A connected UDP client of a UDP server on this host.
        assert_eq!(
            folded(5).as_deref(),
            Some("UDP 127.0.0.1:* <- 127.0.0.1:9999")
        );
        assert_eq!(folded(1), None);
        assert_eq!(folded(4), None);
        assert_eq!(folded(7), None);
        assert!(names[&2].folded().unwrap().folded);
    }

    #[test]
    fn a_gone_process_is_said_so() {
        let mut names = SocketNames::default();
        assert_eq!(names.name_all(&[(u32::MAX - 1, 1)]), [Err(Unnamed::Gone)]);
        assert!(Unnamed::Gone.reason().contains("gone"));
    }

    #[test]
    fn names_our_own_connections_in_one_batch() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let inode = |fd: i32| inode_of(&crate::procfs::fd_target(me, fd).unwrap()).unwrap();
        let (server_inode, client_inode) = (inode(server.as_raw_fd()), inode(client.as_raw_fd()));
        let mut names = SocketNames::default();
        assert_eq!(names.cached(me, server_inode), None, "nothing read yet");
        let got = names.name_all(&[(me, server_inode), (me, client_inode), (me, 1)]);
        let port = |a: std::net::SocketAddr| a.port();
        assert_eq!(
            got[0].as_ref().unwrap().name(),
            format!(
                "TCP 127.0.0.1:{} <- 127.0.0.1:{}",
                port(listener.local_addr().unwrap()),
                port(client.local_addr().unwrap())
            )
        );
        let client = got[1].as_ref().unwrap();
        assert_eq!(client.folded().unwrap().local.unwrap(), "127.0.0.1:*");
        assert_eq!(got[2], Err(Unnamed::NotListed));
        // Known now, without reading the tables again.
        assert_eq!(
            names.cached(me, server_inode).as_ref(),
            got[0].as_ref().ok()
        );
    }
}

//! Who is at the other end of a client connection.

use std::fmt;
use std::net::SocketAddr;

/// A client's address: TCP, or the listener's Unix socket (always this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    /// A Unix socket client; shown as `localhost`, as MariaDB does.
    Local,
}

impl Peer {
    /// The host part of `'user'@'host'` in messages: the IP, or `localhost`.
    pub fn host(&self) -> String {
        match self {
            Peer::Tcp(a) => a.ip().to_string(),
            Peer::Local => "localhost".into(),
        }
    }

    /// Whether what it sends never leaves this machine (loopback TCP or a Unix socket).
    pub fn is_this_machine(&self) -> bool {
        match self {
            Peer::Tcp(a) => a.ip().is_loopback(),
            Peer::Local => true,
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Self {
        Peer::Tcp(a)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Local => f.write_str("localhost"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_socket_clients_are_localhost_on_this_machine() {
        assert_eq!(Peer::Local.host(), "localhost");
        assert_eq!(Peer::Local.to_string(), "localhost");
        assert!(Peer::Local.is_this_machine());
        let remote = Peer::from("10.0.0.7:51000".parse::<SocketAddr>().unwrap());
        assert_eq!(remote.host(), "10.0.0.7");
        assert!(!remote.is_this_machine());
        assert!(Peer::from("127.0.0.1:1".parse::<SocketAddr>().unwrap()).is_this_machine());
    }
}

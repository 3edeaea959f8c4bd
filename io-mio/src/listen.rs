//! Where a server listens, in Godot's terms: a port and a bind address, `*` meaning every
//! interface, IPv4 and IPv6.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;
use std::io;

use mio::net::TcpListener;

use crate::error::BindError;

/// An address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddr {
    /// Every interface on this port, IPv4 and IPv6 (Godot's bind address `"*"`).
    All(u16),
    /// One address.
    One(SocketAddr),
}

impl ListenAddr {
    /// Godot's `create_server(port, bind_address)`: `"*"` is every interface, anything else
    /// must be an IP address (`"127.0.0.1"`, `"::1"`).
    ///
    /// # Errors
    /// [`BindError::InvalidAddress`].
    pub fn godot(port: u16, bind_address: &str) -> Result<Self, BindError> {
        if bind_address == "*" {
            return Ok(Self::All(port));
        }
        let ip = bind_address.trim_start_matches('[').trim_end_matches(']');
        ip.parse()
            .map(|ip| Self::One(SocketAddr::new(ip, port)))
            .map_err(|_| BindError::InvalidAddress(bind_address.into()))
    }
}

impl FromStr for ListenAddr {
    type Err = BindError;

    /// `HOST:PORT` where HOST is `*`, an IPv4 address or a bracketed IPv6 address.
    fn from_str(s: &str) -> Result<Self, BindError> {
        let invalid = || BindError::InvalidAddress(s.into());
        let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse().map_err(|_| invalid())?;
        if host.contains(':') && !host.starts_with('[') {
            return Err(invalid());
        }
        Self::godot(port, host).map_err(|_| invalid())
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All(port) => write!(f, "*:{port}"),
            Self::One(addr) => addr.fmt(f),
        }
    }
}

/// Opens the listening sockets for `addrs`, in order.
///
/// `*` binds `[::]` (dual-stack where the system allows, as Linux does by default) and then
/// `0.0.0.0` on the same port; the second bind failing with "in use" means the first already
/// covers IPv4. Without IPv6, `0.0.0.0` alone is used.
///
/// # Errors
/// [`BindError::Listen`] for the first address that cannot be bound.
pub fn bind_all(addrs: &[ListenAddr]) -> Result<Vec<TcpListener>, BindError> {
    if addrs.is_empty() {
        return Err(BindError::NoAddress);
    }
    let mut listeners = Vec::new();
    for addr in addrs {
        match *addr {
            ListenAddr::One(addr) => listeners.push(bind(addr)?),
            ListenAddr::All(port) => {
                let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
                match TcpListener::bind(v6) {
                    Ok(listener) => {
                        let port = listener.local_addr().map_or(port, |a| a.port());
                        listeners.push(listener);
                        match TcpListener::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)) {
                            Ok(v4) => listeners.push(v4),
                            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
                            Err(error) => return Err(BindError::Listen { addr: v6, error }),
                        }
                    }
                    Err(e) if no_ipv6(&e) => {
                        listeners.push(bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))?);
                    }
                    Err(error) => return Err(BindError::Listen { addr: v6, error }),
                }
            }
        }
    }
    Ok(listeners)
}

fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).map_err(|error| BindError::Listen { addr, error })
}

/// Whether a bind error means the system has no IPv6.
fn no_ipv6(e: &io::Error) -> bool {
    // EAFNOSUPPORT (97) has no stable ErrorKind.
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.kind() == io::ErrorKind::Unsupported
        || e.raw_os_error() == Some(97)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_godot_bind_addresses() {
        assert_eq!("*:9080".parse::<ListenAddr>().unwrap(), ListenAddr::All(9080));
        assert_eq!(
            "127.0.0.1:9080".parse::<ListenAddr>().unwrap(),
            ListenAddr::One("127.0.0.1:9080".parse().unwrap())
        );
        assert_eq!("[::1]:0".parse::<ListenAddr>().unwrap(), ListenAddr::One("[::1]:0".parse().unwrap()));
        for bad in ["9080", "::1:9080", "localhost:9080", "*:http", "*:70000", ""] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad} parsed");
        }
        assert_eq!(ListenAddr::godot(1, "::1").unwrap(), ListenAddr::One("[::1]:1".parse().unwrap()));
        assert!(ListenAddr::godot(1, "example.com").is_err());
    }

    #[test]
    fn all_interfaces_take_ipv4_and_ipv6_connections() {
        let listeners = bind_all(&[ListenAddr::All(0)]).unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            assert!(std::net::TcpStream::connect(("::1", port)).is_ok());
        }
    }

    #[test]
    fn a_port_in_use_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_all(&[ListenAddr::One(addr)]).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
    }
}

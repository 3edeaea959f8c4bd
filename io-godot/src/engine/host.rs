//! The local addresses host candidates are gathered on.

use core::net::{IpAddr, Ipv4Addr};
use std::net::UdpSocket;

/// The local addresses to gather host candidates on: `MULTIPEER_WEBRTC_IPS` (comma separated)
/// if set, else the address of the default route (when there is one) and loopback.
pub fn local_ips() -> Vec<IpAddr> {
    if let Ok(list) = std::env::var("MULTIPEER_WEBRTC_IPS") {
        let ips: Vec<IpAddr> = list.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        if !ips.is_empty() {
            return ips;
        }
    }
    let mut ips = Vec::new();
    // Connecting a UDP socket sends nothing; it only asks the kernel which source address the
    // default route would use.
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).and_then(|()| s.local_addr()));
    if let Ok(addr) = routed
        && !addr.ip().is_unspecified()
        && !addr.ip().is_loopback()
    {
        ips.push(addr.ip());
    }
    ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    ips
}

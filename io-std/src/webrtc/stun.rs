//! The one STUN exchange str0m leaves to us: asking a STUN server for our mapped address
//! (RFC 8489 Binding request, no authentication), to signal it as a server-reflexive candidate.
//! Responses are parsed with bounds checks; anything malformed is ignored.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A Binding request with this transaction id (20 bytes, no attributes).
pub fn binding_request(transaction: [u8; 12]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(&transaction);
    out
}

/// The mapped address of a Binding success response to `transaction`, if `datagram` is one.
pub fn parse_binding_success(datagram: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let header = datagram.get(..20)?;
    let kind = u16::from_be_bytes([header[0], header[1]]);
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if kind != BINDING_SUCCESS
        || header[4..8] != MAGIC_COOKIE.to_be_bytes()
        || header[8..20] != transaction[..]
    {
        return None;
    }
    let mut attrs = datagram.get(20..20 + length)?;
    let mut plain = None;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + len)?;
        match kind {
            XOR_MAPPED_ADDRESS => return address(value, Some(transaction)),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        // Attributes are padded to 4 bytes.
        attrs = attrs.get((4 + len).div_ceil(4) * 4..).unwrap_or(&[]);
    }
    plain
}

fn address(value: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    if xor.is_some() {
        port ^= u16::from_be_bytes([cookie[0], cookie[1]]);
    }
    let ip = match family {
        0x01 => {
            let mut b: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                b.iter_mut().zip(cookie).for_each(|(x, k)| *x ^= k);
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        0x02 => {
            let mut b: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            if let Some(t) = xor {
                let key = cookie.iter().chain(t.iter());
                b.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 5769 §2.2 (sample IPv4 response): mapped address 192.0.2.1:32853, after a SOFTWARE
    // attribute and followed by MESSAGE-INTEGRITY and FINGERPRINT (not checked here).
    const RFC5769_RESPONSE: &str = "0101003c 2112a442 b7e7a701 bc34d686 fa87dfae \
        8022000b 74657374 20766563 746f7220 \
        00200008 0001a147 e112a643 \
        00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7 \
        80280004 c07d4c96";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn rfc5769_ipv4_response() {
        let bytes = hex(RFC5769_RESPONSE);
        let transaction: [u8; 12] = bytes[8..20].try_into().unwrap();
        let mapped = parse_binding_success(&bytes, &transaction);
        assert_eq!(mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert_eq!(parse_binding_success(&bytes, &[0; 12]), None, "another transaction");
        for cut in 0..bytes.len() {
            let _ = parse_binding_success(&bytes[..cut], &transaction);
        }
    }

    #[test]
    fn request_layout() {
        let r = binding_request([7; 12]);
        assert_eq!(&r[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &[7; 12]);
    }
}

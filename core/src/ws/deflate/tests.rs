//! Negotiation (RFC 7692 §5, §7.1) on both sides, from header values.

use super::*;

fn answer(config: &DeflateConfig, offers: &[&str]) -> Option<(DeflateParams, std::string::String)> {
    server_answer(config, offers.iter().map(|o| o.as_bytes())).map(|(p, l)| (p, l.as_str().into()))
}

fn accept(config: &DeflateConfig, answers: &[&str]) -> Result<Option<DeflateParams>, HandshakeError> {
    client_accept(config, answers.iter().map(|o| o.as_bytes()))
}

const FULL: DeflateParams = DeflateParams {
    window_bits: 15,
    no_context_takeover: false,
    peer_window_bits: 15,
    peer_no_context_takeover: false,
};

#[test]
fn client_offers_what_it_is_configured_for() {
    assert_eq!(client_offer(&DeflateConfig::DEFAULT).as_str(), "permessage-deflate; client_max_window_bits");
    let config = DeflateConfig {
        max_window_bits: 9,
        peer_max_window_bits: 10,
        no_context_takeover: true,
        peer_no_context_takeover: true,
        ..DeflateConfig::DEFAULT
    };
    assert_eq!(
        client_offer(&config).as_str(),
        "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; \
         client_no_context_takeover; server_no_context_takeover"
    );
    // Out-of-range settings are clamped, never written as they are.
    let wild = DeflateConfig { max_window_bits: 3, peer_max_window_bits: 40, ..DeflateConfig::DEFAULT };
    assert_eq!(client_offer(&wild).as_str(), "permessage-deflate; client_max_window_bits=8");
}

#[test]
fn server_accepts_the_browser_offer() {
    // Chromium's offer.
    let got = answer(&DeflateConfig::DEFAULT, &["permessage-deflate; client_max_window_bits"]);
    assert_eq!(got, Some((FULL, "permessage-deflate".into())));
    // Asking the client for a smaller window, which it said it can honour.
    let small = DeflateConfig { peer_max_window_bits: 10, ..DeflateConfig::DEFAULT };
    let got = answer(&small, &["permessage-deflate; client_max_window_bits"]);
    assert_eq!(
        got,
        Some((
            DeflateParams { peer_window_bits: 10, ..FULL },
            "permessage-deflate; client_max_window_bits=10".into()
        ))
    );
    // A client that did not say so is not asked (§7.1.2.2).
    let got = answer(&small, &["permessage-deflate"]);
    assert_eq!(got, Some((FULL, "permessage-deflate".into())));
}

#[test]
fn server_honours_the_offered_parameters() {
    let got = answer(
        &DeflateConfig::DEFAULT,
        &[
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
        ],
    );
    assert_eq!(
        got,
        Some((
            DeflateParams {
                window_bits: 10,
                no_context_takeover: true,
                peer_window_bits: 12,
                peer_no_context_takeover: true
            },
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
                .into()
        ))
    );
    // Our own smaller window is announced only when the client named the parameter.
    let own = DeflateConfig { max_window_bits: 9, ..DeflateConfig::DEFAULT };
    let got = answer(&own, &["permessage-deflate; server_max_window_bits=12"]);
    assert_eq!(
        got,
        Some((
            DeflateParams { window_bits: 9, ..FULL },
            "permessage-deflate; server_max_window_bits=9".into()
        ))
    );
    let got = answer(&own, &["permessage-deflate"]);
    assert_eq!(got, Some((DeflateParams { window_bits: 9, ..FULL }, "permessage-deflate".into())));
    // A quoted value is the same token (RFC 7692 §7.1); names are case-insensitive.
    let got = answer(&DeflateConfig::DEFAULT, &["Permessage-Deflate; Server_Max_Window_Bits=\"11\""]);
    assert_eq!(got.map(|(p, _)| p.window_bits), Some(11));
}

#[test]
fn server_declines_bad_offers_and_takes_the_next() {
    let bad = [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; client_max_window_bits=1a",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; x-unknown",
        "permessage-deflate; ;",
    ];
    for offer in bad {
        assert_eq!(answer(&DeflateConfig::DEFAULT, &[offer]), None, "{offer}");
        // The offer list goes on: the next acceptable offer wins (§5.1).
        let list = std::format!("{offer}, permessage-deflate; server_no_context_takeover");
        let got = answer(&DeflateConfig::DEFAULT, &[&list]);
        assert_eq!(got.map(|(p, _)| p.no_context_takeover), Some(true), "{list}");
    }
    // Other extensions are skipped, across header lines and with quoted commas inside.
    let got = answer(
        &DeflateConfig::DEFAULT,
        &["x-webkit-deflate-frame; a=\"x,y;z\"", " , permessage-deflate; client_no_context_takeover"],
    );
    assert_eq!(got.map(|(p, _)| p.peer_no_context_takeover), Some(true));
    assert_eq!(answer(&DeflateConfig::DEFAULT, &["x-foo", ""]), None);
    // An unterminated quote runs to the end of the value: nothing after it is an offer.
    let open_quote = "permessage-deflate; client_max_window_bits=\"9, permessage-deflate";
    assert_eq!(answer(&DeflateConfig::DEFAULT, &[open_quote]), None);
    assert_eq!(answer(&DeflateConfig::DEFAULT, &[]), None);
}

#[test]
fn client_checks_the_answer() {
    let config = DeflateConfig::DEFAULT;
    assert_eq!(accept(&config, &[]), Ok(None));
    assert_eq!(accept(&config, &[""]), Ok(None));
    assert_eq!(accept(&config, &["permessage-deflate"]), Ok(Some(FULL)));
    assert_eq!(
        accept(&config, &["permessage-deflate; client_max_window_bits=9; server_no_context_takeover"]),
        Ok(Some(DeflateParams { window_bits: 9, peer_no_context_takeover: true, ..FULL }))
    );
    assert_eq!(
        accept(&config, &["permessage-deflate; server_max_window_bits=12; client_no_context_takeover"]),
        Ok(Some(DeflateParams { peer_window_bits: 12, no_context_takeover: true, ..FULL }))
    );
    for bad in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; x=1",
    ] {
        assert_eq!(accept(&config, &[bad]), Err(HandshakeError::InvalidExtension), "{bad}");
    }
    assert_eq!(accept(&config, &["x-foo"]), Err(HandshakeError::UnofferedExtension));
    assert_eq!(
        accept(&config, &["permessage-deflate", "permessage-deflate"]),
        Err(HandshakeError::UnofferedExtension)
    );
    assert_eq!(accept(&config, &["permessage-deflate, x-foo"]), Err(HandshakeError::UnofferedExtension));
    // A window larger than we asked for, or ignoring a context reset we asked for.
    let asked = DeflateConfig { peer_max_window_bits: 10, peer_no_context_takeover: true, ..config };
    assert_eq!(
        accept(&asked, &["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"]),
        Err(HandshakeError::InvalidExtension)
    );
    assert_eq!(accept(&asked, &["permessage-deflate"]), Err(HandshakeError::InvalidExtension));
    assert_eq!(
        accept(&asked, &["permessage-deflate; server_no_context_takeover; server_max_window_bits=8"]),
        Ok(Some(DeflateParams { peer_window_bits: 8, peer_no_context_takeover: true, ..FULL }))
    );
}

#[test]
fn element_parsing_never_panics_on_odd_bytes() {
    for value in
        [&b"\""[..], b"\\", b"permessage-deflate;\"", b";;;,,,", b"permessage-deflate; a=\"\\\"", b"\xff\xfe"]
    {
        let _ = answer(&DeflateConfig::DEFAULT, &[core::str::from_utf8(value).unwrap_or("x")]);
        let _ = client_accept(&DeflateConfig::DEFAULT, [value]);
        let _ = server_answer(&DeflateConfig::DEFAULT, [value]);
    }
}

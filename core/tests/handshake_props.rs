//! Property: the opening handshake round-trips between our client and our server for any
//! resource, host, port, protocol lists and extra headers, and the subprotocol is chosen by
//! Godot's rule (`godot-protocol.md` §3.4): the client's list in the client's order, the first
//! name the server supports (exactly, case-sensitively); if either side offers none, both must.
#![cfg(feature = "alloc")]

use chacha20::ChaCha8Rng;
use multipeer::rand_core::SeedableRng;
use multipeer::ws::handshake::{ClientRequest, HandshakeError};
use multipeer::ws::{Config, Connection, Event, MAX_HEADERS, MaskKeys, MessageKind, State};
use multipeer::{Instant, Storage, VecStorage};
use proptest::prelude::*;

const NOW: Instant = Instant::ZERO;

/// Names drawn from a small pool so that the two sides' lists overlap often.
const POOL: [&str; 6] = ["chat", "superchat", "v1.godot", "v2.godot", "Chat", "x-y_z~1"];

fn protocols() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(&POOL[..], 0..=4).prop_shuffle()
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}(\\.[a-z]{2,5}){0,2}",
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| format!("10.{a}.{b}.1")),
        Just("[::1]".to_owned()),
    ]
}

fn resource() -> impl Strategy<Value = String> {
    "/?[A-Za-z0-9_.~/-]{0,20}(\\?[a-z0-9=&]{0,12})?"
}

fn extra_headers() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(("X-[A-Za-z]{1,8}", "[A-Za-z0-9;=,.]{1,20}"), 0..4)
        .prop_map(|hs| hs.into_iter().map(|(n, v)| format!("{n}: {v}")).collect())
}

/// Moves bytes both ways until neither side has anything to write.
fn pump<S: Storage, R1: MaskKeys, R2: MaskKeys>(a: &mut Connection<S, R1>, b: &mut Connection<S, R2>) {
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit().map(<[u8]>::to_vec) {
            let n = b.handle_input(NOW, &bytes);
            a.consume_transmit(bytes.len());
            assert_eq!(n, bytes.len());
            moved = true;
        }
        if let Some(bytes) = b.poll_transmit().map(<[u8]>::to_vec) {
            let n = a.handle_input(NOW, &bytes);
            b.consume_transmit(bytes.len());
            assert_eq!(n, bytes.len());
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn events<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

/// Godot's choice, written from the description rather than from the code under test.
fn godot_choice(offered: &[&'static str], supported: &[&'static str]) -> Result<Option<&'static str>, ()> {
    match offered.iter().find(|p| supported.contains(p)) {
        Some(p) => Ok(Some(*p)),
        None if offered.is_empty() && supported.is_empty() => Ok(None),
        None => Err(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn handshake_round_trip(
        host in host(),
        port in proptest::option::of(1u16..),
        resource in resource(),
        offered in protocols(),
        supported in protocols(),
        extra in extra_headers(),
        seed: u64,
    ) {
        let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let request = ClientRequest { host: &host, port, resource: &resource, protocols: &offered, extra_headers: &extra_refs };
        let mut client =
            Connection::<VecStorage, _>::client(NOW, &request, Config::GODOT, ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let mut server = Connection::<VecStorage>::server(NOW, Config::GODOT);
        pump(&mut client, &mut server);
        prop_assert_eq!(events(&mut server), [Event::Request]);
        {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let req = server.request(&mut headers).unwrap();
            let path = if resource.starts_with('/') { resource.clone() } else { format!("/{resource}") };
            prop_assert_eq!(req.path(), path);
            let host_header = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            prop_assert_eq!(req.host(), Some(host_header.as_bytes()));
            prop_assert_eq!(req.protocols().collect::<Vec<_>>(), offered.clone());
            prop_assert_eq!(req.origin(), None);
            for line in &extra {
                let (name, value) = line.split_once(": ").unwrap();
                prop_assert!(
                    req.headers().iter().any(|h| h.name == name && h.value == value.as_bytes()),
                    "{} missing", line
                );
            }
        }

        server.accept_supported(NOW, &supported, &[]).unwrap();
        pump(&mut client, &mut server);
        match godot_choice(&offered, &supported) {
            Ok(choice) => {
                prop_assert_eq!(events(&mut server), [Event::Open]);
                prop_assert_eq!(events(&mut client), [Event::Open]);
                prop_assert_eq!(server.protocol(), choice);
                prop_assert_eq!(client.protocol(), choice);
                // Both ends are really open: a message each way.
                client.send_text("ping").unwrap();
                server.send_binary(&[1, 2]).unwrap();
                pump(&mut client, &mut server);
                prop_assert_eq!(server.peek_message().map(|m| (m.kind, m.data)), Some((MessageKind::Text, &b"ping"[..])));
                prop_assert_eq!(client.peek_message().map(|m| m.data), Some(&[1u8, 2][..]));
            }
            Err(()) => {
                prop_assert_eq!(events(&mut server), [Event::HandshakeFailed(HandshakeError::NoCommonProtocol)]);
                prop_assert_eq!(events(&mut client), [Event::HandshakeFailed(HandshakeError::UnexpectedStatus(400))]);
                prop_assert_eq!((client.state(), server.state()), (State::Closed, State::Closed));
            }
        }
    }

    /// A server that names a protocol itself: the client opens only if it offered that name.
    #[test]
    fn client_accepts_only_an_offered_protocol(offered in protocols(), chosen in proptest::sample::select(&POOL[..]), seed: u64) {
        let request = ClientRequest { host: "h", port: None, resource: "/", protocols: &offered, extra_headers: &[] };
        let mut client =
            Connection::<VecStorage, _>::client(NOW, &request, Config::GODOT, ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let mut server = Connection::<VecStorage>::server(NOW, Config::GODOT);
        pump(&mut client, &mut server);
        prop_assert_eq!(events(&mut server), [Event::Request]);
        server.accept(NOW, Some(chosen), &[]).unwrap();
        pump(&mut client, &mut server);
        if offered.contains(&chosen) {
            prop_assert_eq!(events(&mut client), [Event::Open]);
            prop_assert_eq!(client.protocol(), Some(chosen));
        } else {
            prop_assert_eq!(events(&mut client), [Event::HandshakeFailed(HandshakeError::UnofferedProtocol)]);
        }
    }
}

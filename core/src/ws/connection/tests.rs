//! Unit tests of the connection machine driven byte by byte, in memory.

use std::vec::Vec;

use chacha20::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::buffer::{FixedStorage, Storage};
use crate::ws::handshake::Url;

type Heap = crate::buffer::VecStorageForTests;

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

fn client<S: Storage>(now: Instant, config: Config) -> Connection<S, ChaCha8Rng> {
    let url = Url::parse("ws://127.0.0.1:9080/lobby?x=1").unwrap();
    Connection::client(now, &ClientRequest::from_url(&url), config, rng()).unwrap()
}

/// Moves everything each side has to send into the other, until neither has anything.
fn pump<S: Storage, R1: MaskKeys, R2: MaskKeys>(
    now: Instant,
    a: &mut Connection<S, R1>,
    b: &mut Connection<S, R2>,
) {
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit().map(<[u8]>::to_vec) {
            let n = b.handle_input(now, &bytes);
            a.consume_transmit(n);
            moved |= n > 0;
        }
        if let Some(bytes) = b.poll_transmit().map(<[u8]>::to_vec) {
            let n = a.handle_input(now, &bytes);
            b.consume_transmit(n);
            moved |= n > 0;
        }
        if !moved {
            return;
        }
    }
}

fn events<S: Storage, R: MaskKeys>(c: &mut Connection<S, R>) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

fn open_pair<S: Storage>(config: Config) -> (Connection<S, ChaCha8Rng>, Connection<S, NoRng>) {
    let now = Instant::ZERO;
    let mut c = client::<S>(now, config);
    let mut s = Connection::<S, NoRng>::server(now, config);
    pump(now, &mut c, &mut s);
    assert_eq!(events(&mut s), [Event::Request]);
    s.accept(now, None, &[]).unwrap();
    pump(now, &mut c, &mut s);
    assert_eq!(events(&mut s), [Event::Open]);
    assert_eq!(events(&mut c), [Event::Open]);
    (c, s)
}

#[test]
fn handshake_and_messages_both_ways() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.send_text("hello").unwrap();
    s.send_binary(&[1, 2, 3]).unwrap();
    pump(Instant::ZERO, &mut c, &mut s);
    assert_eq!(s.peek_message(), Some(Message { kind: MessageKind::Text, data: b"hello" }));
    assert_eq!(c.peek_message(), Some(Message { kind: MessageKind::Binary, data: &[1, 2, 3] }));
    assert!(s.pop_message() && c.pop_message());
    assert_eq!(s.peek_message(), None);
}

#[test]
fn fixed_storage_works_without_alloc() {
    let (mut c, mut s) = open_pair::<FixedStorage<8192, 8192>>(Config::GODOT);
    c.send_binary(&[9; 4000]).unwrap();
    pump(Instant::ZERO, &mut c, &mut s);
    assert_eq!(s.peek_message().unwrap().data, &[9; 4000][..]);
}

#[test]
fn close_handshake_initiated_by_client() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    let now = Instant::ZERO;
    c.close(now, CloseCode(4000), "bye").unwrap();
    assert_eq!(c.state(), State::Closing);
    pump(now, &mut c, &mut s);
    let Event::Closed(info) = events(&mut s).pop().unwrap() else { panic!() };
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator, info.clean),
        (CloseCode(4000), "bye", Initiator::Remote, true)
    );
    let Event::Closed(info) = events(&mut c).pop().unwrap() else { panic!() };
    assert_eq!((info.code, info.initiator, info.clean), (CloseCode(4000), Initiator::Local, true));
    assert!(s.is_finished());
    assert!(!c.is_finished(), "the client waits for the server to close TCP");
    c.handle_eof(now);
    assert!(c.is_finished());
}

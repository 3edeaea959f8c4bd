//! The closing handshake from each side, close echo, close codes and reasons.

use super::*;
use crate::ws::tests::close_payload;

fn summary(info: &CloseInfo) -> (u16, &str, Initiator, Option<Error>, bool) {
    (info.code.0, info.reason.as_str(), info.initiator, info.error, info.clean)
}

#[test]
fn close_initiated_by_client() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.close(NOW, CloseCode(4000), "bye").unwrap();
    assert_eq!(c.state(), State::Closing);
    pump(NOW, &mut c, &mut s);
    assert_eq!(summary(&closed(&mut s)), (4000, "bye", Initiator::Remote, None, true));
    assert_eq!(summary(&closed(&mut c)), (4000, "bye", Initiator::Local, None, true));
    assert!(s.is_finished(), "RFC 6455 §7.1.1: the server closes TCP first");
    assert!(!c.is_finished(), "the client waits for the server to close TCP");
    c.handle_eof(NOW);
    assert!(c.is_finished());
    assert_eq!(events(&mut c), []);
}

#[test]
fn close_initiated_by_server() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    s.close(NOW, CloseCode::GOING_AWAY, "restart").unwrap();
    assert_eq!((s.state(), s.is_finished()), (State::Closing, false));
    pump(NOW, &mut c, &mut s);
    assert_eq!(summary(&closed(&mut c)), (1001, "restart", Initiator::Remote, None, true));
    assert_eq!(summary(&closed(&mut s)), (1001, "restart", Initiator::Local, None, true));
    assert!(s.is_finished());
    // The client gives the server the close timeout to end TCP, then gives up by itself.
    assert!(!c.is_finished());
    let deadline = NOW + Config::GODOT.close_timeout;
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(Instant::from_micros(deadline.as_micros() - 1));
    assert!(!c.is_finished());
    c.handle_timeout(deadline);
    assert!(c.is_finished());
    assert_eq!((events(&mut c), c.poll_timeout()), (std::vec![], None));
}

#[test]
fn simultaneous_close() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.close(NOW, CloseCode(4001), "c").unwrap();
    s.close(NOW, CloseCode(4002), "s").unwrap();
    let (from_c, from_s) = (drain(&mut c), drain(&mut s));
    assert_eq!(from_c.len() + from_s.len(), 2, "one Close each, no echo");
    assert!(from_c.iter().chain(&from_s).all(|f| f.b0 == 0x88));
    let to_s = masked(0x88, &from_c[0].payload);
    assert_eq!(s.handle_input(NOW, &to_s), to_s.len());
    assert_eq!(c.handle_input(NOW, &unmasked(0x88, &from_s[0].payload)), 5);
    // Each records the code it received, as Godot's `get_close_code()` reports it.
    assert_eq!(summary(&closed(&mut c)), (4002, "s", Initiator::Local, None, true));
    assert_eq!(summary(&closed(&mut s)), (4001, "c", Initiator::Local, None, true));
    assert_eq!((c.poll_transmit(), s.poll_transmit()), (None, None));
}

#[test]
fn received_close_codes_are_echoed() {
    let long_reason = "r".repeat(123);
    for (code, reason) in [
        (1000, ""),
        (1001, "going"),
        (1002, ""),
        (1003, ""),
        (1007, ""),
        (1008, ""),
        (1009, ""),
        (1010, ""),
        (1011, ""),
        (3000, "app"),
        (3999, ""),
        (4000, "bye\0"),
        (4999, "é"),
        (1000, long_reason.as_str()),
    ] {
        let mut s = open_server(Config::GODOT);
        let payload = close_payload(code, reason);
        s.handle_input(NOW, &masked(0x88, &payload));
        assert_eq!(drain(&mut s), [Sent { b0: 0x88, masked: false, payload }], "{code}");
        assert_eq!(summary(&closed(&mut s)), (code, reason, Initiator::Remote, None, true));
    }
}

#[test]
fn an_empty_close_is_echoed_empty() {
    let mut c = open_client(Config::GODOT);
    c.handle_input(NOW, &unmasked(0x88, b""));
    assert_eq!(drain(&mut c), [Sent { b0: 0x88, masked: true, payload: std::vec![] }]);
    assert_eq!(summary(&closed(&mut c)), (1005, "", Initiator::Remote, None, true));
}

#[test]
fn close_command_checks_code_and_reason() {
    let mut c = open_client(Config::GODOT);
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(c.close(NOW, CloseCode(code), ""), Err(SendError::InvalidCloseCode(code)));
    }
    assert_eq!(c.close(NOW, CloseCode::NORMAL, &"x".repeat(124)), Err(SendError::ControlTooLong));
    assert_eq!(c.state(), State::Open, "a refused close changes nothing");
    let reason = "x".repeat(123);
    c.close(NOW, CloseCode::NORMAL, &reason).unwrap();
    c.close(NOW, CloseCode(4000), "twice").unwrap();
    let sent = drain(&mut c);
    assert_eq!(
        sent,
        [Sent { b0: 0x88, masked: true, payload: close_payload(1000, &reason) }],
        "closing twice sends one"
    );
    assert_eq!(c.send_binary(b"x"), Err(SendError::NotOpen));
}

#[test]
fn close_while_connecting_abandons_the_handshake() {
    let mut c = client::<Heap>(NOW, Config::GODOT);
    c.close(NOW, CloseCode::NORMAL, "").unwrap();
    assert_eq!(events(&mut c), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
    assert_eq!((c.poll_transmit(), c.is_finished(), c.poll_timeout()), (None, true, None));
    let mut s = Connection::<Heap>::server(NOW, Config::GODOT);
    s.close(NOW, CloseCode::NORMAL, "").unwrap();
    assert_eq!(events(&mut s), [Event::HandshakeFailed(HandshakeError::ConnectionClosed)]);
}

#[test]
fn messages_sent_before_the_echo_are_delivered() {
    let (mut c, mut s) = open_pair::<Heap>(Config::GODOT);
    c.close(NOW, CloseCode::NORMAL, "").unwrap();
    s.send_text("in flight").unwrap();
    // The server's message crosses the client's Close on the wire.
    let from_s = s.poll_transmit().unwrap().to_vec();
    s.consume_transmit(from_s.len());
    c.handle_input(NOW, &from_s);
    assert_eq!(messages(&mut c), [text(b"in flight").unwrap()]);
    assert_eq!(c.state(), State::Closing);
    pump(NOW, &mut c, &mut s);
    assert!(closed(&mut c).clean);
}

#[test]
fn eof_while_closing_is_a_reset() {
    let (mut c, _s) = open_pair::<Heap>(Config::GODOT);
    c.close(NOW, CloseCode(4001), "leaving").unwrap();
    c.handle_eof(NOW);
    // Unanswered, as a close that times out: the code sent stays on record.
    let expected = (4001, "leaving", Initiator::Local, Some(Error::ConnectionReset), false);
    assert_eq!(summary(&closed(&mut c)), expected);
    assert_eq!((c.poll_transmit(), c.is_finished(), c.poll_timeout()), (None, true, None));
}

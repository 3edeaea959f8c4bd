//! Timers: handshake timeout, close timeout, keepalive; early and repeated calls do nothing.

use core::time::Duration;

use super::*;

fn at(secs_tenths: u64) -> Instant {
    Instant::from_millis(secs_tenths * 100)
}

#[test]
fn server_handshake_timeout_answers_408() {
    for request in [&b""[..], b"GET / HTTP/1.1\r\nHost: x\r\n"] {
        let mut s = Connection::<Heap>::server(NOW, Config::GODOT);
        s.handle_input(NOW, request);
        let deadline = NOW + Config::GODOT.handshake_timeout;
        assert_eq!(s.poll_timeout(), Some(deadline));
        s.handle_timeout(Instant::from_micros(deadline.as_micros() - 1));
        assert_eq!((events(&mut s), s.poll_transmit()), (std::vec![], None));
        s.handle_timeout(deadline);
        assert_eq!(events(&mut s), [Event::HandshakeFailed(HandshakeError::Timeout)]);
        assert!(s.poll_transmit().unwrap().starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
        assert!(s.is_finished() && s.poll_timeout().is_none());
        s.handle_timeout(deadline + Duration::from_secs(1));
        assert_eq!(events(&mut s), []);
    }
}

#[test]
fn server_handshake_timeout_while_the_application_decides() {
    let mut c = client::<Heap>(NOW, Config::GODOT);
    let mut s = Connection::<Heap>::server(NOW, Config::GODOT);
    pump(NOW, &mut c, &mut s);
    assert_eq!(events(&mut s), [Event::Request]);
    s.handle_timeout(at(30));
    assert_eq!(events(&mut s), [Event::HandshakeFailed(HandshakeError::Timeout)]);
    assert_eq!(s.accept(at(30), None, &[]), Err(SendError::WrongState));
    assert!(s.poll_transmit().unwrap().starts_with(b"HTTP/1.1 408 "));
}

#[test]
fn client_handshake_timeout() {
    let config = Config { handshake_timeout: Duration::from_secs(1), ..Config::GODOT };
    let mut c = client::<Heap>(at(5), config);
    assert_eq!(c.poll_timeout(), Some(at(15)));
    c.handle_timeout(at(14));
    assert_eq!(events(&mut c), []);
    c.handle_timeout(at(15));
    assert_eq!(events(&mut c), [Event::HandshakeFailed(HandshakeError::Timeout)]);
    assert_eq!(c.handshake_error(), Some(HandshakeError::Timeout));
    assert_eq!((c.poll_transmit(), c.is_finished(), c.state()), (None, true, State::Closed));
}

#[test]
fn an_open_connection_has_no_timer_without_heartbeat() {
    let (c, s) = open_pair::<Heap>(Config::GODOT);
    assert_eq!((c.poll_timeout(), s.poll_timeout()), (None, None));
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    let (mut c, _s) = open_pair::<Heap>(Config::GODOT);
    c.close(at(10), CloseCode(4000), "bye").unwrap();
    assert_eq!(c.poll_timeout(), Some(at(40)));
    c.handle_timeout(at(39));
    assert_eq!((events(&mut c), c.state()), (std::vec![], State::Closing));
    c.handle_timeout(at(40));
    let info = closed(&mut c);
    assert_eq!(
        (info.code, info.reason.as_str(), info.initiator, info.error, info.clean),
        (CloseCode(4000), "bye", Initiator::Local, Some(Error::CloseTimeout), false)
    );
    assert_eq!((c.poll_transmit(), c.is_finished(), c.poll_timeout()), (None, true, None));
}

const HEARTBEAT: Config = Config { heartbeat_interval: Some(Duration::from_secs(1)), ..Config::GODOT };

#[test]
fn keepalive_pings_at_the_interval_and_an_answering_peer_stays() {
    let (mut c, mut s) = open_pair::<Heap>(HEARTBEAT);
    for tick in 1..=10u64 {
        let now = Instant::from_secs(tick);
        assert_eq!((c.poll_timeout(), s.poll_timeout()), (Some(now), Some(now)));
        // Early calls do nothing.
        c.handle_timeout(Instant::from_micros(now.as_micros() - 1));
        assert_eq!(c.poll_transmit(), None);
        c.handle_timeout(now);
        c.handle_timeout(now);
        s.handle_timeout(now);
        assert_eq!(
            c.poll_transmit().map(parse_frames),
            Some(std::vec![Sent { b0: 0x89, masked: true, payload: std::vec![] }])
        );
        assert_eq!(s.poll_transmit(), Some(&[0x89, 0x00][..]), "one empty ping each");
        pump(now, &mut c, &mut s);
        assert_eq!(events(&mut c), [Event::Pong(ControlPayload::default())]);
        assert_eq!(events(&mut s), [Event::Pong(ControlPayload::default())]);
        assert_eq!((c.state(), s.state()), (State::Open, State::Open));
    }
}

#[test]
fn keepalive_detects_a_silent_peer() {
    let (mut c, _s) = open_pair::<Heap>(HEARTBEAT);
    c.handle_timeout(Instant::from_secs(1));
    assert_eq!(drain(&mut c), [Sent { b0: 0x89, masked: true, payload: std::vec![] }]);
    // Data from the peer does not count as an answer: only a pong does (as in Godot).
    c.handle_input(Instant::from_millis(1500), &unmasked(0x82, b"data"));
    c.send_binary(b"unsent").unwrap();
    c.handle_timeout(Instant::from_secs(2));
    let info = closed(&mut c);
    assert_eq!(
        (info.code, info.initiator, info.error, info.clean),
        (CloseCode::ABNORMAL, Initiator::Library, Some(Error::KeepaliveTimeout), false)
    );
    assert_eq!((c.poll_transmit(), c.is_finished(), c.poll_timeout()), (None, true, None));
}

#[test]
fn keepalive_after_a_late_call_keeps_its_interval() {
    let (mut c, mut s) = open_pair::<Heap>(HEARTBEAT);
    // Called late: the ping goes out now and the next is due one interval later.
    c.handle_timeout(Instant::from_millis(1700));
    assert_eq!(c.poll_timeout(), Some(Instant::from_millis(2700)));
    pump(Instant::from_millis(1700), &mut c, &mut s);
    c.handle_timeout(Instant::from_millis(2700));
    assert_eq!(c.state(), State::Open);
}

#[test]
fn keepalive_stops_when_closing() {
    let (mut c, _s) = open_pair::<Heap>(HEARTBEAT);
    c.close(Instant::from_millis(500), CloseCode::NORMAL, "").unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_millis(3500)), "only the close timer is left");
    let _ = drain(&mut c);
    c.handle_timeout(Instant::from_secs(1));
    assert_eq!((c.poll_transmit(), c.state()), (None, State::Closing));
}

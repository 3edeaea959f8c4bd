//! The adapter around one connection under test: virtual time, back-pressure, the transport
//! it writes to, and the invariants checked after every op.

use multipeer::ws::frame::{CloseCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use multipeer::ws::handshake::HandshakeError;
use multipeer::ws::{
    Connection, Event, MAX_HEADERS, MaskKeys, MessageKind, Role, SendError, SharedFrame, State,
};
use multipeer::{Instant, Storage};

use core::time::Duration;

use super::super::input::Input;
use super::super::parsers::PROTOCOLS;
use super::super::wire::{check_output, reference_messages};
use super::{CLOSE_CODES, FOOTPRINT_SLACK, Op, RECORD_OVERHEAD, Summary, through_taken};

/// What the harness compares before and after `handle_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    state: State,
    buffered: usize,
    finished: bool,
    timeout: Option<Instant>,
    messages: usize,
    outbound_messages: usize,
}

/// The events seen so far, checked as they arrive.
#[derive(Debug, Default)]
struct EventLog {
    request: bool,
    open: bool,
    terminal: Option<Event>,
}

/// A connection with the adapter state around it: virtual time, unaccepted input, and
/// everything written to the "transport".
pub struct Harness<S: Storage, R: MaskKeys> {
    pub(super) conn: Connection<S, R>,
    role: Role,
    now: Instant,
    /// Bytes received but not yet accepted (back-pressure).
    backlog: Vec<u8>,
    /// Bytes the transport took.
    wire: Vec<u8>,
    events: EventLog,
    /// `IN + OUT` for fixed storage.
    fixed: Option<usize>,
    /// Client: the protocols offered, comma-separated.
    offered: String,
    rank: u8,
    /// Messages the application read, in order.
    delivered: Vec<(MessageKind, Vec<u8>)>,
    /// Bytes the connection accepted while it was still reading.
    accepted: Vec<u8>,
    /// Whether the connection closed while reading input (a Close frame, a protocol error),
    /// rather than by a command, a timer or the end of the transport.
    closed_by_input: bool,
}

fn rank(state: State) -> u8 {
    match state {
        State::Connecting => 0,
        State::Open => 1,
        State::Closing => 2,
        State::Closed => 3,
    }
}

impl<S: Storage, R: MaskKeys> Harness<S, R> {
    pub(super) fn new(conn: Connection<S, R>, role: Role, fixed: Option<usize>, offered: String) -> Self {
        Self {
            conn,
            role,
            now: Instant::ZERO,
            backlog: Vec::new(),
            wire: Vec::new(),
            events: EventLog::default(),
            fixed,
            offered,
            rank: 0,
            delivered: Vec::new(),
            accepted: Vec::new(),
            closed_by_input: false,
        }
    }

    pub(super) fn run(&mut self, mut input: Input<'_>) -> Summary {
        while !input.is_empty() {
            let op = Op::decode(&mut input);
            self.apply(&op);
            self.check();
        }
        self.finish();
        Summary {
            opened: self.events.open,
            messages: self.delivered.len(),
            terminal: self.events.terminal.clone(),
            written: self.wire.len(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.conn.state(),
            buffered: self.conn.buffered_amount(),
            finished: self.conn.is_finished(),
            timeout: self.conn.poll_timeout(),
            messages: self.conn.available_messages(),
            outbound_messages: self.conn.queued_outbound_messages(),
        }
    }

    /// Appends `bytes` to the backlog and offers the backlog.
    pub(super) fn receive(&mut self, bytes: &[u8]) {
        self.backlog.extend_from_slice(bytes);
        self.offer();
    }

    /// Offers the backlog; returns how many bytes were accepted.
    fn offer(&mut self) -> usize {
        let closed = self.conn.state() == State::Closed;
        let n = self.conn.handle_input(self.now, &self.backlog);
        assert!(n <= self.backlog.len(), "accepted {n} of {} bytes", self.backlog.len());
        if closed {
            assert_eq!(n, self.backlog.len(), "a closed connection discards its input");
        } else {
            self.accepted.extend_from_slice(&self.backlog[..n]);
            self.closed_by_input = self.conn.state() == State::Closed;
        }
        self.backlog.drain(..n);
        n
    }

    /// Lets the transport take up to `n` bytes.
    fn transmit(&mut self, n: usize) {
        let before = self.conn.buffered_amount();
        let available = self.conn.poll_transmit().unwrap_or_default();
        let taken = n.min(available.len());
        self.wire.extend_from_slice(&available[..taken]);
        self.conn.consume_transmit(taken);
        assert_eq!(self.conn.buffered_amount(), before - taken);
    }

    /// Lets the transport take everything, one `poll_transmit` slice at a time.
    pub(super) fn transmit_all(&mut self) {
        while self.conn.buffered_amount() > 0 {
            let before = self.conn.buffered_amount();
            self.transmit(usize::MAX);
            assert!(self.conn.buffered_amount() < before, "poll_transmit gave nothing to write");
        }
    }

    /// Lets the transport take up to `n` bytes in one vectored write.
    fn transmit_vectored(&mut self, n: usize) {
        let before = self.conn.buffered_amount();
        let mut slots: [&[u8]; 3] = [&[]; 3];
        let filled = self.conn.transmit_chunks(&mut slots);
        assert!(filled <= slots.len());
        let mut taken = 0;
        for chunk in &slots[..filled] {
            assert!(!chunk.is_empty(), "an empty chunk");
            let step = chunk.len().min(n - taken);
            self.wire.extend_from_slice(&chunk[..step]);
            taken += step;
        }
        self.conn.consume_transmit(taken);
        assert_eq!(self.conn.buffered_amount(), before - taken);
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.record(event);
        }
    }

    fn record(&mut self, event: Event) {
        let log = &mut self.events;
        assert!(log.terminal.is_none(), "{event:?} after {:?}", log.terminal);
        match &event {
            Event::Request => {
                assert!(self.role == Role::Server && !log.request && !log.open, "{event:?}");
                log.request = true;
            }
            Event::Open => {
                assert!(!log.open && (self.role == Role::Client || log.request), "{event:?}");
                log.open = true;
            }
            Event::Pong(_) => assert!(log.open, "a pong before the connection opened"),
            Event::HandshakeFailed(e) => {
                assert!(!log.open, "handshake failed after opening");
                assert_eq!(self.conn.handshake_error(), Some(*e));
                log.terminal = Some(event);
            }
            Event::Closed(info) => {
                assert!(log.open, "closed without having opened");
                assert_eq!(self.conn.close_info(), Some(info));
                log.terminal = Some(event);
            }
            other => panic!("an event this harness does not know: {other:?}"),
        }
    }

    /// The invariants that hold after every step.
    pub(super) fn check(&mut self) {
        let conn = &self.conn;
        let config = *conn.config();
        let state = conn.state();
        let r = rank(state);
        assert!(r >= self.rank, "state went back to {state:?}");
        self.rank = r;
        assert!(!conn.is_finished() || state == State::Closed, "finished while {state:?}");
        if state == State::Closed {
            assert!(
                conn.close_info().is_some() != conn.handshake_error().is_some(),
                "closed with {:?} and {:?}",
                conn.close_info(),
                conn.handshake_error()
            );
        } else {
            assert!(conn.close_info().is_none() && conn.handshake_error().is_none());
        }
        if state == State::Connecting {
            assert_eq!(conn.available_messages(), 0);
        }
        assert!(conn.available_messages() <= config.max_queued_messages);
        assert!(conn.queued_outbound_messages() <= config.max_outbound_messages);
        let mut chunks: [&[u8]; 64] = [&[]; 64];
        let filled = conn.transmit_chunks(&mut chunks);
        let queued: usize = chunks[..filled].iter().map(|c| c.len()).sum();
        if filled < chunks.len() {
            assert_eq!(queued, conn.buffered_amount(), "the chunks are everything queued");
        }
        let front = conn.poll_transmit();
        assert_eq!(front.is_some(), conn.buffered_amount() > 0);
        assert_eq!(front, chunks[..filled].first().copied(), "poll_transmit is the first chunk");
        if let Some(m) = conn.peek_message() {
            assert!(m.data.len() <= config.max_message_size);
            if m.kind == MessageKind::Text {
                assert!(core::str::from_utf8(m.data).is_ok(), "a text message that is not UTF-8");
            }
        }
        if let Some(p) = conn.protocol() {
            assert!(p.len() <= 64);
            if self.role == Role::Client {
                assert!(self.offered.split(',').any(|o| o == p), "{p:?} was not offered");
            }
        }
        let footprint = conn.buffer_footprint();
        let bound = match self.fixed {
            Some(total) => total,
            None => {
                let inbound = (config.max_message_size + RECORD_OVERHEAD * config.max_queued_messages)
                    .max(config.max_handshake_size + self.offered.len());
                let queue = config.outbound_queue_size.unwrap_or(0).max(config.outbound_buffer_size);
                let data = queue + MAX_HEADER_LEN * config.max_outbound_messages;
                inbound + data.max(config.max_handshake_size) + FOOTPRINT_SLACK
            }
        };
        assert!(footprint <= bound, "footprint {footprint} over {bound} with {config:?}");
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Receive(bytes) => self.receive(bytes),
            Op::Frame { head, flags, payload } => {
                let frame = self.frame(*head, *flags, payload);
                self.receive(&frame);
            }
            Op::Transmit(n) if n & 1 == 0 => self.transmit(usize::from(n >> 1)),
            Op::Transmit(n) => self.transmit_vectored(usize::from(n >> 1)),
            Op::Pop => self.pop(),
            Op::Recv(cap) => self.recv(usize::from(*cap)),
            Op::Send { kind, len } => self.send(*kind, usize::from(*len) % 1200),
            Op::Ping(len) => self.ping(usize::from(*len) % 160),
            Op::Close { code, reason } => self.close(*code, usize::from(*reason) % 140),
            Op::Advance(step) => self.advance(*step),
            Op::Decide(choice) => self.decide(*choice),
            Op::Events => self.drain_events(),
            Op::Forward => self.forward(None),
            Op::ForwardThrough(pick) if pick & 8 != 0 => self.forward_all(*pick),
            Op::ForwardThrough(pick) => self.forward(Some(*pick)),
            Op::Eof => {
                self.conn.handle_eof(self.now);
                assert!(self.conn.state() == State::Closed && self.conn.is_finished());
            }
            Op::Abort => {
                self.conn.abort();
                assert!(self.conn.state() == State::Closed && self.conn.is_finished());
                assert!(self.conn.poll_transmit().is_none());
            }
        }
    }

    /// The bytes of a frame as the `Frame` op describes it.
    fn frame(&self, head: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let masked = (self.role == Role::Server) != (flags & 1 == 1);
        let mut out = vec![head];
        let mask_bit = if masked { 0x80 } else { 0 };
        let len = payload.len();
        match flags >> 1 & 3 {
            0 if len < 126 => out.push(mask_bit | len as u8),
            0 | 1 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let seed = flags >> 3;
        let key = [seed, seed ^ 0x5a, seed.wrapping_mul(7), 0x80 | seed];
        if masked {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    fn pop(&mut self) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        assert_eq!(self.conn.pop_message(), front.is_some());
        self.delivered.extend(front);
    }

    fn recv(&mut self, cap: usize) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        let mut buf = vec![0u8; cap];
        let result = self.conn.recv(&mut buf);
        match (front, result) {
            (None, Err(multipeer::queue::ReadError::Empty)) => {}
            (Some((_, data)), Err(multipeer::queue::ReadError::TooSmall { needed })) => {
                assert!(needed == data.len() && needed > cap);
                assert_eq!(self.conn.peek_message().map(|m| m.data.to_vec()), Some(data), "kept");
            }
            (Some((kind, data)), Ok((k, n))) => {
                assert_eq!((kind, &data[..]), (k, &buf[..n]));
                self.delivered.push((kind, data));
            }
            (front, result) => panic!("recv gave {result:?} with {front:?} queued"),
        }
    }

    /// `forward_message` (or `forward_message_through`, the transport taking what `through`
    /// picks): the message it takes is read (delivered) and queued as one frame, as `send`
    /// would queue it, less what the transport took at once; one it refuses stays first in
    /// line, for the reason `send` gives.
    fn forward(&mut self, through: Option<u8>) {
        let front = self.conn.peek_message().map(|m| (m.kind, m.data.to_vec()));
        let open = self.conn.state() == State::Open;
        let (queued_bytes, queued_messages) =
            (self.conn.buffered_amount(), self.conn.queued_outbound_messages());
        let fits = front.as_ref().is_some_and(|(_, data)| self.conn.can_send(data.len()));
        let mut written = None;
        let result = match through {
            None => self.conn.forward_message(),
            Some(pick) => {
                let wire = &mut self.wire;
                self.conn.forward_message_through(|parts| {
                    let taken = through_taken(pick, parts);
                    written = Some((taken, parts.iter().map(|p| p.len()).sum::<usize>()));
                    write_parts(wire, parts, taken);
                    taken
                })
            }
        };
        match (front, result) {
            (None, Ok(None)) => assert_eq!(written, None),
            (Some((kind, data)), Ok(Some(forwarded))) => {
                assert!(fits, "forward_message succeeded where can_send said no");
                assert_eq!(forwarded, kind);
                self.check_queued(queued_bytes, queued_messages, data.len(), written);
                self.delivered.push((kind, data));
            }
            (Some((_, data)), Err(e)) => {
                assert_eq!(written, None, "a refused message reached the transport");
                assert_eq!(self.conn.peek_message().map(|m| m.data.to_vec()).as_ref(), Some(&data), "kept");
                assert_eq!(self.conn.queued_outbound_messages(), queued_messages);
                match e {
                    SendError::NotOpen => assert!(!open),
                    SendError::TooLarge { max } => assert!(open && data.len() > max),
                    SendError::Full { .. } => assert!(open && !fits),
                    e => panic!("forward_message of {} bytes: {e:?}", data.len()),
                }
            }
            (front, result) => panic!("forward_message gave {result:?} with {front:?} queued"),
        }
    }

    /// `forward_messages_through`, the transport taking what `pick` says of the one write it
    /// is offered: the messages it forwards are read (delivered) in order, what the transport
    /// did not take is queued, and the ones it stops at stay first in line.
    fn forward_all(&mut self, pick: u8) {
        let queued: Vec<(MessageKind, Vec<u8>)> =
            self.conn.messages().map(|m| (m.kind, m.data.to_vec())).collect();
        assert_eq!(queued.len(), self.conn.available_messages());
        let open = self.conn.state() == State::Open;
        let (queued_bytes, queued_messages) =
            (self.conn.buffered_amount(), self.conn.queued_outbound_messages());
        let mut offers = Vec::new();
        let wire = &mut self.wire;
        let result = self.conn.forward_messages_through(|parts| {
            // Every offer after the first is taken whole, so only the first write is cut.
            let taken = if offers.is_empty() {
                through_taken(pick, parts)
            } else {
                parts.iter().map(|p| p.len()).sum()
            };
            offers.push((taken, parts.iter().map(|p| p.len()).sum::<usize>()));
            write_parts(wire, parts, taken);
            taken
        });
        match result {
            Ok(n) => {
                assert!(n <= queued.len() && (n > 0 || queued.is_empty()));
                // Forwarding frees room: a held frame may complete behind the rest.
                assert!(self.conn.available_messages() >= queued.len() - n);
                if !offers.is_empty() {
                    assert_eq!((queued_bytes, queued_messages), (0, 0), "written through past queued output");
                    assert_eq!(self.role, Role::Server);
                }
                // What was offered and not taken waits in the queue, with whatever went through
                // the queue once the transport stopped taking.
                let left: usize = offers.iter().map(|(taken, total)| total - taken).sum();
                assert!(self.conn.buffered_amount() >= queued_bytes + left);
                let remaining: Vec<Vec<u8>> = self.conn.messages().map(|m| m.data.to_vec()).collect();
                assert!(
                    remaining.iter().zip(&queued[n..]).all(|(r, (_, d))| r == d),
                    "the rest stays in order"
                );
                self.delivered.extend(queued.into_iter().take(n));
            }
            Err(e) => {
                assert!(offers.is_empty(), "a refused message reached the transport");
                let front = self.conn.messages().next().map(|m| m.data.to_vec());
                assert_eq!(front.as_ref(), queued.first().map(|(_, d)| d), "kept");
                match e {
                    SendError::NotOpen => assert!(!open),
                    SendError::TooLarge { max } => assert!(open && queued[0].1.len() > max),
                    SendError::Full { .. } => assert!(open),
                    e => panic!("forward_messages_through: {e:?}"),
                }
            }
        }
    }

    /// After a message of `len` bytes was accepted: queued whole, or (`written`: taken of
    /// total) written through, only the rest queued, and only when nothing was queued before.
    fn check_queued(&self, bytes: usize, messages: usize, len: usize, written: Option<(usize, usize)>) {
        match written {
            None => {
                assert_eq!(self.conn.queued_outbound_messages(), messages + 1);
                assert!(self.conn.buffered_amount() >= bytes + len + 2);
            }
            Some((taken, total)) => {
                assert_eq!((bytes, messages), (0, 0), "written through past queued output");
                assert!(total >= len + 2 && self.role == Role::Server);
                assert_eq!(self.conn.buffered_amount(), total - taken);
                assert_eq!(self.conn.queued_outbound_messages(), usize::from(taken < total));
            }
        }
    }

    fn send(&mut self, kind: u8, len: usize) {
        let open = self.conn.state() == State::Open;
        let (queued_bytes, queued_messages) =
            (self.conn.buffered_amount(), self.conn.queued_outbound_messages());
        let fits = self.conn.can_send(len);
        // Two-byte characters, so a cut in the middle of one would show.
        let text: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
        let binary = vec![0xb5; len];
        let (through, pick, kind) = (kind & 8 != 0, kind >> 4, kind % 8);
        let mut written = None;
        let wire = &mut self.wire;
        let mut transport = |parts: &[&[u8]]| {
            let taken = through_taken(pick, parts);
            written = Some((taken, parts.iter().map(|p| p.len()).sum::<usize>()));
            write_parts(wire, parts, taken);
            taken
        };
        let result = match kind {
            0 | 1 | 3 if through => {
                let (kind, data) = if kind == 1 {
                    (MessageKind::Text, text.as_bytes())
                } else {
                    (MessageKind::Binary, &binary[..])
                };
                self.conn.send_through(kind, data, &mut transport)
            }
            0 => self.conn.send_binary(&binary),
            1 => self.conn.send_text(&text),
            4 => {
                let (a, b) = text.as_bytes().split_at(((len / 2) | 1).min(text.len()));
                self.conn.send_parts(MessageKind::Text, &[a, b])
            }
            5 => self.conn.send_parts(MessageKind::Binary, &[&binary[..len / 3], &[], &binary[len / 3..]]),
            6 => self.conn.send_shared(&SharedFrame::new(MessageKind::Binary, &[&binary])),
            7 => self.conn.send_shared(&SharedFrame::new(MessageKind::Text, &[text.as_bytes()])),
            2 => {
                let mut bytes = vec![b'x'; len.max(1)];
                bytes[len / 2] = 0xff;
                let result = self.conn.send(MessageKind::Text, &bytes);
                assert!(matches!(result, Err(SendError::InvalidUtf8)), "{result:?}");
                return;
            }
            _ => self.conn.send(MessageKind::Binary, &binary),
        };
        // A shared frame takes no room in the connection's storage, only the limits count.
        let shared = kind >= 6 && self.role == Role::Server;
        match result {
            Ok(()) => {
                assert!(fits || shared, "send succeeded where can_send said no");
                self.check_queued(queued_bytes, queued_messages, len, written);
            }
            Err(SendError::NotOpen) => assert!(!open),
            Err(SendError::TooLarge { max }) => {
                assert!(open && !fits);
                assert_eq!(max, self.conn.config().outbound_buffer_size);
                assert!(len > max);
            }
            Err(SendError::Full { queued_messages: m, .. }) => {
                assert!(open);
                assert_eq!(m, queued_messages);
                assert!(
                    len <= self.conn.config().outbound_buffer_size,
                    "Full for a message that can never fit"
                );
                assert!(!fits, "can_send({len}) but send is Full");
            }
            Err(e) => panic!("send of {len} bytes: {e:?}"),
        }
    }

    fn ping(&mut self, len: usize) {
        let before = self.conn.buffered_amount();
        let open = self.conn.state() == State::Open;
        match self.conn.ping(&vec![0x70; len]) {
            Ok(()) => {
                assert!(open && len <= MAX_CONTROL_PAYLOAD);
                assert!(self.conn.buffered_amount() >= before + 2 + len, "ping accepted but not queued");
            }
            Err(SendError::NotOpen) => assert!(!open),
            Err(SendError::ControlTooLong) => assert!(open && len > MAX_CONTROL_PAYLOAD),
            Err(SendError::Full { .. }) => {
                assert!(open && len <= MAX_CONTROL_PAYLOAD);
                assert_eq!(self.conn.buffered_amount(), before);
            }
            Err(e) => panic!("ping of {len} bytes: {e:?}"),
        }
    }

    fn close(&mut self, code: u8, reason_len: usize) {
        let code = CloseCode(CLOSE_CODES[usize::from(code) % CLOSE_CODES.len()]);
        let reason: String = "ü".repeat(reason_len / 2) + &"r".repeat(reason_len % 2);
        let state = self.conn.state();
        let before = self.conn.buffered_amount();
        match self.conn.close(self.now, code, &reason) {
            Ok(()) => {
                assert!(code.is_valid_on_wire() && reason.len() <= 123);
                match state {
                    State::Open => {
                        assert_eq!(self.conn.state(), State::Closing);
                        assert!(self.conn.buffered_amount() >= before + 4 + reason.len(), "Close not queued");
                    }
                    State::Connecting => assert_eq!(self.conn.state(), State::Closed),
                    _ => assert_eq!(self.conn.state(), state, "closing twice does nothing"),
                }
            }
            Err(SendError::InvalidCloseCode(c)) => assert!(c == code.0 && !code.is_valid_on_wire()),
            Err(SendError::ControlTooLong) => assert!(reason.len() > 123),
            // Storage full (fixed storage, or app pings used the control reserve): nothing
            // changes and the application retries after writing output.
            Err(SendError::Full { .. }) => {
                assert_eq!((state, self.conn.state()), (State::Open, State::Open));
                assert_eq!(self.conn.buffered_amount(), before);
            }
            Err(e) => panic!("close({code}, {} bytes): {e:?}", reason.len()),
        }
    }

    fn advance(&mut self, step: u8) {
        let due = self.conn.poll_timeout();
        let n = u64::from(step & 63);
        self.now = match step >> 6 {
            0 => self.now + Duration::from_micros(n),
            1 => self.now + Duration::from_millis(n),
            2 => self.now + Duration::from_millis(n * 100),
            _ => due.map_or(self.now + Duration::from_secs(1), |t| t.max(self.now)),
        };
        let before = self.snapshot();
        self.conn.handle_timeout(self.now);
        let after = self.snapshot();
        if due.is_none_or(|t| self.now < t) {
            assert_eq!(before, after, "handle_timeout before the deadline changed something");
        }
        self.conn.handle_timeout(self.now);
        assert_eq!(after, self.snapshot(), "a second handle_timeout changed something");
        if let Some(next) = self.conn.poll_timeout() {
            assert!(next > self.now, "timeout {next:?} still due at {:?} after handle_timeout", self.now);
        }
    }

    fn decide(&mut self, choice: u8) {
        let pending = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            self.conn.request(&mut headers).is_some()
        };
        let now = self.now;
        let result = match choice % 8 {
            0 => self.conn.accept(now, None, &[]),
            1 => self.conn.accept(now, Some("chat"), &["X-Server: multipeer"]),
            2 => {
                let result = self.conn.accept(now, Some("bad name"), &[]);
                if pending {
                    assert_eq!(result, Err(SendError::Handshake(HandshakeError::InvalidHeaderLine)));
                    assert_eq!(self.conn.state(), State::Connecting);
                }
                result
            }
            3 => self.conn.accept(now, None, &["bad header line"]),
            4 => self.conn.accept_supported(now, &PROTOCOLS, &[]),
            5 => self.conn.accept_supported::<&str>(now, &[], &[]),
            6 => self.conn.reject(403, "go away"),
            _ => self.conn.reject(u16::from(choice) * 3, "no"),
        };
        match result {
            Ok(()) => {
                assert!(pending);
                assert!(matches!(self.conn.state(), State::Open | State::Closed));
            }
            Err(SendError::WrongState) => assert!(!pending),
            // Fixed storage may be too small for the 101.
            Err(SendError::Full { .. }) => assert!(pending && self.fixed.is_some()),
            Err(SendError::Handshake(HandshakeError::InvalidHeaderLine)) => {
                assert!(pending && choice % 8 >= 2)
            }
            Err(e) => panic!("decision {choice}: {e:?}"),
        }
    }

    /// Drains the connection like an adapter, checks it never stalls, ends the transport, and
    /// reads back what it wrote.
    fn finish(&mut self) {
        // Each round either takes bytes or completes a message that was waiting for room (a
        // frame whose header was read before the queue filled), so this many rounds suffice.
        let mut rounds = 2 * self.backlog.len() + 2;
        loop {
            while self.conn.peek_message().is_some() {
                self.pop();
            }
            self.transmit_all();
            self.drain_events();
            self.check();
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let deciding = self.conn.request(&mut headers).is_some();
            if self.backlog.is_empty() || deciding {
                break;
            }
            let offered = self.backlog.len();
            let n = self.offer();
            let progress = n > 0 || self.conn.available_messages() > 0 || self.conn.buffered_amount() > 0;
            assert!(
                progress && rounds > 0,
                "stalled: {:02x?} offered to a drained {:?} connection",
                &self.backlog[..offered.min(16)],
                self.conn.state(),
            );
            rounds -= 1;
        }
        if self.events.open {
            let reference = reference_messages(self.role, &self.accepted, self.conn.config());
            assert!(
                reference.starts_with(&self.delivered),
                "delivered {} messages that the stream does not hold as such (reference: {})",
                self.delivered.len(),
                reference.len()
            );
            // Fixed storage may refuse a message within the limits (1009); heap storage may not.
            // A connection ended by a command, a timer or the transport may drop a message that
            // was still waiting for a slot in the queue, as it drops one half received.
            let reading = self.conn.state() != State::Closed || self.closed_by_input;
            if self.fixed.is_none() && reading {
                assert_eq!(self.delivered.len(), reference.len(), "messages lost");
            }
        }
        self.conn.handle_eof(self.now);
        self.drain_events();
        self.check();
        assert!(self.conn.is_finished());
        assert!(
            self.events.terminal.is_some(),
            "the connection ended without a Closed or HandshakeFailed event"
        );
        assert_eq!(self.conn.handle_input(self.now, b"late"), 4);
        assert_eq!(self.conn.send_binary(b"late"), Err(SendError::NotOpen));
        assert_eq!(self.conn.ping(b""), Err(SendError::NotOpen));
        assert_eq!(self.conn.close(self.now, CloseCode::NORMAL, ""), Ok(()));
        assert_eq!(self.conn.accept(self.now, None, &[]), Err(SendError::WrongState));
        assert!(self.conn.poll_event().is_none());
        self.transmit_all();
        check_output(self.role, &self.wire);
    }
}

/// Records the first `taken` bytes of `parts` as written.
fn write_parts(wire: &mut Vec<u8>, parts: &[&[u8]], mut taken: usize) {
    for part in parts {
        let step = part.len().min(taken);
        wire.extend_from_slice(&part[..step]);
        taken -= step;
    }
}

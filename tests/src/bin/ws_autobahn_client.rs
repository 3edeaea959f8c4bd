//! Client for Autobahn|Testsuite's fuzzingserver mode.
//!
//! `ws_autobahn_client [--permessage-deflate] BASE_URL AGENT` (e.g. `ws://127.0.0.1:9001
//! multipeer`; the flag offers permessage-deflate, Autobahn sections 12 and 13) reads the case
//! count from `/getCaseCount`, echoes every message of each `/runCase?case=I&agent=AGENT` until
//! the server closes, then asks `/updateReports?agent=AGENT` to write the reports.

use core::time::Duration;
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use multipeer::ws::deflate::DeflateConfig;
use multipeer::ws::handshake::Url;
use multipeer::ws::{CloseCode, CloseInfo, Config, Initiator, SendError};
use multipeer_std::{ClientOptions, Error, WebSocket};

/// Autobahn's own per-case limit; the slowest cases (9.1.6, 16 MiB) take a few seconds.
const CASE_TIMEOUT: Duration = Duration::from_secs(100);

/// Time allowed for the short control connections (case count, report update).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits raised for Autobahn: 9.1.6 sends 16 MiB messages, 9.3/9.4 send 4 MiB in 64-byte
/// fragments.
///
/// The opening handshake may take 30 s, not Godot's 3: wstest (CPython) answers the final
/// `updateReports` only once it is done with the last case, which took more than 3 s on a
/// loaded machine in a full run (the reports were written; our client had given up).
const AUTOBAHN_LIMITS: Config = Config {
    max_message_size: 64 << 20,
    outbound_buffer_size: 64 << 20,
    handshake_timeout: Duration::from_secs(30),
    max_fragments: 1_000_000,
    ..Config::GODOT
};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "--permessage-deflate");
    let deflate = (args.len() < before).then_some(DeflateConfig::DEFAULT);
    let [base, agent] = args.as_slice() else {
        eprintln!(
            "usage: ws_autobahn_client [--permessage-deflate] BASE_URL AGENT   (e.g. ws://127.0.0.1:9001 multipeer)"
        );
        return ExitCode::FAILURE;
    };
    let base = base.trim_end_matches('/');
    let agent = percent_encode(agent);
    let options = ClientOptions::new().config(AUTOBAHN_LIMITS).permessage_deflate(deflate);

    let count = match with_deadline(&format!("{base}/getCaseCount"), &options, CONTROL_TIMEOUT, read_count) {
        Ok(Some(count)) => count,
        Ok(None) => {
            eprintln!("ws_autobahn_client: getCaseCount did not send a number");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("ws_autobahn_client: getCaseCount: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{count} cases");
    let (mut clean, mut failed_by_us, mut broken) = (0, 0, 0);
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match with_deadline(&url, &options, CASE_TIMEOUT, echo_until_closed) {
            Ok(info) if info.clean => clean += 1,
            // The fuzzer sent something invalid and the core closed with the RFC code.
            Ok(info) if info.initiator == Initiator::Library => failed_by_us += 1,
            Ok(info) => {
                broken += 1;
                eprintln!("ws_autobahn_client: case {case}: ended without a close handshake: {info:?}");
            }
            Err(e) => {
                broken += 1;
                eprintln!("ws_autobahn_client: case {case}: {e}");
            }
        }
    }
    let update = format!("{base}/updateReports?agent={agent}");
    if let Err(e) = with_deadline(&update, &options, CONTROL_TIMEOUT, echo_until_closed) {
        eprintln!("ws_autobahn_client: updateReports: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "{count} cases: {clean} closed cleanly, {failed_by_us} failed by us on invalid input, \
         {broken} ended otherwise; reports updated"
    );
    ExitCode::SUCCESS
}

/// Reads the case count (a text message), then lets the server close.
fn read_count(ws: &mut WebSocket, deadline: Instant) -> Result<Option<u32>, Error> {
    let message = ws.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
    let count = message.as_text().and_then(|t| t.trim().parse().ok());
    echo_until_closed(ws, deadline)?;
    Ok(count)
}

/// Echoes every message (text as text, binary as binary) until the connection ends; returns
/// how it ended.
fn echo_until_closed(ws: &mut WebSocket, deadline: Instant) -> Result<CloseInfo, Error> {
    loop {
        match ws.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(message) => match ws.send(message.kind, &message.data) {
                // Messages that arrived before the connection closed are still delivered, but
                // can no longer be answered; recv reports the close next.
                Ok(()) | Err(Error::Send(SendError::NotOpen)) => {}
                Err(e) => return Err(e),
            },
            Err(Error::Closed(info)) => return Ok(*info),
            Err(Error::TimedOut) => {
                let _ = ws.close(CloseCode::GOING_AWAY, "case timeout");
                return Err(Error::TimedOut);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects to `url` and runs `f` with a deadline; a watchdog shuts the socket down if the
/// deadline passes while a call is blocked (a write to a peer that stopped reading).
fn with_deadline<R>(
    url: &str,
    options: &ClientOptions,
    limit: Duration,
    f: impl FnOnce(&mut WebSocket, Instant) -> Result<R, Error>,
) -> Result<R, Error> {
    let deadline = Instant::now() + limit;
    let parsed = Url::parse(url)?;
    let stream = TcpStream::connect((parsed.host_name(), parsed.port))?;
    stream.set_nodelay(true)?;
    let watched = stream.try_clone()?;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            let _ = watched.shutdown(std::net::Shutdown::Both);
        }
    });
    let result = WebSocket::client_on(stream, url, options).and_then(|mut ws| f(&mut ws, deadline));
    let _ = done.send(());
    let _ = watchdog.join();
    result
}

/// Escapes everything but RFC 3986 unreserved characters, for the agent name in a query.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! A permessage-deflate client on multipeer-mio's `WebSocketClient`, for the compression interop
//! checks (`tests/interop/deflate/run.sh`) against servers nobody here wrote.
//!
//! `ws_deflate_client URL [ROUNDS]` offers permessage-deflate (`client_max_window_bits`), sends
//! ROUNDS (default 5) rounds of three JSON-like text messages (about 200 B, 2 KiB and 32 KiB),
//! each after the previous one came back, checks that every echo is identical, and closes with
//! 1000. It prints what was agreed and the connection's deflate counters, then `ok` or
//! `fail REASON`; it exits 0 only when every echo matched and messages went compressed both
//! ways (so the server really compressed its echoes). It gives up after 30 s.

use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use mio::{Events, Poll, Token};
use multipeer::ws::deflate::DeflateConfig;
use multipeer::ws::{CloseCode, Config, Event};
use multipeer_mio::{ReadBuffer, WebSocketClient, WebSocketClientOptions};
use multipeer_tests::json_like_message;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), rounds) = (args.next(), args.next()) else {
        eprintln!("usage: ws_deflate_client URL [ROUNDS]");
        return ExitCode::from(2);
    };
    let rounds: usize = rounds.and_then(|r| r.parse().ok()).unwrap_or(5);
    match run(&url, rounds) {
        Ok(()) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("fail {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(url: &str, rounds: usize) -> Result<(), String> {
    let messages: Vec<String> =
        (0..rounds).flat_map(|r| [200, 2048, 32 * 1024].map(|size| json_like_message(size, r))).collect();
    let config = Config {
        max_message_size: 1 << 20,
        outbound_buffer_size: 1 << 20,
        permessage_deflate: Some(DeflateConfig::DEFAULT),
        ..Config::GODOT
    };
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(16);
    let mut buf = ReadBuffer::new();
    let mut client =
        WebSocketClient::connect(poll.registry(), Token(0), url, &WebSocketClientOptions::new(config))
            .map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut open, mut sent, mut echoed, mut closing) = (false, 0, 0, false);
    while !client.is_released() {
        if Instant::now() > deadline {
            return Err(format!("timed out with {echoed} of {} echoes", messages.len()));
        }
        let wait =
            client.poll_timeout().map_or(Duration::from_millis(100), |t| t.min(Duration::from_millis(100)));
        poll.poll(&mut events, Some(wait)).map_err(|e| e.to_string())?;
        for event in &events {
            client.handle_event(poll.registry(), event, &mut buf);
        }
        client.handle_timeout(poll.registry(), &mut buf);
        while let Some(event) = client.connection_mut().poll_event() {
            match event {
                Event::Open => {
                    open = true;
                    match client.connection().permessage_deflate() {
                        Some(agreed) => println!("agreed {agreed:?}"),
                        None => return Err("the server did not accept permessage-deflate".into()),
                    }
                }
                Event::HandshakeFailed(e) => return Err(format!("handshake failed: {e}")),
                Event::Closed(info) if !closing => return Err(format!("closed early: {info:?}")),
                _ => {}
            }
        }
        while let Some(message) = client.connection().peek_message() {
            let expected = messages.get(echoed).ok_or("more messages than sent")?;
            if message.data != expected.as_bytes() {
                return Err(format!(
                    "echo {echoed} differs ({} bytes, sent {})",
                    message.data.len(),
                    expected.len()
                ));
            }
            echoed += 1;
            client.connection_mut().pop_message();
        }
        if open && sent == echoed && sent < messages.len() {
            client.connection_mut().send_text(&messages[sent]).map_err(|e| format!("send: {e}"))?;
            sent += 1;
        }
        if echoed == messages.len() && !closing {
            closing = true;
            let stats = client.connection().permessage_deflate_stats().unwrap_or_default();
            println!("stats {stats:?}");
            if stats.messages_compressed == 0 || stats.messages_inflated == 0 {
                return Err("no compressed message in one direction".into());
            }
            let now = client.now();
            client
                .connection_mut()
                .close(now, CloseCode::NORMAL, "done")
                .map_err(|e| format!("close: {e}"))?;
        }
        client.flush(poll.registry(), &mut buf);
    }
    if !closing {
        return Err(format!(
            "connection ended with {echoed} of {} echoes: {:?}",
            messages.len(),
            client.error()
        ));
    }
    Ok(())
}

//! A multiplayer client behind `multipeer_std::WebSocketMultiplayerPeer` that stands in for
//! `tests/interop/godot/g4_client.gd` / `g3_client.gd` in the Godot interop runner (`ws://`):
//! the scenes' script is [`multipeer_tests::interop_client`]; this binary drives the facade
//! with it (the environment and output lines are described there).

use core::time::Duration;
use std::process::ExitCode;

use multipeer_std::{Incoming, WebSocketMultiplayerPeer};
use multipeer_tests::interop_client::{Script, env_f64, env_or};

fn main() -> ExitCode {
    let url = env_or("MP_URL", "ws://127.0.0.1:9080");
    let version: u8 = if env_or("MP_VERSION", "4") == "3" { 3 } else { 4 };
    let timeout = env_f64("MP_TIMEOUT", 25.0);
    let mut peer =
        if version == 3 { WebSocketMultiplayerPeer::godot3() } else { WebSocketMultiplayerPeer::new() };
    if let Ok(outbound) = env_or("MP_OUTBOUND", "").parse::<usize>() {
        peer.set_outbound_buffer_size(outbound);
        println!("INFO outbound_buffer_size={outbound}");
    }
    let mut script = Script::from_env(peer, version);
    println!(
        "INFO role=client godot=multipeer-{}_protocol{version} name={} scenario={} url={url}",
        env!("CARGO_PKG_VERSION"),
        script.name,
        script.scenario
    );
    // As Godot's: returns at once, and a failed connect is reported as connection_failed.
    match script.peer.create_client(&url) {
        Ok(()) => println!("EVENT create_client err=0"),
        Err(e) => {
            println!(
                "EVENT create_client err={} error={}",
                e.godot_error().code(),
                e.to_string().replace(' ', "_")
            );
            script.finish("fail reason=create_client");
            return ExitCode::FAILURE;
        }
    }
    while script.finished().is_none() {
        if let Err(e) = script.peer.poll() {
            println!("INFO poll_error error={}", e.to_string().replace(' ', "_"));
        }
        // In the order things happened, as Godot's signals and packets come.
        while let Some(incoming) = script.peer.poll_next() {
            match incoming {
                Incoming::Event(event) => script.on_event(event),
                Incoming::Packet(data, info) => script.on_packet(info.from, &data),
            }
        }
        script.step(timeout);
        script.peer.wait(Duration::from_millis(10));
    }
    // Let a last Close frame or packet reach the wire before the process ends.
    script.peer.poll().ok();
    if script.finished() == Some(true) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

//! `multipeer serve`: a Godot multiplayer relay server on multipeer-mio.

mod args;
mod auth;
mod cluster;
mod deflate;
mod lobby;
mod status;

use core::time::Duration;
use std::process::ExitCode;

use multipeer::peer::{Protocol, RoomConfig, RoomMode};
use multipeer::scene::{SceneConfig, SceneMultiplayer};
use multipeer_mio::{Server, Stop, TlsOptions};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use args::{Command, ServeOptions};

fn main() -> ExitCode {
    let mut command_line = std::env::args_os().skip(1).peekable();
    if command_line.peek().is_some_and(|word| word == "lobby") {
        return lobby_main(command_line.skip(1));
    }
    match args::parse(command_line) {
        Ok(Command::Help) => {
            print!("{}", args::HELP);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("multipeer {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(options)) => match serve(*options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("multipeer: {message}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("multipeer: {e}\nTry 'multipeer serve --help'.");
            ExitCode::from(2)
        }
    }
}

fn serve(mut options: ServeOptions) -> Result<(), String> {
    // Before anything is announced: a signal right after "listening" must find the handler.
    let stop = Stop::new();
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot handle signals: {e}"))?;
    let on_signal = stop.clone();
    std::thread::spawn(move || {
        let mut received = signals.forever();
        if received.next().is_some() {
            on_signal.raise();
        }
        // A second signal while peers are being closed: leave at once.
        if received.next().is_some() {
            std::process::exit(130);
        }
    });

    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
            };
            let (cert_pem, key_pem) = (read("certificate", cert)?, read("private key", key)?);
            let tls = TlsOptions::server(&cert_pem, &key_pem)
                .map_err(|e| format!("TLS certificate {} / key {}: {e}", cert.display(), key.display()))?;
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let protocol = match (options.config.protocol, options.config.relay, &options.auth_token) {
        (Protocol::Godot3, ..) => "Godot 3",
        (_, true, None) => "Godot 4, relay on",
        (_, false, None) => "Godot 4, relay off",
        (_, true, Some(_)) => "Godot 4, relay on, auth token required",
        (_, false, Some(_)) => "Godot 4, relay off, auth token required",
    };
    // With a token, SceneMultiplayer speaks SYS (auth, then the relay's announcements) itself,
    // as Godot's does: the transport's own relay is off.
    let scene = options.auth_token.as_ref().map(|_| {
        let config = SceneConfig {
            auth: true,
            auth_timeout: options.auth_timeout,
            server_relay: options.config.relay,
            ..SceneConfig::default()
        };
        options.config.relay = false;
        SceneMultiplayer::new(config)
    });
    let rooms = rooms_summary(&options.config.rooms);
    let mut server = match tls {
        Some(tls) => Server::bind_tls(&options.listen, options.config, tls),
        None => Server::bind(&options.listen, options.config),
    }
    .map_err(|e| e.to_string())?;
    if scene.is_some() {
        server.set_scene_multiplayer(scene).map_err(|e| e.to_string())?;
    }
    for addr in server.local_addrs() {
        eprintln!("multipeer: listening on {scheme}://{addr} ({protocol}; {rooms})");
    }

    let gate = options.auth_token.as_deref().map(auth::AuthGate::new);
    let mut status =
        status::Status::new(options.quiet, options.verbose, gate).with_stats_json(options.stats_json);
    match options.cluster {
        None => {
            server
                .run(&stop, None, |server| status.tick(server))
                .map_err(|e| format!("event loop failed: {e}"))?;
        }
        Some(cluster) => cluster::run(cluster, &mut server, &stop, &mut status)?,
    }
    let left = server.peer().connection_count();
    if !options.quiet {
        eprintln!();
        eprintln!("multipeer: {}", status.farewell(&server));
    }
    if left > 0 {
        eprintln!("multipeer: {left} connections did not finish closing within {:?}", close_wait(&server));
    }
    Ok(())
}

/// How clients choose their room, for the start-up line.
fn rooms_summary(rooms: &RoomConfig) -> String {
    let declared = || {
        let names: Vec<String> = rooms.declared.iter().map(|n| format!("{}/{n}", rooms.prefix)).collect();
        names.join(" ")
    };
    match rooms.mode {
        RoomMode::Single => "one room, the path is ignored".into(),
        RoomMode::Declared => format!("rooms {}", declared()),
        _ if rooms.declared.is_empty() => format!("rooms by path {}/NAME", rooms.prefix),
        _ => format!("rooms by path {}/NAME, always {}", rooms.prefix, declared()),
    }
}

fn close_wait(server: &Server) -> Duration {
    server.peer().config().ws.close_timeout + Duration::from_secs(1)
}

/// `multipeer lobby [OPTIONS]`: the WebRTC signalling server (see `lobby::HELP`).
fn lobby_main(command_line: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let options = match lobby::parse(command_line) {
        Ok(options) if options.help => {
            print!("{}", lobby::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(options) => options,
        Err(e) => {
            eprintln!("multipeer: {e}\nTry 'multipeer lobby --help'.");
            return ExitCode::from(2);
        }
    };
    let stop = Stop::new();
    let result = match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let on_signal = stop.clone();
            std::thread::spawn(move || {
                let mut received = signals.forever();
                if received.next().is_some() {
                    on_signal.raise();
                }
                // A second signal while connections are being closed: leave at once.
                if received.next().is_some() {
                    std::process::exit(130);
                }
            });
            lobby::run(options, &stop)
        }
        Err(e) => Err(format!("cannot handle signals: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("multipeer: {message}");
            ExitCode::from(1)
        }
    }
}

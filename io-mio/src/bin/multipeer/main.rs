//! `multipeer serve`: a Godot multiplayer relay server on multipeer-mio.

mod args;
mod deflate;
mod lobby;
mod status;

use core::time::Duration;
use std::process::ExitCode;

use multipeer::peer::Protocol;
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

fn serve(options: ServeOptions) -> Result<(), String> {
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
    let protocol = match (options.config.protocol, options.config.relay) {
        (Protocol::Godot3, _) => "Godot 3",
        (_, true) => "Godot 4, relay on",
        (_, false) => "Godot 4, relay off",
    };
    let mut server = match tls {
        Some(tls) => Server::bind_tls(&options.listen, options.config, tls),
        None => Server::bind(&options.listen, options.config),
    }
    .map_err(|e| e.to_string())?;
    for addr in server.local_addrs() {
        eprintln!("multipeer: listening on {scheme}://{addr} ({protocol})");
    }

    let mut status = status::Status::new(options.quiet, options.verbose);
    server.run(&stop, None, |server| status.tick(server)).map_err(|e| format!("event loop failed: {e}"))?;
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

//! tokio-tungstenite echo server on a single-threaded tokio runtime, written the idiomatic way
//! (`accept_async`, then the read half forwarded into the write half, which flushes only when
//! the read side has nothing more ready: one write per batch, not per message).
//!
//! usage: tt_echo PORT

use futures_util::{StreamExt as _, TryStreamExt as _, future};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9002);
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("tt_echo: listening on 127.0.0.1:{port}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
                let (tx, rx) = ws.split();
                let _ = rx.try_filter(|m| future::ready(m.is_binary() || m.is_text())).forward(tx).await;
            });
        }
    })
}

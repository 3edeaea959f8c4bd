//! A relay server for Godot 4 clients: `WebSocketMultiplayerPeer.create_client("ws://HOST:9080")`.
use multipeer_std::WebSocketMultiplayerPeer;
use multipeer_std::multipeer::peer::{Event, Target};
fn main() -> Result<(), Box<dyn core::error::Error>> {
    let mut peer = WebSocketMultiplayerPeer::new(); // Godot 3.x: WebSocketMultiplayerPeer::godot3()
    peer.create_server(9080, "*")?;
    loop {
        peer.poll()?; // accept, read, relay between clients, write, run timers
        while let Some(event) = peer.poll_event() {
            if let Event::PeerConnected(id) = event {
                peer.set_target_peer(Target::Peer(id));
                peer.put_packet(format!("\x03welcome {id}").as_bytes())?; // 03 = send_bytes()
            }
        }
        while let Some((data, info)) = peer.get_packet() {
            println!("{} sent {} bytes", info.from, data.len());
        }
        peer.wait(core::time::Duration::from_millis(100));
    }
}

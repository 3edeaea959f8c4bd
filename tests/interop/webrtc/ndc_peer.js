// libdatachannel (npm node-datachannel) as a lobby mesh peer, with Godot's channel layout as
// webrtc-native (Godot desktop's WebRTC, built on libdatachannel) creates it: negotiated
// streams 1 "reliable", 2 "ordered" and 3 "unreliable" (unordered).
//
// usage: node ndc_peer.js URL LOBBY PEERS COUNT [--godot-literal]
//                         [--bind IP] [--turn HOST:PORT:USER:PASSWORD] [--relay-only]
//
// By default lanes 2 and 3 get maxPacketLifeTime = 1 ms, what Godot means. With
// --godot-literal they are created without it, which is what Godot actually passes: its option
// key is misspelt "maxPacketLifetime", so libdatachannel makes them reliable (see
// godot-protocol.md §6.2). By default loopback only: host candidates on 127.0.0.1. The NAT lab
// binds the LAN address (--bind) and gives a TURN server (UDP, long-term credentials) as
// Godot's iceServers would; --relay-only is iceTransportPolicy "relay".
const ndc = require('node-datachannel');
const WebSocket = require('ws');
const { runLobbyPeer } = require('./lobby_peer.js');

const [url, lobby, peers, count] = process.argv.slice(2);
const literal = process.argv.includes('--godot-literal');
const option = (name) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const bindAddress = option('--bind') || '127.0.0.1';
const turn = option('--turn');
const iceServers = [];
if (turn) {
  const [hostname, port, username, password] = turn.split(':');
  iceServers.push({ hostname, port: Number(port), username, password, relayType: 'TurnUdp' });
}
const iceTransportPolicy = process.argv.includes('--relay-only') ? 'relay' : 'all';
const lifetime = literal ? {} : { maxPacketLifeTime: 1 };
const LANES = [
  ['reliable', { negotiated: true, id: 1 }],
  ['ordered', { negotiated: true, id: 2, ...lifetime }],
  ['unreliable', { negotiated: true, id: 3, unordered: true, ...lifetime }],
];
let serial = 0;

const backend = {
  create(remote, offerer, events) {
    const pc = new ndc.PeerConnection(`peer-${remote}-${serial++}`, {
      iceServers, iceTransportPolicy, bindAddress, enableIceUdpMux: false, disableAutoNegotiation: true,
    });
    pc.onLocalDescription((sdp, type) => events.description(type.toLowerCase(), sdp));
    pc.onLocalCandidate((cand, mid) => events.candidate(mid, 0, cand));
    pc.onStateChange((state) => { if (state === 'failed' || state === 'closed') events.closed(); });
    const channels = LANES.map(([label, init], lane) => {
      const dc = pc.createDataChannel(label, init);
      dc.onOpen(() => events.open(lane));
      dc.onMessage((m) => events.message(lane, typeof m === 'string' ? Buffer.from(m) : Buffer.from(m)));
      return dc;
    });
    if (offerer) pc.setLocalDescription('offer');
    return {
      setRemote(type, sdp) {
        pc.setRemoteDescription(sdp, type);
        if (type === 'offer') pc.setLocalDescription('answer');
      },
      addCandidate(mid, _index, cand) {
        try { pc.addRemoteCandidate(cand, mid); } catch (e) { /* unusable candidate */ }
      },
      send(lane, bytes) { channels[lane].sendMessageBinary(Buffer.from(bytes)); },
      close() { pc.close(); },
      path() {
        const p = pc.getSelectedCandidatePair();
        return p && `${p.local.address}:${p.local.port} ${p.remote.address}:${p.remote.port} ${p.local.type} ${p.remote.type}`;
      },
    };
  },
};

runLobbyPeer({
  WebSocket, backend, print: (line) => console.log(line), url, lobby,
  peers: Number(peers), count: Number(count), timeoutMs: 30000,
}).then((ok) => { ndc.cleanup(); process.exit(ok ? 0 : 1); });

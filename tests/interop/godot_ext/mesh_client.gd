extends SceneTree
# A Godot 4 game client that meshes through a lobby the way Godot's networking/webrtc_signaling
# demo client does (a WebSocket to the lobby, one WebRTCPeerConnection per announced peer added
# to a WebRTCMultiplayerPeer mesh, the higher id of each pair offers), using only Godot's own
# classes: the WebRTC engine comes from whatever default extension is loaded (here multipeer's
# GDExtension).
#
#   MP_LOBBY_URL=ws://127.0.0.1:PORT MP_PEERS=1 godot4 --headless --path PROJECT -s mesh_client.gd
#
# Environment:
#   MP_LOBBY_URL  the lobby (Godot's webrtc_signaling protocol, e.g. `multipeer lobby`)
#   MP_LOBBY      lobby name to join; empty (default) creates one and prints `lobby NAME`
#   MP_PEERS      number of other peers to complete with (default 1)
#   MP_COUNT      packets per lane (default 100)
#   MP_MODE       scene (default): SceneMultiplayer on top, packets with send_bytes, plus
#                 MP_COUNT reliable RPCs each way; raw: WebRTCMultiplayerPeer's put_packet and
#                 get_packet directly (the rules of tests/interop/webrtc/lobby_peer.js, so it
#                 meshes with mesh_node, Chromium and node-datachannel)
#   MP_ICE        optional ICE server URL passed to initialize() (e.g. stun:127.0.0.1:3478)
#   MP_ICE_USER, MP_ICE_CREDENTIAL  its username and credential (a turn: server's)
#   MP_ICE_POLICY optional iceTransportPolicy passed to initialize() ("relay": relay only)
#   MP_TIMEOUT    give up after this many seconds (default 30)
#   MP_PACE       1: send one packet per lane (and one RPC) per frame instead of all at once
#   MP_PAD        pad every lane packet with `|` and this many bytes (default 0), so that
#                 each one travels in a datagram of its own
#
# Rules per pair, as lobby_peer.js: once connected, send MP_COUNT packets on each lane
# (`r:SEQ` reliable, `o:SEQ` unreliable ordered, `u:SEQ` unreliable); reliable ones must all
# arrive in order, ordered ones never go backwards, unreliable ones never twice. After all
# reliable packets (and in scene mode all RPCs) of a peer arrived, send it `fin` (reliable);
# a pair is complete when its `fin` arrived too: `result ID reliable=R ordered=O unreliable=U
# rpc=P`. Ends with `done` (exit 0) or `fail REASON` (exit 1), then, after lingering,
# `stats ID ...` per peer: everything received by then. In scene mode (Godot peers only) a
# pair's completion is also acknowledged: `bye` (reliable), sent when it completes, tells the
# other side its `fin` arrived, so that a peer keeps its connection (and the retransmission of
# its own `fin`) until each completed peer said `bye` or left, instead of for a fixed time:
# under 10% loss a `fin` retransmitted with backed-off timers outlived a 2.5 s linger.

enum Message { JOIN, ID, PEER_CONNECT, PEER_DISCONNECT, OFFER, ANSWER, CANDIDATE, SEAL }
const LANES := ["r", "o", "u"]
const MODES := [MultiplayerPeer.TRANSFER_MODE_RELIABLE, MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED, MultiplayerPeer.TRANSFER_MODE_UNRELIABLE]


# The signalling half, as the demo's ws_webrtc_client.gd: JSON messages over a WebSocket.
class LobbyClient:
	signal lobby_joined(lobby: String)
	signal connected(id: int, use_mesh: bool)
	signal peer_connected(id: int)
	signal peer_disconnected(id: int)
	signal offer_received(id: int, offer: String)
	signal answer_received(id: int, answer: String)
	signal candidate_received(id: int, mid: String, index: int, sdp: String)
	signal closed

	var ws := WebSocketPeer.new()
	var lobby := ""
	var old_state := WebSocketPeer.STATE_CLOSED

	func connect_to_url(url: String, lobby_name: String) -> Error:
		lobby = lobby_name
		return ws.connect_to_url(url)

	func poll() -> void:
		ws.poll()
		var state := ws.get_ready_state()
		if state != old_state and state == WebSocketPeer.STATE_OPEN:
			send_msg(Message.JOIN, 0, lobby)  # id 0: a mesh lobby
		if state != old_state and state == WebSocketPeer.STATE_CLOSED:
			closed.emit()
		old_state = state
		while state == WebSocketPeer.STATE_OPEN and ws.get_available_packet_count() > 0:
			if not parse_msg():
				print("bad lobby message")

	func parse_msg() -> bool:
		var parsed = JSON.parse_string(ws.get_packet().get_string_from_utf8())
		if typeof(parsed) != TYPE_DICTIONARY or not parsed.has("type") or not parsed.has("id") or typeof(parsed.get("data")) != TYPE_STRING:
			return false
		var type := int(parsed.type)
		var src_id := int(parsed.id)
		match type:
			Message.JOIN: lobby_joined.emit(parsed.data)
			Message.ID: connected.emit(src_id, parsed.data == "true")
			Message.PEER_CONNECT: peer_connected.emit(src_id)
			Message.PEER_DISCONNECT: peer_disconnected.emit(src_id)
			Message.OFFER: offer_received.emit(src_id, parsed.data)
			Message.ANSWER: answer_received.emit(src_id, parsed.data)
			Message.CANDIDATE:
				var candidate: PackedStringArray = parsed.data.split("\n", false)
				if candidate.size() != 3 or not candidate[1].is_valid_int():
					return false
				candidate_received.emit(src_id, candidate[0], candidate[1].to_int(), candidate[2])
			Message.SEAL: pass
			_: return false
		return true

	func send_msg(type: int, id: int, data: String) -> void:
		ws.send_text(JSON.stringify({"type": type, "id": id, "data": data}))


class RpcNode extends Node:
	var game  # the SceneTree script, told about every call

	@rpc("any_peer", "call_remote", "reliable")
	func ping(seq: int) -> void:
		game.on_ping(multiplayer.get_remote_sender_id(), seq)


var lobby_client := LobbyClient.new()
var rtc_mp := WebRTCMultiplayerPeer.new()
var rpc_node: RpcNode
var mode := "scene"
var peers := 1
var count := 100
var ice := ""
var timeout := 30.0
var pad := ""
var pace := false
var started_ms := Time.get_ticks_msec()
var my_id := 0
var pairs := {}  # id -> Dictionary of counters
var complete := 0
var failed_pairs := 0
var finished := false
var exit_code := 1
# Seconds lingered since `finished`: at least LINGER_MIN (late packets are counted), in scene
# mode until every completed peer said `bye` or left, at most LINGER_MAX; in raw mode (whose
# foreign peers know no `bye`) LINGER_RAW.
var lingered := 0.0
const LINGER_MIN := 1.0
const LINGER_MAX := 15.0
const LINGER_RAW := 2.5


func env(key: String, fallback: String) -> String:
	var v := OS.get_environment(key)
	return v if v != "" else fallback


func _initialize() -> void:
	Engine.max_fps = 200  # headless Godot would otherwise spin a core
	mode = env("MP_MODE", "scene")
	peers = int(env("MP_PEERS", "1"))
	count = int(env("MP_COUNT", "100"))
	ice = env("MP_ICE", "")
	timeout = float(env("MP_TIMEOUT", "30"))
	pace = env("MP_PACE", "0") == "1"
	var pad_len := int(env("MP_PAD", "0"))
	if pad_len > 0:
		pad = "|" + "x".repeat(pad_len)
	print("godot %s mode=%s" % [Engine.get_version_info()["string"], mode])
	lobby_client.lobby_joined.connect(func(name): print("lobby %s" % name))
	lobby_client.connected.connect(_connected)
	lobby_client.peer_connected.connect(_create_peer)
	lobby_client.peer_disconnected.connect(func(id): if rtc_mp.has_peer(id): rtc_mp.remove_peer(id))
	lobby_client.offer_received.connect(_offer_received)
	lobby_client.answer_received.connect(_answer_received)
	lobby_client.candidate_received.connect(_candidate_received)
	lobby_client.closed.connect(func(): if my_id == 0: fail("lobby closed before our id"))
	rpc_node = RpcNode.new()
	rpc_node.name = "Rpc"
	rpc_node.game = self
	root.add_child(rpc_node)
	var err := lobby_client.connect_to_url(env("MP_LOBBY_URL", "ws://127.0.0.1:9080"), env("MP_LOBBY", ""))
	if err != OK:
		fail("connect_to_url error %d" % err)


func _connected(id: int, use_mesh: bool) -> void:
	my_id = id
	print("id %d" % id)
	if not use_mesh:
		fail("the lobby is not a mesh")
		return
	rtc_mp.create_mesh(id)
	if mode == "scene":
		var mp := get_multiplayer() as SceneMultiplayer
		mp.peer_connected.connect(_peer_ready)
		mp.peer_disconnected.connect(_peer_gone)
		mp.peer_packet.connect(func(id, packet): _receive(id, -1, packet.get_string_from_utf8()))
		mp.multiplayer_peer = rtc_mp
	else:
		rtc_mp.peer_connected.connect(_peer_ready)
		rtc_mp.peer_disconnected.connect(_peer_gone)


# As the demo: one WebRTCPeerConnection per peer, the higher id offers.
func _create_peer(id: int) -> void:
	var peer := WebRTCPeerConnection.new()
	var config := {}
	if ice != "":
		var server := {"urls": [ice]}
		if env("MP_ICE_USER", "") != "":
			server["username"] = env("MP_ICE_USER", "")
			server["credential"] = env("MP_ICE_CREDENTIAL", "")
		config["iceServers"] = [server]
	if env("MP_ICE_POLICY", "") != "":
		config["iceTransportPolicy"] = env("MP_ICE_POLICY", "")
	var err := peer.initialize(config)
	if err != OK:
		fail("initialize error %d (is the WebRTC extension loaded?)" % err)
		return
	peer.session_description_created.connect(_offer_created.bind(id))
	peer.ice_candidate_created.connect(_new_ice_candidate.bind(id))
	err = rtc_mp.add_peer(peer, id)
	if err != OK:
		fail("add_peer error %d" % err)
		return
	pairs[id] = {"counts": [0, 0, 0], "last": -1, "seen": {}, "pings": 0, "fin_in": false, "fin_out": false, "done": false, "failed": false, "next": -1, "bye_in": false, "gone": false}
	if id < rtc_mp.get_unique_id():
		err = peer.create_offer()
		if err != OK:
			fail("create_offer error %d" % err)


func _offer_created(type: String, data: String, id: int) -> void:
	if not rtc_mp.has_peer(id):
		return
	rtc_mp.get_peer(id).connection.set_local_description(type, data)
	lobby_client.send_msg(Message.OFFER if type == "offer" else Message.ANSWER, id, data)


func _new_ice_candidate(mid: String, index: int, sdp: String, id: int) -> void:
	lobby_client.send_msg(Message.CANDIDATE, id, "\n%s\n%d\n%s" % [mid, index, sdp])


func _offer_received(id: int, offer: String) -> void:
	if rtc_mp.has_peer(id):
		rtc_mp.get_peer(id).connection.set_remote_description("offer", offer)


func _answer_received(id: int, answer: String) -> void:
	if rtc_mp.has_peer(id):
		rtc_mp.get_peer(id).connection.set_remote_description("answer", answer)


func _candidate_received(id: int, mid: String, index: int, sdp: String) -> void:
	if rtc_mp.has_peer(id):
		rtc_mp.get_peer(id).connection.add_ice_candidate(mid, index, sdp)


func _peer_ready(id: int) -> void:
	if not pairs.has(id):
		return
	print("connected %d" % id)
	if pace:
		pairs[id].next = 0  # _process sends one sequence number per frame
		return
	for lane in 3:
		for seq in count:
			_send(id, lane, "%s:%d%s" % [LANES[lane], seq, pad])
	if mode == "scene":
		for seq in count:
			rpc_node.rpc_id(id, "ping", seq)


func _send_paced() -> void:
	for id in pairs:
		var c: Dictionary = pairs[id]
		if c.next < 0 or c.next >= count or c.failed:
			continue
		for lane in 3:
			_send(id, lane, "%s:%d%s" % [LANES[lane], c.next, pad])
		if mode == "scene":
			rpc_node.rpc_id(id, "ping", c.next)
		c.next += 1


func _peer_gone(id: int) -> void:
	if pairs.has(id):
		pairs[id].gone = true
		pair_fail(id, "disconnected before completing")


func _send(id: int, lane: int, text: String) -> void:
	if mode == "scene":
		(get_multiplayer() as SceneMultiplayer).send_bytes(text.to_utf8_buffer(), id, MODES[lane], 0)
	else:
		rtc_mp.set_target_peer(id)
		rtc_mp.transfer_mode = MODES[lane]
		rtc_mp.transfer_channel = 0
		var err := rtc_mp.put_packet(text.to_utf8_buffer())
		if err != OK:
			print("put_packet error %d on lane %d" % [err, lane])


func on_ping(from: int, seq: int) -> void:
	if not pairs.has(from):
		return
	var c: Dictionary = pairs[from]
	if seq != c.pings:
		pair_fail(from, "rpc ping %d after %d" % [seq, c.pings])
		return
	c.pings += 1
	_maybe_fin(from, c)


# lane: 0..2, or -1 when unknown (SceneMultiplayer does not say): then the tag tells.
func _receive(id: int, lane: int, text: String) -> void:
	if not pairs.has(id):
		return
	var c: Dictionary = pairs[id]
	if c.failed:
		return
	if text == "bye" and mode == "scene":
		# After its `fin` on the same reliable lane: the pair is complete here already.
		if lane > 0 or not c.done:
			pair_fail(id, "bye on lane %d before completing" % lane)
			return
		c.bye_in = true
		return
	if text == "fin":
		if lane > 0:
			pair_fail(id, "fin on lane %d" % lane)
			return
		c.fin_in = true
	else:
		var parts := text.get_slice("|", 0).split(":")
		var tag_lane := LANES.find(parts[0]) if parts.size() == 2 else -1
		if lane == -1:
			lane = tag_lane
		if tag_lane == -1 or tag_lane != lane or not parts[1].is_valid_int() or int(parts[1]) < 0 or int(parts[1]) >= count:
			pair_fail(id, "%s on lane %d" % [JSON.stringify(text), lane])
			return
		var seq := int(parts[1])
		if lane == 0 and seq != c.counts[0]:
			pair_fail(id, "reliable %d after %d" % [seq, c.counts[0]])
			return
		if lane == 1:
			if seq <= c.last:
				pair_fail(id, "ordered %d after %d" % [seq, c.last])
				return
			c.last = seq
		if lane == 2:
			if c.seen.has(seq):
				pair_fail(id, "unreliable %d twice" % seq)
				return
			c.seen[seq] = true
		c.counts[lane] += 1
	_maybe_fin(id, c)


func _maybe_fin(id: int, c: Dictionary) -> void:
	var pings_done: bool = mode != "scene" or c.pings == count
	if c.counts[0] == count and pings_done and not c.fin_out:
		c.fin_out = true
		_send(id, 0, "fin")
	if c.fin_in and c.fin_out and not c.done:
		c.done = true
		complete += 1
		if mode == "scene":
			_send(id, 0, "bye")
		print("result %d reliable=%d ordered=%d unreliable=%d rpc=%d" % [id, c.counts[0], c.counts[1], c.counts[2], c.pings])
		if complete >= peers:
			finish(true, "done")
		elif complete + failed_pairs >= peers:
			fail("%d of %d pairs failed" % [failed_pairs, peers])


func pair_fail(id: int, why: String) -> void:
	var c: Dictionary = pairs[id]
	if finished or c.done or c.failed:
		return
	c.failed = true
	failed_pairs += 1
	print("pairfail %d %s (counts %s, rpc %d, fin in/out %s/%s)" % [id, why, c.counts, c.pings, c.fin_in, c.fin_out])
	if complete + failed_pairs >= peers:
		fail("%d of %d pairs failed" % [failed_pairs, peers])


func fail(why: String) -> void:
	finish(false, "fail " + why)


func finish(ok: bool, line: String) -> void:
	if finished:
		return
	finished = true
	print(line)
	exit_code = 0 if ok else 1
	# Linger so that our last packets (a `fin`) and acknowledgements get through, and count
	# what still arrives (WebRTCMultiplayerPeer reads the reliable channel first, so a `fin`
	# may complete a pair before its other lanes were read). A peer that closes before its
	# `fin` arrived loses the pair for the other side: in raw mode the linger outlasts one
	# SCTP retransmission timeout (1 s at least; a `fin` was seen arriving about 1 s late in
	# three-process meshes), in scene mode it lasts until the other side said `bye`.
	lingered = 0.0


func _process(delta: float) -> bool:
	lobby_client.poll()
	if pace:
		_send_paced()
	if mode == "raw" and my_id != 0:
		rtc_mp.poll()
		while rtc_mp.get_available_packet_count() > 0:
			var from := rtc_mp.get_packet_peer()
			var lane := MODES.find(rtc_mp.get_packet_mode())
			_receive(from, lane, rtc_mp.get_packet().get_string_from_utf8())
	if not finished and (Time.get_ticks_msec() - started_ms) / 1000.0 > timeout:
		var state := []
		for id in pairs:
			state.append("%d:%s/pings=%d/fin=%s/%s" % [id, pairs[id].counts, pairs[id].pings, pairs[id].fin_in, pairs[id].fin_out])
		fail("timeout (%d of %d peers complete; %s)" % [complete, peers, " ".join(state)])
	if finished:
		lingered += delta
		if _linger_over():
			for id in pairs:
				print("stats %d reliable=%d ordered=%d unreliable=%d rpc=%d" % [id, pairs[id].counts[0], pairs[id].counts[1], pairs[id].counts[2], pairs[id].pings])
			rtc_mp.close()
			lobby_client.ws.close()
			quit(exit_code)
	return false


func _linger_over() -> bool:
	if complete == 0:
		return true
	if mode != "scene":
		return lingered >= LINGER_RAW
	if lingered < LINGER_MIN:
		return false
	if lingered >= LINGER_MAX:
		return true
	for id in pairs:
		var c: Dictionary = pairs[id]
		if c.done and not c.bye_in and not c.gone:
			return false
	return true

extends SceneTree
# Godot 4 WebSocketMultiplayerPeer client driven by SceneMultiplayer (server relay on).
#
#   MP_URL=ws://127.0.0.1:PORT MP_NAME=A MP_PEERS=3 godot4 --headless -s g4_client.gd
#
# Environment (all optional except MP_URL):
#   MP_URL       server URL
#   MP_NAME      this client's name; every client of one session needs a different name
#   MP_SCENARIO  main (default) | size | refuse | connect-only   (see README.md)
#   MP_PEERS     number of clients in the session, this one included (main/size; default 3)
#   MP_CONTROL   1 (default): ask the server for actions with "ctl:" raw packets; 0: never
#   MP_OUTBOUND  outbound_buffer_size of this client's peer (default: Godot's, 65535)
#   MP_HOLD      refuse scenario: seconds to keep the server refusing (default 5)
#   MP_TIMEOUT   give up after this many seconds (default 25)
#   MP_LINGER    connect-only: seconds to stay connected (default 0.5)
#   MP_SHUTDOWN  connect-only: 1 = send "ctl:shutdown" to the server before leaving
#   MP_OVERSIZE  size scenario: length of the last client's oversized raw packet
#   MP_EXPECT_FAIL  connect-only: 1 = success is connection_failed before any id arrives
#   MP_TLS       wss:// only: "unsafe" = TLSOptions.client_unsafe(); "ca" = TLSOptions.client()
#                trusting only the PEM certificate MP_TLS_CA (host name checked); empty =
#                Godot's default, TLSOptions.client() with its bundled roots
#   MP_TLS_NAME  with "ca": common_name_override (default: the URL's host)
#
# Output: one machine-readable line per fact (EVENT, SEND, RECV, RPC, NAME, INFO, RESULT).
# The process always ends by itself: exit code 0 with "RESULT ok", 1 otherwise.
#
# The main scenario, seen from one client (names sorted: the first finishes, the last leaves
# early, the ones in between ask the server to disconnect them):
#   connected -> "hello|me" to the server; on each other peer -> "intro|me" to it (relayed);
#   once every other client is introduced -> "bcast|me" to 0, "excl|me|next" to -next,
#   "noserver|me" to -1, rpc greet(me) on next, "ctl:server-traffic" to 1, size probes (first
#   client only), then "sent|me" to 0; once "sent|X" came from every other client the inbox is
#   complete (each sender's packets arrive in order) and the leave phase starts.

const RAW_DIRECT_MAX := 65534   # 1 SceneMultiplayer byte + data = 65535 = outbound_buffer_size
const RAW_RELAY_MAX := 65528    # 07 03 <i32 target> + 1 byte + data = 65535

class RpcNode extends Node:
	# Same path (/root/Rpc) on every peer, so SceneMultiplayer can resolve the call.
	@rpc("any_peer", "call_remote", "reliable")
	func greet(arg: String) -> void:
		var from := multiplayer.get_remote_sender_id()
		print("RPC greet from=%d arg=%s" % [from, arg])

var peer := WebSocketMultiplayerPeer.new()
var mp: SceneMultiplayer
var server_ws: WebSocketPeer  # the connection to the server, kept to read how it closed
var rpc_node: RpcNode

var url := ""
var my_name := "A"
var scenario := "main"
var peers_total := 3
var control := true
var hold := 5.0
var timeout := 25.0
var expect_fail := false

var t := 0.0
var start_ms := Time.get_ticks_msec()
var my_id := 0
var connected := false
var finished := false
var result := ""
var names := {}          # id -> name of the other clients, learnt from "intro|name"
var introduced := {}     # ids we already sent our intro to
var sent_from := {}      # ids whose "sent|" arrived
var gone := {}           # ids seen in peer_disconnected
var traffic_sent := false
var phase := ""          # leave-phase state
var phase_t := 0.0
var newcomers := 0       # refuse scenario: clients admitted after "ctl:accept"
var srv_bcast := 0        # server-originated packets counted, because a 3.x server relays
var srv_excl := 0         # before its script sees "ctl:" (so they may trail "sent|X")
var got_srv_to := false
var got_big_server := false
var probing := false      # this client sent the size probes (and "ctl:big")

func env(key: String, fallback: String) -> String:
	var v := OS.get_environment(key)
	return v if v != "" else fallback

func _initialize() -> void:
	Engine.max_fps = 100  # Headless Godot would otherwise spin a core per process.
	url = env("MP_URL", "ws://127.0.0.1:9080")
	my_name = env("MP_NAME", "A")
	scenario = env("MP_SCENARIO", "main")
	peers_total = int(env("MP_PEERS", "3"))
	control = env("MP_CONTROL", "1") != "0"
	hold = float(env("MP_HOLD", "5"))
	timeout = float(env("MP_TIMEOUT", "25"))
	expect_fail = env("MP_EXPECT_FAIL", "0") == "1"
	print("INFO role=client godot=%s name=%s scenario=%s url=%s" % [
		Engine.get_version_info()["string"].replace(" ", "_"), my_name, scenario, url])

	rpc_node = RpcNode.new()
	rpc_node.name = "Rpc"
	root.add_child(rpc_node)

	mp = get_multiplayer() as SceneMultiplayer
	mp.server_relay = true
	mp.connected_to_server.connect(_on_connected)
	mp.connection_failed.connect(func(): _event("connection_failed"); _on_gone_from_server())
	mp.server_disconnected.connect(func(): _server_close(); _event("server_disconnected"); _on_gone_from_server())
	mp.peer_connected.connect(_on_peer_connected)
	mp.peer_disconnected.connect(_on_peer_disconnected)
	mp.peer_packet.connect(_on_packet)

	var outbound := env("MP_OUTBOUND", "")
	if outbound != "":
		peer.outbound_buffer_size = int(outbound)
		print("INFO outbound_buffer_size=%d" % peer.outbound_buffer_size)
	var err := OK
	var tls := _tls_options()
	if tls != null:
		err = peer.create_client(url, tls)
	else:
		err = peer.create_client(url)
	print("EVENT create_client err=%d" % err)
	if err != OK:
		_finish("fail reason=create_client_err_%d" % err)
		return
	mp.multiplayer_peer = peer

func _tls_options() -> TLSOptions:
	var mode := env("MP_TLS", "")
	if not url.begins_with("wss://") or mode == "":
		return null
	if mode == "unsafe":
		print("INFO tls=client_unsafe")
		return TLSOptions.client_unsafe()
	var ca := X509Certificate.new()
	var err := ca.load(env("MP_TLS_CA", ""))
	print("INFO tls=client ca=%s load_err=%d name=%s" % [env("MP_TLS_CA", ""), err, env("MP_TLS_NAME", "")])
	return TLSOptions.client(ca, env("MP_TLS_NAME", ""))

func _event(what: String) -> void:
	print("EVENT %s t_ms=%d" % [what, Time.get_ticks_msec() - start_ms])

# How the server connection closed, from the WebSocketPeer kept since connected_to_server
# (get_close_code()/get_close_reason() stay readable on it after the multiplayer peer let it go).
func _server_close() -> void:
	if server_ws:
		var reason := server_ws.get_close_reason()
		_event("server_close code=%d reason=%s reason_hex=%s" % [
			server_ws.get_close_code(), reason.replace(" ", "_"), reason.to_utf8_buffer().hex_encode()])

func _on_connected() -> void:
	connected = true
	server_ws = peer.get_peer(1)
	my_id = mp.get_unique_id()
	_event("connected_to_server id=%d" % my_id)
	match scenario:
		"connect-only":
			phase = "linger"
			phase_t = 0.0
		"refuse":
			_send("ctl:refuse".to_utf8_buffer(), 1, "ctl:refuse")
		_:
			_send(("hello|%s" % my_name).to_utf8_buffer(), 1, "hello")

func _on_peer_connected(id: int) -> void:
	_event("peer_connected id=%d" % id)
	if expect_fail and id == 1:
		_finish("fail reason=connected_but_expected_failure")
	if id != 1 and not connected:
		print("INFO peer_connected_before_connected_to_server id=%d" % id)
	if id != 1 and scenario == "refuse" and phase == "await_newcomer":
		newcomers += 1
	if id != 1 and scenario in ["main", "size"] and not introduced.has(id):
		introduced[id] = true
		_send(("intro|%s" % my_name).to_utf8_buffer(), id, "intro")

func _on_peer_disconnected(id: int) -> void:
	_event("peer_disconnected id=%d" % id)
	gone[id] = true

func _on_gone_from_server() -> void:
	connected = false
	if phase == "await_kick" or phase == "closing" or phase == "await_server_close":
		_finish("ok")
	elif scenario == "size":
		_finish("ok")
	elif scenario == "connect-only" and phase == "linger":
		_finish("ok")
	elif scenario == "connect-only" and expect_fail and my_id == 0:
		_finish("ok")
	elif not finished:
		_finish("fail reason=lost_connection phase=%s" % phase)

func _send(data: PackedByteArray, to: int, tag: String) -> int:
	var err := mp.send_bytes(data, to)
	print("SEND to=%d len=%d err=%d tag=%s" % [to, data.size(), err, tag])
	return err

func _big(n: int, tag: String) -> PackedByteArray:
	var head := ("big|%s|%d|%s|" % [my_name, n, tag]).to_utf8_buffer()
	var data := PackedByteArray()
	data.resize(n)
	data.fill(0x78)  # 'x'
	for i in range(min(head.size(), n)):
		data[i] = head[i]
	return data

func _on_packet(id: int, packet: PackedByteArray) -> void:
	var text := packet.slice(0, 48).get_string_from_utf8()
	var printable := text.replace(" ", "_").replace("\n", "_")
	print("RECV from=%d mode=raw len=%d text=%s bytes=%s" % [
		id, packet.size(), printable, packet.slice(0, 32).hex_encode()])
	var parts := text.split("|")
	match parts[0]:
		"intro":
			if parts.size() > 1 and not names.has(id):
				names[id] = parts[1]
				print("NAME id=%d name=%s" % [id, parts[1]])
				_maybe_start_traffic()
		"sent":
			sent_from[id] = true
		"srv-bcast":
			srv_bcast += 1
		"srv-excl":
			srv_excl += 1
		"srv-to":
			got_srv_to = true
		"big":
			if parts.size() > 1 and parts[1] == "server":
				got_big_server = true
		"ack":
			if parts.size() > 1 and parts[1] == "refuse":
				_event("refusing")
				phase = "holding"
				phase_t = 0.0
			elif parts.size() > 1 and parts[1] == "accept":
				_event("accepting")
				phase = "await_newcomer"
				phase_t = 0.0

func _sorted_names() -> Array:
	var all := names.values()
	all.append(my_name)
	all.sort()
	return all

func _id_of(n: String) -> int:
	for id in names:
		if names[id] == n:
			return id
	return 0

func _next_name() -> String:
	var all := _sorted_names()
	return all[(all.find(my_name) + 1) % all.size()]

func _maybe_start_traffic() -> void:
	if traffic_sent or names.size() < peers_total - 1:
		return
	traffic_sent = true
	var next_name := _next_name()
	var next_id := _id_of(next_name)
	print("INFO all_introduced next=%s next_id=%d" % [next_name, next_id])
	if scenario == "size":
		if my_name == _sorted_names()[0]:
			_size_probes(next_id)
	else:
		_send(("bcast|%s" % my_name).to_utf8_buffer(), 0, "bcast")
		_send(("excl|%s|%s" % [my_name, next_name]).to_utf8_buffer(), -next_id, "excl")
		_send(("noserver|%s" % my_name).to_utf8_buffer(), -1, "noserver")
		var err := rpc_node.rpc_id(next_id, "greet", my_name)
		print("SEND to=%d rpc=greet err=%d tag=rpc" % [next_id, err])
		if control:
			_send("ctl:server-traffic".to_utf8_buffer(), 1, "ctl:server-traffic")
		if my_name == _sorted_names()[0]:
			_size_probes(next_id)
	_send(("sent|%s" % my_name).to_utf8_buffer(), 0, "sent")

func _size_probes(next_id: int) -> void:
	probing = true
	# Largest raw packet that fits one 65535-byte message, and one byte more (error 6 expected
	# at the sender: SceneMultiplayer's byte is counted against outbound_buffer_size).
	_send(_big(RAW_DIRECT_MAX, "direct-max"), 1, "big-direct-max")
	_send(_big(RAW_DIRECT_MAX + 1, "direct-over"), 1, "big-direct-over")
	_send(_big(RAW_RELAY_MAX, "relay-max"), next_id, "big-relay-max")
	_send(_big(RAW_RELAY_MAX + 1, "relay-over"), next_id, "big-relay-over")
	if control:
		_send("ctl:big".to_utf8_buffer(), 1, "ctl:big")

func _finish(r: String) -> void:
	if finished:
		return
	finished = true
	result = r
	print("RESULT %s" % r)
	quit(0 if r == "ok" else 1)

func _quiet() -> bool:
	# Every packet addressed to this client has arrived: each sender's packets come in order,
	# and the server's answers to "ctl:" requests are counted.
	if not traffic_sent or sent_from.size() < peers_total - 1:
		return false
	if not control:
		return true
	if probing and not got_big_server:
		return false
	if scenario == "size":
		return true
	return srv_bcast >= peers_total and srv_excl >= peers_total - 1 and got_srv_to

func _leave_self(why: String) -> void:
	# Clean close: Close 4001 "leaving"; SceneMultiplayer reports server_disconnected afterwards.
	_event("leaving why=%s" % why)
	phase = "closing"
	phase_t = 0.0
	var ws := peer.get_peer(1)
	if ws:
		ws.close(4001, "leaving")
	else:
		peer.close()

func _process(delta: float) -> bool:
	t += delta
	phase_t += delta
	if finished:
		return false
	if t > timeout:
		_finish("fail reason=timeout phase=%s" % phase)
		return false
	match scenario:
		"main":
			_step_main()
		"size":
			_step_size()
		"refuse":
			_step_refuse()
		"connect-only":
			if phase == "linger" and phase_t > float(env("MP_LINGER", "0.5")):
				if env("MP_SHUTDOWN", "0") == "1":
					phase = "await_server_close"
					phase_t = 0.0
					_send("ctl:shutdown".to_utf8_buffer(), 1, "ctl:shutdown")
				else:
					_finish("ok")
			elif phase == "await_server_close" and phase_t > 1.5:
				_leave_self("server_still_open")
	if phase == "closing" and phase_t > 3.0:
		_finish("fail reason=close_not_confirmed")
	return false

func _step_main() -> void:
	if not connected or not _quiet():
		return
	var all := _sorted_names()
	var first: String = all[0]
	var last: String = all[all.size() - 1]
	if phase == "":
		phase = "quiet"
		phase_t = 0.0
		_event("quiet")
	if my_name == last and all.size() > 1:
		if phase == "quiet" and phase_t > 0.3:
			_leave_self("early_leaver")
		return
	var leaver_gone := gone.has(_id_of(last))
	if my_name != first:
		if phase == "quiet" and leaver_gone:
			if control:
				phase = "await_kick"
				phase_t = 0.0
				_send("ctl:kick-me".to_utf8_buffer(), 1, "ctl:kick-me")
			else:
				_leave_self("no_control")
		elif phase == "await_kick" and phase_t > 3.0:
			_event("kick_timeout")
			_leave_self("kick_timeout")
		return
	# The first client waits for everybody else to be gone, then stops the server.
	if phase == "quiet" and gone.size() >= all.size() - 1:
		if control:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8_buffer(), 1, "ctl:shutdown")
		else:
			_leave_self("done")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

func _step_size() -> void:
	# After the probes, the last client sends one message too big for the server (a Godot 4
	# sender needs MP_OUTBOUND raised to do so); then the first client stops the server.
	if not connected or not _quiet():
		if phase == "await_server_close" and phase_t > 1.5:
			_leave_self("server_still_open")
		return
	var all := _sorted_names()
	if phase == "":
		phase = "quiet"
		phase_t = 0.0
		_event("quiet")
	if phase == "quiet" and phase_t > 0.5:
		phase = "oversize_sent"
		phase_t = 0.0
		if my_name == all[all.size() - 1]:
			var n := int(env("MP_OVERSIZE", str(RAW_DIRECT_MAX + 1)))
			_send(_big(n, "oversize"), 1, "big-oversize")
	elif phase == "oversize_sent" and phase_t > 2.5:
		if my_name == all[0] and control:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8_buffer(), 1, "ctl:shutdown")
		else:
			_leave_self("size_done")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

func _step_refuse() -> void:
	if phase == "holding" and phase_t > hold:
		phase = "await_accept"
		_send("ctl:accept".to_utf8_buffer(), 1, "ctl:accept")
	elif phase == "await_newcomer":
		if newcomers > 0 and phase_t > 1.2:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8_buffer(), 1, "ctl:shutdown")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

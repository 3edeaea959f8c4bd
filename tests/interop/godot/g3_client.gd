extends SceneTree
# Godot 3.2.3 WebSocketClient with the multiplayer API (connect_to_url(..., true)).
#
#   MP_URL=ws://127.0.0.1:PORT MP_NAME=A MP_PEERS=3 godot3-server -s g3_client.gd
#
# Same environment, scenarios and output lines as g4_client.gd (see README.md):
#   MP_URL, MP_NAME, MP_SCENARIO (main | size | refuse | connect-only), MP_PEERS, MP_CONTROL,
#   MP_HOLD, MP_TIMEOUT, MP_LINGER, MP_SHUTDOWN, MP_OVERSIZE, MP_EXPECT_FAIL.
# Differences that come from Godot 3.2.3 itself:
#   - every loss of the connection is reported as connection_failed (never server_disconnected);
#   - the 9-byte header and MultiplayerAPI's RAW byte (04) count against the receiver's
#     65535-byte limit, and 3.2.3 does not limit what it sends, so "over" probes are sent
#     (err=0) and are dropped by the receiver.

const RAW_MAX = 65525   # 9-byte header + 1 RAW byte + data = 65535

class RpcNode extends Node:
	# Same path (/root/Rpc) on every peer.
	remote func greet(arg):
		print("RPC greet from=%d arg=%s" % [get_tree().get_rpc_sender_id(), arg])

var client = WebSocketClient.new()
var rpc_node

var url = ""
var my_name = "A"
var scenario = "main"
var peers_total = 3
var control = true
var hold = 5.0
var timeout = 25.0
var expect_fail = false

var t = 0.0
var start_ms = OS.get_ticks_msec()
var my_id = 0
var connected = false
var finished = false
var names = {}
var introduced = {}
var sent_from = {}
var gone = {}
var traffic_sent = false
var phase = ""
var phase_t = 0.0
var newcomers = 0
var srv_bcast = 0        # server-originated packets counted, because a 3.x server relays
var srv_excl = 0         # before its script sees "ctl:" (so they may trail "sent|X")
var got_srv_to = false
var got_big_server = false
var probing = false

func env(key, fallback):
	var v = OS.get_environment(key)
	return v if v != "" else fallback

func _init():
	Engine.target_fps = 100  # Headless Godot would otherwise spin a core per process.
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

	connect("connected_to_server", self, "_on_connected")
	connect("connection_failed", self, "_on_lost", ["connection_failed"])
	connect("server_disconnected", self, "_on_lost", ["server_disconnected"])
	connect("network_peer_connected", self, "_on_peer_connected")
	connect("network_peer_disconnected", self, "_on_peer_disconnected")
	multiplayer.connect("network_peer_packet", self, "_on_packet")
	client.connect("server_close_request", self, "_on_close_request")

	_tls_setup()
	var err = client.connect_to_url(url, PoolStringArray(), true)
	print("EVENT create_client err=%d" % err)
	if err != OK:
		_finish("fail reason=create_client_err_%d" % err)
		return
	network_peer = client

# wss:// only (MP_TLS): "unsafe" = verify_ssl false; "ca" = verify_ssl true trusting only the
# PEM certificate MP_TLS_CA (trusted_ssl_certificate); empty = Godot's defaults.
func _tls_setup():
	var mode = env("MP_TLS", "")
	if not url.begins_with("wss://") or mode == "":
		return
	if mode == "unsafe":
		client.verify_ssl = false
		print("INFO tls=verify_ssl_false")
		return
	var ca = X509Certificate.new()
	var err = ca.load(env("MP_TLS_CA", ""))
	client.verify_ssl = true
	client.trusted_ssl_certificate = ca
	print("INFO tls=trusted_ssl_certificate ca=%s load_err=%d" % [env("MP_TLS_CA", ""), err])

func _event(what):
	print("EVENT %s t_ms=%d" % [what, OS.get_ticks_msec() - start_ms])

func _on_close_request(code, reason):
	_event("server_close_request code=%d reason=%s" % [code, reason.replace(" ", "_")])
	# The same fact in the line every client prints (reason_hex shows a NUL if one is kept).
	_event("server_close code=%d reason=%s reason_hex=%s" % [
		code, reason.replace(" ", "_"), reason.to_utf8().hex_encode()])

func _on_connected():
	connected = true
	my_id = get_network_unique_id()
	_event("connected_to_server id=%d" % my_id)
	match scenario:
		"connect-only":
			phase = "linger"
			phase_t = 0.0
		"refuse":
			_send("ctl:refuse".to_utf8(), 1, "ctl:refuse")
		_:
			_send(("hello|%s" % my_name).to_utf8(), 1, "hello")

func _on_peer_connected(id):
	_event("peer_connected id=%d" % id)
	if expect_fail and id == 1:
		_finish("fail reason=connected_but_expected_failure")
	if id != 1 and not connected:
		print("INFO peer_connected_before_connected_to_server id=%d" % id)
	if id != 1 and scenario == "refuse" and phase == "await_newcomer":
		newcomers += 1
	if id != 1 and scenario in ["main", "size"] and not introduced.has(id):
		introduced[id] = true
		_send(("intro|%s" % my_name).to_utf8(), id, "intro")

func _on_peer_disconnected(id):
	_event("peer_disconnected id=%d" % id)
	gone[id] = true

func _on_lost(what):
	_event(what)
	connected = false
	if phase in ["await_kick", "closing", "await_server_close"]:
		_finish("ok")
	elif scenario == "size":
		_finish("ok")
	elif scenario == "connect-only" and phase == "linger":
		_finish("ok")
	elif scenario == "connect-only" and expect_fail and my_id == 0:
		_finish("ok")
	elif not finished:
		_finish("fail reason=lost_connection phase=%s" % phase)

func _send(data, to, tag):
	var err = multiplayer.send_bytes(data, to)
	print("SEND to=%d len=%d err=%d tag=%s" % [to, data.size(), err, tag])
	return err

func _big(n, tag):
	var text = "big|%s|%d|%s|" % [my_name, n, tag]
	var pad = "x"
	while pad.length() < n:
		pad += pad
	return (text + pad).substr(0, n).to_utf8()

func _head(packet, n):
	if packet.size() <= n:
		return packet
	return packet.subarray(0, n - 1)

func _on_packet(id, packet):
	var text = _head(packet, 48).get_string_from_utf8()
	print("RECV from=%d mode=raw len=%d text=%s bytes=%s" % [
		id, packet.size(), text.replace(" ", "_").replace("\n", "_"), _head(packet, 32).hex_encode()])
	var parts = text.split("|")
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

func _sorted_names():
	var all = names.values()
	all.append(my_name)
	all.sort()
	return all

func _id_of(n):
	for id in names:
		if names[id] == n:
			return id
	return 0

func _maybe_start_traffic():
	if traffic_sent or names.size() < peers_total - 1:
		return
	traffic_sent = true
	var all = _sorted_names()
	var next_name = all[(all.find(my_name) + 1) % all.size()]
	var next_id = _id_of(next_name)
	print("INFO all_introduced next=%s next_id=%d" % [next_name, next_id])
	if scenario == "size":
		if my_name == _sorted_names()[0]:
			_size_probes(next_id)
	else:
		_send(("bcast|%s" % my_name).to_utf8(), 0, "bcast")
		_send(("excl|%s|%s" % [my_name, next_name]).to_utf8(), -next_id, "excl")
		_send(("noserver|%s" % my_name).to_utf8(), -1, "noserver")
		rpc_node.rpc_id(next_id, "greet", my_name)
		print("SEND to=%d rpc=greet err=0 tag=rpc" % next_id)
		if control:
			_send("ctl:server-traffic".to_utf8(), 1, "ctl:server-traffic")
		if my_name == all[0]:
			_size_probes(next_id)
	_send(("sent|%s" % my_name).to_utf8(), 0, "sent")

func _size_probes(next_id):
	probing = true
	_send(_big(RAW_MAX, "direct-max"), 1, "big-direct-max")
	_send(_big(RAW_MAX + 1, "direct-over"), 1, "big-direct-over")
	_send(_big(RAW_MAX, "relay-max"), next_id, "big-relay-max")
	_send(_big(RAW_MAX + 1, "relay-over"), next_id, "big-relay-over")
	if control:
		_send("ctl:big".to_utf8(), 1, "ctl:big")

func _finish(r):
	if finished:
		return
	finished = true
	print("RESULT %s" % r)
	OS.exit_code = 0 if r == "ok" else 1
	quit()

func _quiet():
	# See g4_client.gd: the server's answers to "ctl:" requests are counted.
	if not traffic_sent or sent_from.size() < peers_total - 1:
		return false
	if not control:
		return true
	if probing and not got_big_server:
		return false
	if scenario == "size":
		return true
	return srv_bcast >= peers_total and srv_excl >= peers_total - 1 and got_srv_to

func _leave_self(why):
	# Close 4001 "leaving" (Godot 3 appends a NUL to the reason); connection_failed follows.
	_event("leaving why=%s" % why)
	phase = "closing"
	phase_t = 0.0
	client.disconnect_from_host(4001, "leaving")

func _idle(delta):
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
					_send("ctl:shutdown".to_utf8(), 1, "ctl:shutdown")
				else:
					_finish("ok")
			elif phase == "await_server_close" and phase_t > 1.5:
				_leave_self("server_still_open")
	if phase == "closing" and phase_t > 3.0:
		_finish("fail reason=close_not_confirmed")
	return false

func _step_main():
	if not connected or not _quiet():
		return
	var all = _sorted_names()
	var first = all[0]
	var last = all[all.size() - 1]
	if phase == "":
		phase = "quiet"
		phase_t = 0.0
		_event("quiet")
	if my_name == last and all.size() > 1:
		if phase == "quiet" and phase_t > 0.3:
			_leave_self("early_leaver")
		return
	var leaver_gone = gone.has(_id_of(last))
	if my_name != first:
		if phase == "quiet" and leaver_gone:
			if control:
				phase = "await_kick"
				phase_t = 0.0
				_send("ctl:kick-me".to_utf8(), 1, "ctl:kick-me")
			else:
				_leave_self("no_control")
		elif phase == "await_kick" and phase_t > 3.0:
			_event("kick_timeout")
			_leave_self("kick_timeout")
		return
	if phase == "quiet" and gone.size() >= all.size() - 1:
		if control:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8(), 1, "ctl:shutdown")
		else:
			_leave_self("done")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

func _step_size():
	# See g4_client.gd.
	if not connected or not _quiet():
		if phase == "await_server_close" and phase_t > 1.5:
			_leave_self("server_still_open")
		return
	var all = _sorted_names()
	if phase == "":
		phase = "quiet"
		phase_t = 0.0
		_event("quiet")
	if phase == "quiet" and phase_t > 0.5:
		phase = "oversize_sent"
		phase_t = 0.0
		if my_name == all[all.size() - 1]:
			var n = int(env("MP_OVERSIZE", str(RAW_MAX + 2)))
			_send(_big(n, "oversize"), 1, "big-oversize")
	elif phase == "oversize_sent" and phase_t > 2.5:
		if my_name == all[0] and control:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8(), 1, "ctl:shutdown")
		else:
			_leave_self("size_done")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

func _step_refuse():
	if phase == "holding" and phase_t > hold:
		phase = "await_accept"
		_send("ctl:accept".to_utf8(), 1, "ctl:accept")
	elif phase == "await_newcomer":
		if newcomers > 0 and phase_t > 1.2:
			phase = "await_server_close"
			phase_t = 0.0
			_send("ctl:shutdown".to_utf8(), 1, "ctl:shutdown")
	elif phase == "await_server_close" and phase_t > 1.5:
		_leave_self("server_still_open")

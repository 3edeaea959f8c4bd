extends SceneTree
# A Godot 3 game (3.2.3, 3.6) for io-std's `rpc_godot3` example (run.sh drives it).
# usage: godot3-server -s rpc_g3.gd -- client <ws url> | server <port>
# client: calls Game.ping(i, v) and rset_id(1, "value", v) for one value of each 3.x type (the
#   list of `values()` in the example), then say("hello"); checks that pong(i, v) and the `echo`
#   rset bring every value back from sender 1, that the broadcast said(<own id>, "hello")
#   arrives, and that the server's master_only call never runs here (Godot refuses it: this
#   client is not the master). It also calls the server's puppet pong, which the server refuses.
# server: answers ping, say and the `value` rset as the Rust server does, checks each value
#   against its own list, and calls the client's master_only, which the client must refuse;
#   it checks and quits when the client leaves.
# Prints "PASS <what>" / "FAIL <what>" lines and "DONE <failures>"; exit status = failures.

class Game extends Node:
	var server_mode = false
	var pongs = []
	var echoes = []
	var said_lines = []
	var forged_ran = []
	var got_pings = []
	var got_values = []

	remote var value setget _set_value
	puppet var echo setget _set_echo

	func _set_value(v):
		value = v
		got_values.append([get_tree().get_rpc_sender_id(), v])
		if server_mode:
			rset_id(get_tree().get_rpc_sender_id(), "echo", v)

	func _set_echo(v):
		echo = v
		echoes.append([get_tree().get_rpc_sender_id(), v])

	remote func ping(i, v):
		got_pings.append([get_tree().get_rpc_sender_id(), i, v])
		if server_mode:
			rpc_id(get_tree().get_rpc_sender_id(), "pong", i, v)

	remote func say(text):
		if server_mode:
			rpc("said", get_tree().get_rpc_sender_id(), text)

	puppet func pong(i, v):
		pongs.append([get_tree().get_rpc_sender_id(), i, v])

	puppet func said(from, text):
		said_lines.append([get_tree().get_rpc_sender_id(), from, text])

	master func master_only(text):
		forged_ran.append([get_tree().get_rpc_sender_id(), text])

var game
var peer
var failures = 0
var done = false
var values = [
	true, false, 0, -1, 127, -129, 70000, 5000000000, 1.5, 0.1, "hi", "é✓", Vector2(1.5, -2),
	Rect2(1, 2, 3, 4), Vector3(1, 2, 3), Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)),
	Plane(1, 2, 3, 4), Quat(1, 2, 3, 4), AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)),
	Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)),
	Transform(Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)), Vector3(10, 11, 12)),
	Color(1, 0.5, 0, 1), NodePath("/root/Game:position:x"), {"hp": 5, 1: [2, "x"]},
	[1, "a", [null]], PoolByteArray([1, 2, 3]), PoolIntArray([1, -1]), PoolRealArray([1.5]),
	PoolStringArray(["a", "bcd"]), PoolVector2Array([Vector2(1, 2)]),
	PoolVector3Array([Vector3(1, 2, 3)]), PoolColorArray([Color(1, 0, 0, 1)]), null,
]

func check(ok, what):
	if ok:
		print("PASS %s" % what)
	else:
		failures += 1
		print("FAIL %s" % what)

func same(a, b):
	return typeof(a) == typeof(b) and (a == b or str(a) == str(b))

func show(v):
	return var2str(v).replace("\n", " ")

func finish():
	if done:
		return
	done = true
	print("DONE %d" % failures)
	OS.exit_code = failures
	quit()

func _initialize():
	var args = []
	var seen = false
	for a in OS.get_cmdline_args():
		if seen:
			args.append(a)
		elif a == "--":
			seen = true
	game = Game.new()
	game.name = "Game"
	game.server_mode = args[0] == "server"
	root.call_deferred("add_child", game)
	if game.server_mode:
		peer = WebSocketServer.new()
		print("EVENT listen err=%d" % peer.listen(int(args[1]), PoolStringArray(), true))
		network_peer = peer
		connect("network_peer_connected", self, "_on_client")
		connect("network_peer_disconnected", self, "_on_client_gone")
	else:
		peer = WebSocketClient.new()
		print("EVENT connect err=%d" % peer.connect_to_url(args[1], PoolStringArray(), true))
		network_peer = peer
		connect("connected_to_server", self, "_run")
		connect("connection_failed", self, "_on_failed")
	_watchdog()

func _watchdog():
	yield(create_timer(20.0), "timeout")
	print("EVENT watchdog")
	failures += 1
	finish()

func _on_failed():
	print("EVENT connection_failed")
	failures += 1
	finish()

func _run():
	var own = get_network_unique_id()
	print("EVENT connected_to_server id=%d" % own)
	for i in range(values.size()):
		game.rpc_id(1, "ping", i, values[i])
		game.rset_id(1, "value", values[i])
	game.rpc_id(1, "say", "hello")
	game.rpc_id(1, "pong", 0, "forged")
	var deadline = OS.get_ticks_msec() + 8000
	while (game.pongs.size() < values.size() or game.echoes.size() < values.size() or game.said_lines.empty()) and OS.get_ticks_msec() < deadline:
		yield(create_timer(0.05), "timeout")
	check(game.pongs.size() == values.size(), "pong count %d of %d" % [game.pongs.size(), values.size()])
	check(game.echoes.size() == values.size(), "rset echo count %d of %d" % [game.echoes.size(), values.size()])
	for i in range(min(game.pongs.size(), values.size())):
		var p = game.pongs[i]
		check(p[0] == 1 and p[1] == i and same(p[2], values[i]), "pong %d %s -> %s from %d" % [i, show(values[i]), show(p[2]), p[0]])
	for i in range(min(game.echoes.size(), values.size())):
		var e = game.echoes[i]
		check(e[0] == 1 and same(e[1], values[i]), "rset echo %d %s -> %s from %d" % [i, show(values[i]), show(e[1]), e[0]])
	check([1, own, "hello"] in game.said_lines, "said broadcast %s" % [game.said_lines])
	yield(create_timer(0.3), "timeout")
	check(game.forged_ran.empty(), "master_only from the server refused %s" % [game.forged_ran])
	finish()

func _on_client(id):
	print("EVENT peer_connected %d" % id)
	game.rpc_id(id, "master_only", "forged")

func _on_client_gone(id):
	print("EVENT peer_disconnected %d" % id)
	check(game.got_pings.size() == values.size(), "ping count %d of %d" % [game.got_pings.size(), values.size()])
	for i in range(min(game.got_pings.size(), values.size())):
		var p = game.got_pings[i]
		check(p[0] == id and p[1] == i and same(p[2], values[i]), "ping %d %s -> %s from %d" % [i, show(values[i]), show(p[2]), p[0]])
	check(game.got_values.size() == values.size(), "rset count %d of %d" % [game.got_values.size(), values.size()])
	for i in range(min(game.got_values.size(), values.size())):
		var v = game.got_values[i]
		check(v[0] == id and same(v[1], values[i]), "rset %d %s -> %s from %d" % [i, show(values[i]), show(v[1]), v[0]])
	check(game.pongs.empty(), "puppet pong from a client refused")
	finish()

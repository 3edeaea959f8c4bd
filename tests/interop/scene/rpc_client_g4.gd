extends SceneTree
# A Godot 4 game client for io-std's `rpc_server` example (run.sh drives it).
# usage: godot4 --headless -s rpc_client_g4.gd -- <ws url> [--token TOKEN] [--pair]
# Calls Game.ping(v) on the server for one value of many Variant types and checks that the
# server's pong(v) brings back the same value from sender 1; then say("hello") and checks the
# broadcast said(<own id>, "hello"). With a token it authenticates first (auth_callback). With
# --pair (two clients at once) it also whispers to the other client through the server's relay,
# expects its whisper back, and calls the authority-only pong on the other client and on the
# server, which both must refuse.
# Prints "PASS <what>" / "FAIL <what>" lines and "DONE <failures>"; exit status = failures.

class Game extends Node:
	var pongs: Array = []
	var said_lines: Array = []

	@rpc("any_peer")
	func ping(_value) -> void:
		pass

	@rpc("any_peer")
	func say(_text) -> void:
		pass

	var whispers: Array = []

	@rpc("any_peer")
	func whisper(text) -> void:
		whispers.append([multiplayer.get_remote_sender_id(), text])

	@rpc
	func pong(value) -> void:
		pongs.append([multiplayer.get_remote_sender_id(), value])

	@rpc
	func said(from, text) -> void:
		said_lines.append([multiplayer.get_remote_sender_id(), from, text])

var game: Game
var mp: SceneMultiplayer
var failures := 0
var pair := false
var values: Array = [
	true, false, 0, -1, 127, -129, 70000, 5000000000, 1.5, 0.1, "hi", "é✓", Vector2(1.5, -2),
	Vector2i(1, -2), Rect2(1, 2, 3, 4), Vector3(1, 2, 3), Vector3i(1, 2, -3), Vector4(1, 2, 3, 4),
	Transform2D(1.0, Vector2(3, 4)), Plane(0, 1, 0, 5), Quaternion(0, 0, 0, 1),
	AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)), Basis.IDENTITY, Transform3D.IDENTITY,
	Color(1, 0.5, 0, 1), &"name", NodePath("/root/Game:position:x"), {"hp": 5, 1: [2, "x"]},
	[1, "a", [null]], PackedByteArray([1, 2, 3]), PackedInt32Array([1, -1]),
	PackedInt64Array([1, 1 << 40]), PackedFloat32Array([1.5]), PackedFloat64Array([0.1]),
	PackedStringArray(["a", "bcd"]), PackedVector2Array([Vector2(1, 2)]),
	PackedVector3Array([Vector3(1, 2, 3)]), PackedColorArray([Color(1, 0, 0, 1)]), null,
]

func check(ok: bool, what: String) -> void:
	if ok:
		print("PASS %s" % what)
	else:
		failures += 1
		print("FAIL %s" % what)

func _initialize() -> void:
	var args := OS.get_cmdline_user_args()
	mp = get_multiplayer() as SceneMultiplayer
	pair = args.has("--pair")
	var at := args.find("--token")
	if at > 0:
		var token: String = args[at + 1]
		mp.auth_callback = func(_id, _data): pass
		mp.peer_authenticating.connect(func(id):
			mp.send_auth(id, token.to_utf8_buffer())
			mp.complete_auth(id))
	mp.peer_authentication_failed.connect(func(id): print("EVENT peer_authentication_failed %d" % id))
	mp.server_disconnected.connect(func(): print("EVENT server_disconnected"))
	var peer := WebSocketMultiplayerPeer.new()
	peer.create_client(args[0])
	mp.multiplayer_peer = peer
	game = Game.new()
	game.name = "Game"
	root.add_child.call_deferred(game)
	mp.connected_to_server.connect(_run)
	_watchdog()

func _watchdog() -> void:
	await create_timer(15.0).timeout
	print("EVENT watchdog")
	print("DONE %d" % (failures + 1))
	quit(failures + 1)

func _run() -> void:
	print("EVENT connected_to_server id=%d" % mp.get_unique_id())
	for v in values:
		game.rpc_id(1, "ping", v)
	game.rpc_id(1, "say", "hello")
	var deadline := Time.get_ticks_msec() + 5000
	while (game.pongs.size() < values.size() or game.said_lines.is_empty()) and Time.get_ticks_msec() < deadline:
		await create_timer(0.05).timeout
	check(game.pongs.size() == values.size(), "pong count %d of %d" % [game.pongs.size(), values.size()])
	for i in range(min(game.pongs.size(), values.size())):
		var got = game.pongs[i]
		var same: bool = typeof(got[1]) == typeof(values[i]) and (got[1] == values[i] or str(got[1]) == str(values[i]))
		check(got[0] == 1 and same, "pong %s %s -> %s from %d" % [type_string(typeof(values[i])), var_to_str(values[i]).replace("\n", " "), var_to_str(got[1]).replace("\n", " "), got[0]])
	check(game.said_lines.size() >= 1 and [1, mp.get_unique_id(), "hello"] in game.said_lines, "said broadcast %s" % [game.said_lines])
	if pair:
		await _pair()
	print("DONE %d" % failures)
	quit(failures)

func _pair() -> void:
	var deadline := Time.get_ticks_msec() + 5000
	var others: Array = []
	while others.is_empty() and Time.get_ticks_msec() < deadline:
		others = Array(mp.get_peers()).filter(func(p): return p != 1)
		await create_timer(0.05).timeout
	check(others.size() == 1, "other client announced by the relay %s" % [others])
	if others.is_empty():
		return
	var other: int = others[0]
	game.rpc_id(other, "pong", "forged")
	game.rpc_id(1, "pong", "forged")
	game.rpc_id(other, "whisper", "psst from %d" % mp.get_unique_id())
	while game.whispers.is_empty() and Time.get_ticks_msec() < deadline + 5000:
		await create_timer(0.05).timeout
	check(game.whispers == [[other, "psst from %d" % other]], "whisper through the relay %s" % [game.whispers])
	await create_timer(0.5).timeout
	check(game.pongs.all(func(p): return p[0] == 1), "authority-only pong from a client refused")

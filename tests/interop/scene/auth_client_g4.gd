extends SceneTree
# A Godot 4 game client for `multipeer serve --auth-token` (serve_auth.sh drives it).
# usage: godot4 --headless -s auth_client_g4.gd -- <ws url> [--token TOKEN] [--stay SECS] --expect admitted|refused
# With --token it authenticates the way the README shows (auth_callback, send_auth in
# peer_authenticating); without, it sets no auth_callback (a game that knows nothing of auth).
# admitted: it must join, see exactly one other client announced by the relay, and exchange
#           hello(text) RPCs with it through the relay (sender = the other client), then stay
#           SECS (past the refused clients' timeout) and still see nobody else.
# refused:  it must be dropped by the server (peer_authentication_failed or server_disconnected)
#           without ever seeing another client.
# Prints "PASS"/"FAIL" lines and "DONE <failures>"; exit status = failures.

class Game extends Node:
	var hellos: Array = []

	@rpc("any_peer")
	func hello(text) -> void:
		hellos.append([multiplayer.get_remote_sender_id(), text])

var game: Game
var mp: SceneMultiplayer
var failures := 0
var peers_seen: Array = []
var joined := false
var dropped := false

func check(ok: bool, what: String) -> void:
	if ok:
		print("PASS %s" % what)
	else:
		failures += 1
		print("FAIL %s" % what)

func _initialize() -> void:
	var args := OS.get_cmdline_user_args()
	mp = get_multiplayer() as SceneMultiplayer
	var at := args.find("--token")
	if at > 0:
		var token: String = args[at + 1]
		mp.auth_callback = func(_id, _data): pass
		# A loaded CI machine can be slow; the server's --auth-timeout decides.
		mp.auth_timeout = 20.0
		mp.peer_authenticating.connect(func(id):
			mp.send_auth(id, token.to_utf8_buffer())
			mp.complete_auth(id))
	mp.peer_connected.connect(func(id):
		peers_seen.append(id)
		print("EVENT peer_connected %d" % id))
	mp.connected_to_server.connect(func():
		joined = true
		print("EVENT connected_to_server %d" % mp.get_unique_id()))
	mp.peer_authentication_failed.connect(func(id):
		dropped = true
		print("EVENT peer_authentication_failed %d" % id))
	mp.server_disconnected.connect(func():
		dropped = true
		print("EVENT server_disconnected"))
	var peer := WebSocketMultiplayerPeer.new()
	peer.handshake_timeout = 15.0
	peer.create_client(args[0])
	mp.multiplayer_peer = peer
	game = Game.new()
	game.name = "Game"
	root.add_child.call_deferred(game)
	var expect: String = args[args.find("--expect") + 1]
	if expect == "admitted":
		_admitted()
	else:
		_refused()

func args_value(flag: String, default: String) -> String:
	var args := OS.get_cmdline_user_args()
	var at := args.find(flag)
	return args[at + 1] if at > 0 else default

func _wait(seconds: float, done: Callable) -> void:
	var deadline := Time.get_ticks_msec() + int(seconds * 1000)
	while not done.call() and Time.get_ticks_msec() < deadline:
		await create_timer(0.05).timeout

func _others() -> Array:
	return peers_seen.filter(func(p): return p != 1)

func _admitted() -> void:
	await _wait(20.0, func(): return joined and not _others().is_empty())
	check(joined, "admitted with the token")
	var others := _others()
	check(others.size() == 1, "exactly one other client announced %s" % [others])
	if others.size() == 1:
		var other: int = others[0]
		game.rpc_id(other, "hello", "hi from %d" % mp.get_unique_id())
		await _wait(10.0, func(): return not game.hellos.is_empty())
		check(game.hellos == [[other, "hi from %d" % other]], "hello through the relay %s" % [game.hellos])
		# Stay until the other client has had our hello too, and past the refused ones' timeout.
		await _wait(float(args_value("--stay", "5")), func(): return false)
	check(_others().size() == 1 and not dropped, "no refused client announced, still connected %s" % [peers_seen])
	print("DONE %d" % failures)
	quit(failures)

func _refused() -> void:
	await _wait(25.0, func(): return dropped)
	check(dropped, "dropped by the server")
	check(_others().is_empty(), "never saw another client %s" % [peers_seen])
	print("DONE %d" % failures)
	quit(failures)

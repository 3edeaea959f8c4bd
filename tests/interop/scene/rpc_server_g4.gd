extends SceneTree
# A Godot 4 game server for io-std's `rpc_bot` example (run.sh drives it).
# usage: godot4 --headless -s rpc_server_g4.gd -- <port> [--clients N] [--rejects M] [--token TOKEN] [--pair]
# Each bot calls Game.check(i, v) with one value of every Variant type; the server compares v
# with its own VALUES[i] (so the bot's encoding is checked by Godot's decoder) and answers with
# echo(i, VALUES[i], <its instance id>) to the caller (so Godot's encoding is checked by the
# bot's decoder). A bot's forged echo() (authority only) must not run here. Once N bots called
# finished(), the server broadcasts announce("all", x), sends announce("except", x) to -x (x =
# the first bot) and broadcasts announce("end", x). With --token, auth_callback admits bots
# that send that token and lets the others time out (M of them are expected). With --pair (two
# bots whispering to each other through the relay), each bot's whisper to everyone and to
# everyone but the other bot must reach the server too.
# Prints "PASS"/"FAIL" lines and "DONE <failures>"; exit status = failures.

class Game extends Node:
	var server: Object
	var forged: Array = []

	@rpc("any_peer")
	func check(i, value) -> void:
		server.on_check(multiplayer.get_remote_sender_id(), i, value)

	@rpc("authority")
	func echo(i, value, _note) -> void:
		forged.append([multiplayer.get_remote_sender_id(), i, value])

	var whispers: Array = []

	@rpc("any_peer")
	func whisper(text) -> void:
		whispers.append([multiplayer.get_remote_sender_id(), text])

	@rpc("any_peer")
	func finished(failures) -> void:
		server.on_finished(multiplayer.get_remote_sender_id(), failures)

	@rpc("authority")
	func announce(_kind, _excluded) -> void:
		pass

# Bot -> server values carry this instance id for Object and Signal.
const BOT_OBJECT_ID := 12345

var game: Game
var mp: SceneMultiplayer
var failures := 0
var expected_clients := 1
var expected_rejects := 0
var checked := {}
var finished_bots: Array = []
var rejected := 0
var left := 0
var announced := false
var values: Array = []
var pair := false

func check(ok: bool, what: String) -> void:
	if ok:
		print("PASS %s" % what)
	else:
		failures += 1
		print("FAIL %s" % what)

func make_values() -> Array:
	var typed_ints: Array[int] = [1, 2]
	var typed_dict: Dictionary[String, int] = {"x": 1}
	return [
		null, true, false, 0, -1, 127, -129, 70000, 5000000000, -(1 << 40), 1.5, 0.1, "hi", "é✓", "",
		Vector2(1.5, -2), Vector2i(1, -2), Rect2(1, 2, 3, 4), Rect2i(1, 2, 3, -4), Vector3(1, 2, 3),
		Vector3i(1, 2, -3), Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)), Vector4(1, 2, 3, 4),
		Vector4i(1, 2, 3, -4), Plane(0, 1, 0, 5), Quaternion(0, 0, 0, 1),
		AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)), Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)),
		Transform3D(Basis.IDENTITY, Vector3(1, 2, 3)),
		Projection(Vector4(1, 2, 3, 4), Vector4(5, 6, 7, 8), Vector4(9, 10, 11, 12), Vector4(13, 14, 15, 16)),
		Color(1, 0.5, 0, 1), &"name", NodePath("/root/Game:position:x"), rid_from_int64(42), game,
		Callable(game, "check"), Signal(game, "renamed"), {"hp": 5, 1: [2, "x"]}, typed_dict,
		[1, "a", [null]], typed_ints, PackedByteArray([1, 2, 3]), PackedByteArray(), PackedInt32Array([1, -1]),
		PackedInt64Array([1, 1 << 40]), PackedFloat32Array([1.5]), PackedFloat64Array([0.1]),
		PackedStringArray(["a", "bcd"]), PackedVector2Array([Vector2(1, 2)]),
		PackedVector3Array([Vector3(1, 2, 3)]), PackedColorArray([Color(1, 0, 0, 1)]),
		PackedVector4Array([Vector4(1, 2, 3, 4)]),
	]

# Whether `got` (from a bot) is the bot's counterpart of `want` (VALUES[i]).
func same(got, want) -> bool:
	if typeof(got) != typeof(want):
		return false
	match typeof(want):
		TYPE_OBJECT:
			return got is EncodedObjectAsID and got.get_object_id() == BOT_OBJECT_ID
		TYPE_SIGNAL:
			return got.get_name() == want.get_name() and got.get_object_id() == BOT_OBJECT_ID
		TYPE_CALLABLE:
			return got.is_null()
		TYPE_RID:
			return got.get_id() == want.get_id()
		TYPE_ARRAY:
			return got == want and got.get_typed_builtin() == want.get_typed_builtin()
		TYPE_DICTIONARY:
			return got == want and got.get_typed_key_builtin() == want.get_typed_key_builtin() \
				and got.get_typed_value_builtin() == want.get_typed_value_builtin()
		TYPE_FLOAT:
			return got == want or (is_nan(got) and is_nan(want))
	return got == want

func show(v) -> String:
	return var_to_str(v).replace("\n", " ")

func on_check(sender: int, i, value) -> void:
	var known: bool = typeof(i) == TYPE_INT and i >= 0 and i < values.size()
	check(known and same(value, values[i]), "check from bot %d: #%s %s -> %s" % [sender, i, type_string(typeof(value)), show(value)])
	checked[sender] = checked.get(sender, 0) + 1
	if known:
		game.rpc_id(sender, "echo", i, values[i], game.get_instance_id())

func on_finished(sender: int, bot_failures) -> void:
	check(checked.get(sender, 0) == values.size(), "bot %d sent %d of %d values" % [sender, checked.get(sender, 0), values.size()])
	print("EVENT finished %d failures=%s" % [sender, bot_failures])
	if not finished_bots.has(sender):
		finished_bots.append(sender)
	if finished_bots.size() == expected_clients and not announced:
		announced = true
		var excluded: int = finished_bots[0]
		game.rpc("announce", "all", excluded)
		game.rpc_id(-excluded, "announce", "except", excluded)
		game.rpc("announce", "end", excluded)

func _initialize() -> void:
	var args := OS.get_cmdline_user_args()
	var port := int(args[0])
	var at := args.find("--clients")
	if at > 0:
		expected_clients = int(args[at + 1])
	at = args.find("--rejects")
	if at > 0:
		expected_rejects = int(args[at + 1])
	pair = args.has("--pair")
	mp = get_multiplayer() as SceneMultiplayer
	at = args.find("--token")
	if at > 0:
		var token: String = args[at + 1]
		mp.auth_callback = func(id: int, data: PackedByteArray):
			if data.get_string_from_utf8() == token:
				print("EVENT auth ok %d" % id)
				mp.complete_auth(id)
			else:
				print("EVENT auth wrong token from %d" % id)
		mp.peer_authenticating.connect(func(id): mp.send_auth(id, "srv".to_utf8_buffer()))
	mp.peer_authentication_failed.connect(func(id):
		rejected += 1
		print("EVENT peer_authentication_failed %d" % id))
	mp.peer_connected.connect(func(id): print("EVENT peer_connected %d" % id))
	mp.peer_disconnected.connect(func(id):
		left += 1
		print("EVENT peer_disconnected %d" % id))
	var peer := WebSocketMultiplayerPeer.new()
	var err := peer.create_server(port, "127.0.0.1")
	if err != OK:
		print("FAIL create_server %d" % err)
		quit(1)
		return
	mp.multiplayer_peer = peer
	game = Game.new()
	game.name = "Game"
	game.server = self
	root.add_child(game)
	values = make_values()
	print("READY %d" % port)
	_wait()

func _wait() -> void:
	var deadline := Time.get_ticks_msec() + 25000
	while Time.get_ticks_msec() < deadline:
		if left >= expected_clients and finished_bots.size() >= expected_clients and rejected >= expected_rejects:
			break
		await create_timer(0.05).timeout
	check(finished_bots.size() == expected_clients, "%d of %d bots finished" % [finished_bots.size(), expected_clients])
	check(rejected == expected_rejects, "%d of %d wrong tokens refused" % [rejected, expected_rejects])
	check(game.forged.is_empty(), "authority-only echo from a bot refused %s" % [game.forged])
	if pair:
		var want: Array = []
		for bot in finished_bots:
			var other: int = finished_bots[1 - finished_bots.find(bot)]
			want.append([bot, "all from %d" % bot])
			want.append([bot, "not for %d" % other])
		var got: Array = game.whispers.duplicate()
		got.sort()
		want.sort()
		check(got == want, "whispers to everyone and to -other reached the server %s" % [game.whispers])
	print("DONE %d" % failures)
	quit(failures)

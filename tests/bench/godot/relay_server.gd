extends SceneTree
# Godot 4 relay server for the broadcast benchmark: WebSocketMultiplayerPeer with the default
# SceneMultiplayer (server_relay on) and nothing else: no prints per packet, no scripted replies
# (tests/interop/godot/g4_server.gd logs every packet, which would measure the console).
#
#   MP_PORT=9108 MP_TIMEOUT=120 godot4 --headless -s relay_server.gd
#
# Engine.max_fps = 0: the frame loop (which polls the peer) runs as fast as it can, Godot's best
# case for throughput and latency; it spins one core, so its CPU per delivery is not comparable.

var peer := WebSocketMultiplayerPeer.new()
var t := 0.0
var timeout := 120.0

func _initialize() -> void:
	Engine.max_fps = 0
	var port := int(OS.get_environment("MP_PORT")) if OS.get_environment("MP_PORT") != "" else 9108
	if OS.get_environment("MP_TIMEOUT") != "":
		timeout = float(OS.get_environment("MP_TIMEOUT"))
	peer.max_queued_packets = 16384
	var err := peer.create_server(port, "127.0.0.1")
	if err != OK:
		print("RESULT fail listen_err_%d" % err)
		quit(1)
		return
	var mp := get_multiplayer() as SceneMultiplayer
	mp.server_relay = true
	mp.multiplayer_peer = peer
	print("godot relay: listening on 127.0.0.1:%d (%s)" % [port, Engine.get_version_info()["string"]])

func _process(delta: float) -> bool:
	t += delta
	if t > timeout:
		quit(0)
	return false

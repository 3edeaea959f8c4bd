extends SceneTree
# Godot 4 WebSocketMultiplayerPeer server with the default SceneMultiplayer (server_relay on).
#
#   MP_PORT=9080 godot4 --headless -s g4_server.gd
#
# Environment: MP_PORT (default 9080), MP_BIND (default 127.0.0.1), MP_TIMEOUT (seconds,
# default 30); MP_TLS_CERT and MP_TLS_KEY (PEM files) make it a wss:// server with
# TLSOptions.server(key, cert).
#
# The server only reacts; the clients drive every scenario. It greets each new peer with a
# targeted raw packet "welcome|<id>", prints every event and packet, and obeys raw packets that
# start with "ctl:" (a test-only convention, not part of any Godot protocol):
#   ctl:server-traffic  send "srv-bcast" to 0, "srv-to|<id>" to the sender, "srv-excl|<id>" to -sender
#   ctl:big             send the largest raw packet that fits (65534 bytes) and one byte more
#   ctl:kick-me         get_peer(sender).close(4000, "bye")
#   ctl:refuse / ctl:accept   set refuse_new_connections, then answer "ack|refuse" / "ack|accept"
#   ctl:shutdown        print RESULT ok and quit
# It quits by itself after MP_TIMEOUT seconds with "RESULT fail reason=timeout".
# When a peer leaves it prints "EVENT peer_close id= code= reason= reason_hex=" from the
# WebSocketPeer kept since peer_connected: get_close_code()/get_close_reason() stay readable on
# that object after the multiplayer peer forgot it.

const RAW_DIRECT_MAX := 65534

class RpcNode extends Node:
	@rpc("any_peer", "call_remote", "reliable")
	func greet(arg: String) -> void:
		print("RPC greet from=%d arg=%s" % [multiplayer.get_remote_sender_id(), arg])

var peer := WebSocketMultiplayerPeer.new()
var mp: SceneMultiplayer
var sockets := {}  # id -> the WebSocketPeer behind it, kept to read how it closed
var t := 0.0
var timeout := 30.0
var quit_at := -1.0

func env(key: String, fallback: String) -> String:
	var v := OS.get_environment(key)
	return v if v != "" else fallback

func _initialize() -> void:
	Engine.max_fps = 100  # Headless Godot would otherwise spin a core.
	var port := int(env("MP_PORT", "9080"))
	var bind := env("MP_BIND", "127.0.0.1")
	timeout = float(env("MP_TIMEOUT", "30"))
	print("INFO role=server godot=%s port=%d bind=%s" % [
		Engine.get_version_info()["string"].replace(" ", "_"), port, bind])
	var node := RpcNode.new()
	node.name = "Rpc"
	root.add_child(node)

	mp = get_multiplayer() as SceneMultiplayer
	mp.server_relay = true
	mp.peer_connected.connect(_on_peer_connected)
	mp.peer_disconnected.connect(_on_peer_disconnected)
	mp.peer_packet.connect(_on_packet)
	mp.server_disconnected.connect(func(): print("EVENT server_disconnected"))

	var err := OK
	var cert_path := env("MP_TLS_CERT", "")
	if cert_path != "":
		var key := CryptoKey.new()
		var cert := X509Certificate.new()
		var key_err := key.load(env("MP_TLS_KEY", ""))
		var cert_err := cert.load(cert_path)
		print("INFO tls=server cert=%s load_err=%d key_load_err=%d" % [cert_path, cert_err, key_err])
		err = peer.create_server(port, bind, TLSOptions.server(key, cert))
	else:
		err = peer.create_server(port, bind)
	print("EVENT listen port=%d err=%d" % [port, err])
	if err != OK:
		print("RESULT fail reason=listen_err_%d" % err)
		quit(1)
		return
	mp.multiplayer_peer = peer
	print("INFO server_relay=%s unique_id=%d" % [mp.server_relay, mp.get_unique_id()])

func _send(data: PackedByteArray, to: int, tag: String) -> int:
	var err := mp.send_bytes(data, to)
	print("SEND to=%d len=%d err=%d tag=%s" % [to, data.size(), err, tag])
	return err

func _on_peer_connected(id: int) -> void:
	print("EVENT peer_connected id=%d address=%s port=%d" % [
		id, peer.get_peer_address(id), peer.get_peer_port(id)])
	sockets[id] = peer.get_peer(id)
	_send(("welcome|%d" % id).to_utf8_buffer(), id, "welcome")

func _on_peer_disconnected(id: int) -> void:
	print("EVENT peer_disconnected id=%d" % id)
	var ws: WebSocketPeer = sockets.get(id)
	sockets.erase(id)
	if ws:
		var reason := ws.get_close_reason()
		print("EVENT peer_close id=%d code=%d reason=%s reason_hex=%s" % [
			id, ws.get_close_code(), reason.replace(" ", "_"), reason.to_utf8_buffer().hex_encode()])

func _big(n: int, tag: String) -> PackedByteArray:
	var head := ("big|server|%d|%s|" % [n, tag]).to_utf8_buffer()
	var data := PackedByteArray()
	data.resize(n)
	data.fill(0x78)
	for i in range(head.size()):
		data[i] = head[i]
	return data

func _on_packet(id: int, packet: PackedByteArray) -> void:
	var text := packet.slice(0, 48).get_string_from_utf8()
	print("RECV from=%d mode=raw len=%d text=%s bytes=%s" % [
		id, packet.size(), text.replace(" ", "_").replace("\n", "_"), packet.slice(0, 32).hex_encode()])
	match text:
		"ctl:server-traffic":
			_send("srv-bcast".to_utf8_buffer(), 0, "srv-bcast")
			_send(("srv-to|%d" % id).to_utf8_buffer(), id, "srv-to")
			_send(("srv-excl|%d" % id).to_utf8_buffer(), -id, "srv-excl")
		"ctl:big":
			_send(_big(RAW_DIRECT_MAX, "server-max"), id, "big-server-max")
			_send(_big(RAW_DIRECT_MAX + 1, "server-over"), id, "big-server-over")
		"ctl:kick-me":
			print("EVENT disconnect_peer id=%d code=4000 reason=bye" % id)
			peer.get_peer(id).close(4000, "bye")
		"ctl:refuse", "ctl:accept":
			peer.refuse_new_connections = text == "ctl:refuse"
			print("EVENT refuse_new_connections value=%s" % peer.refuse_new_connections)
			_send(("ack|%s" % text.substr(4)).to_utf8_buffer(), id, "ack")
		"ctl:shutdown":
			print("EVENT shutdown")
			quit_at = t + 0.2

func _process(delta: float) -> bool:
	t += delta
	if quit_at >= 0.0 and t >= quit_at:
		print("RESULT ok")
		quit(0)
	elif t > timeout:
		print("RESULT fail reason=timeout")
		quit(1)
	return false

extends SceneTree
# Godot 3.2.3 WebSocketServer with the multiplayer API: listen(port, PoolStringArray(), true) and
# get_tree().network_peer = server. The relay is built into the 3.x WebSocket peer.
#
#   MP_PORT=9080 godot3-server -s g3_server.gd
#
# Environment: MP_PORT (default 9080), MP_BIND (default 127.0.0.1), MP_TIMEOUT (default 30);
# MP_TLS_CERT and MP_TLS_KEY (PEM files) make it a wss:// server (ssl_certificate, private_key).
# Same behaviour and "ctl:" commands as g4_server.gd (see README.md); ctl:kick-me uses
# disconnect_peer(id, 4000, "kicked") and ctl:shutdown calls stop() (Close 1000 to every peer).

const RAW_MAX = 65525

class RpcNode extends Node:
	remote func greet(arg):
		print("RPC greet from=%d arg=%s" % [get_tree().get_rpc_sender_id(), arg])

var server = WebSocketServer.new()
var t = 0.0
var timeout = 30.0
var quit_at = -1.0

func env(key, fallback):
	var v = OS.get_environment(key)
	return v if v != "" else fallback

func _init():
	Engine.target_fps = 100  # Headless Godot would otherwise spin a core.
	var port = int(env("MP_PORT", "9080"))
	var bind = env("MP_BIND", "127.0.0.1")
	timeout = float(env("MP_TIMEOUT", "30"))
	print("INFO role=server godot=%s port=%d bind=%s" % [
		Engine.get_version_info()["string"].replace(" ", "_"), port, bind])
	var node = RpcNode.new()
	node.name = "Rpc"
	root.add_child(node)

	server.bind_ip = bind
	var cert_path = env("MP_TLS_CERT", "")
	if cert_path != "":
		var key = CryptoKey.new()
		var cert = X509Certificate.new()
		var key_err = key.load(env("MP_TLS_KEY", ""))
		var cert_err = cert.load(cert_path)
		server.private_key = key
		server.ssl_certificate = cert
		print("INFO tls=server cert=%s load_err=%d key_load_err=%d" % [cert_path, cert_err, key_err])
	var err = server.listen(port, PoolStringArray(), true)
	print("EVENT listen port=%d err=%d" % [port, err])
	if err != OK:
		print("RESULT fail reason=listen_err_%d" % err)
		OS.exit_code = 1
		quit()
		return
	network_peer = server
	connect("network_peer_connected", self, "_on_peer_connected")
	connect("network_peer_disconnected", self, "_on_peer_disconnected")
	multiplayer.connect("network_peer_packet", self, "_on_packet")
	server.connect("client_close_request", self, "_on_close_request")
	print("INFO unique_id=%d" % get_network_unique_id())

func _send(data, to, tag):
	var err = multiplayer.send_bytes(data, to)
	print("SEND to=%d len=%d err=%d tag=%s" % [to, data.size(), err, tag])
	return err

func _on_peer_connected(id):
	print("EVENT peer_connected id=%d address=%s port=%d" % [
		id, server.get_peer_address(id), server.get_peer_port(id)])
	_send(("welcome|%d" % id).to_utf8(), id, "welcome")

func _on_peer_disconnected(id):
	print("EVENT peer_disconnected id=%d" % id)

func _on_close_request(id, code, reason):
	print("EVENT client_close_request id=%d code=%d reason=%s" % [id, code, reason.replace(" ", "_")])
	# The same fact in the line every server prints (reason_hex shows a NUL if one is kept).
	print("EVENT peer_close id=%d code=%d reason=%s reason_hex=%s" % [
		id, code, reason.replace(" ", "_"), reason.to_utf8().hex_encode()])

func _big(n, tag):
	var text = "big|server|%d|%s|" % [n, tag]
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
	match text:
		"ctl:server-traffic":
			_send("srv-bcast".to_utf8(), 0, "srv-bcast")
			_send(("srv-to|%d" % id).to_utf8(), id, "srv-to")
			_send(("srv-excl|%d" % id).to_utf8(), -id, "srv-excl")
		"ctl:big":
			_send(_big(RAW_MAX, "server-max"), id, "big-server-max")
			_send(_big(RAW_MAX + 1, "server-over"), id, "big-server-over")
		"ctl:kick-me":
			print("EVENT disconnect_peer id=%d" % id)
			server.disconnect_peer(id, 4000, "bye")
		"ctl:refuse", "ctl:accept":
			server.refuse_new_connections = text == "ctl:refuse"
			print("EVENT refuse_new_connections value=%s" % str(server.refuse_new_connections).to_lower())
			_send(("ack|%s" % text.substr(4, 16)).to_utf8(), id, "ack")
		"ctl:shutdown":
			print("EVENT shutdown")
			quit_at = t + 0.2

func _idle(delta):
	t += delta
	if quit_at >= 0.0 and t >= quit_at:
		server.stop()
		print("RESULT ok")
		quit()
	elif t > timeout:
		print("RESULT fail reason=timeout")
		OS.exit_code = 1
		quit()
	return false

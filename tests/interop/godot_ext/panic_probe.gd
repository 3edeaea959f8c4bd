extends SceneTree
# The panic boundary and the registration, seen from GDScript (needs the addon built with the
# `fault-injection` feature): WebRTCPeerConnection.new() must be multipeer's class; a Rust panic
# inside create_data_channel must come back as a Godot error and a failed call, poison only that
# connection, and leave Godot running. Prints one line per fact, `survived` last; exit 0.

func _initialize() -> void:
	var pc := WebRTCPeerConnection.new()
	print("class %s" % pc.get_class())
	print("initialize %d" % pc.initialize({"iceServers": [{"urls": "stun:127.0.0.1:9"}]}))
	var ch = pc.create_data_channel("multipeer-fault:panic", {})
	print("panicked call returned null: %s" % (ch == null))
	print("create_offer on the poisoned connection: %d" % pc.create_offer())
	var fresh := WebRTCPeerConnection.new()
	fresh.initialize({})
	var ok = fresh.create_data_channel("ok", {"negotiated": true, "id": 1})
	print("a fresh connection works: %s" % (ok != null and fresh.create_offer() == OK))
	print("survived")
	quit(0)

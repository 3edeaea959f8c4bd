extends SceneTree
# Godot 3.x side of the Variant interop test (run.sh); the same output as variants_g4.gd:
#   ENC|<label>|<typeof>|<var2bytes hex>
#   DECIN|<label>|<input hex>, then, unless bytes2var aborted (3.2.3 does on errors):
#   DEC|<label>|<input hex>|<typeof>|<var2bytes(bytes2var(input)) hex>
# Run: godot3-server -s variants_g3.gd

var encoded = []

func enc(label, v):
	var bytes = var2bytes(v)
	encoded.append([label, bytes])
	print("ENC|%s|%d|%s" % [label, typeof(v), bytes.hex_encode()])

# Seeded mutations of every encoding above; see variants_g4.gd.
func mutate_all(per_value):
	var rng = RandomNumberGenerator.new()
	rng.seed = 20261204
	var words = [0, 1, 2, 3, 4, 0x7fffffff, 0xffffffff, 0x80000001, 0x100013, 0x10012, 0x10003]
	for item in encoded:
		var bytes = item[1]
		if bytes.size() > 512:
			continue
		for i in range(per_value):
			var m = PoolByteArray(bytes)
			var op = rng.randi() % 5
			if op == 0 and m.size() > 0:
				m.set(rng.randi() % m.size(), rng.randi() % 256)
			elif op == 1:
				m.resize(rng.randi() % (m.size() + 1))
			elif op == 2 and m.size() > 0:
				m.set(0, rng.randi() % 30)
			elif op == 3 and m.size() >= 4:
				var at = (rng.randi() % (m.size() / 4)) * 4
				var w = words[rng.randi() % words.size()]
				for k in range(4):
					m.set(at + k, (w >> (8 * k)) & 0xff)
			else:
				var at = (rng.randi() % (m.size() / 4 + 1)) * 4
				for k in range(4):
					m.insert(at, rng.randi() % 256)
			dec("mut_%s_%d" % [item[0], i], m.hex_encode())

func hexdec(h):
	var out = PoolByteArray()
	var i = 0
	while i + 1 < h.length():
		out.append(("0x" + h.substr(i, 2)).hex_to_int())
		i += 2
	return out

func dec(label, h):
	print("DECIN|%s|%s" % [label, h])
	var v = bytes2var(hexdec(h))
	print("DEC|%s|%s|%d|%s" % [label, h, typeof(v), var2bytes(v).hex_encode()])

func nest_arrays(levels, inner):
	var v = inner
	for i in range(levels):
		v = [v]
	return v

func _init():
	enc("nil", null)
	enc("bool_true", true)
	enc("bool_false", false)
	enc("int_0", 0)
	enc("int_1", 1)
	enc("int_m1", -1)
	enc("int_max32", 2147483647)
	enc("int_2p31", 2147483648)
	enc("int_min32_m1", -2147483649)
	enc("int_max64", 9223372036854775807)
	enc("float_0", 0.0)
	enc("float_1_5", 1.5)
	enc("float_0_1", 0.1)
	enc("float_inf", INF)
	enc("float_1e40", 1e40)
	enc("string_empty", "")
	enc("string_hi", "hi")
	enc("string_abcd", "abcd")
	enc("string_e_acute", "é")
	enc("string_cjk", "日本語")
	enc("vector2", Vector2(1.5, -2))
	enc("vector2_0_1", Vector2(0.1, 0))
	enc("rect2", Rect2(1, 2, 3, 4))
	enc("vector3", Vector3(1, 2, 3))
	enc("transform2d", Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)))
	enc("plane", Plane(0, 1, 0, 5))
	enc("quat", Quat(0, 0, 0, 1))
	enc("aabb", AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)))
	enc("basis", Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)))
	enc("transform", Transform(Basis(), Vector3(1, 2, 3)))
	enc("color", Color(1, 0.5, 0, 1))
	enc("color_0_1", Color(0.1, 0.2, 0.3, 0.4))
	enc("nodepath_rel", NodePath("a/b"))
	enc("nodepath_aligned", NodePath("/root/abcd:wxyz"))
	enc("rid_empty", RID())
	var freed = Node.new()
	freed.free()
	enc("object_freed", freed)
	enc("object_live", Reference.new())
	enc("dict_empty", {})
	enc("dict_a1", {"a": 1})
	enc("dict_nested", {"k": [1, {"z": null}], "n": {}})
	enc("array_empty", [])
	enc("array_1_a", [1, "a"])
	enc("array_nested", [[true]])
	enc("array_every_scalar", [null, false, 7, 2.5, "s", Vector2(1, 2), Color(0, 0, 0, 1), NodePath("x")])
	enc("array_depth_1024", nest_arrays(1024, null))
	enc("pool_byte", PoolByteArray([1, 2, 3]))
	enc("pool_byte_empty", PoolByteArray())
	enc("pool_int", PoolIntArray([1, -1, 2147483647]))
	enc("pool_real", PoolRealArray([1.5, 0.1]))
	enc("pool_string", PoolStringArray(["a", "bcd", "", "é"]))
	enc("pool_vector2", PoolVector2Array([Vector2(1, 2), Vector2(-3, 0.5)]))
	enc("pool_vector3", PoolVector3Array([Vector3(1, 2, 3)]))
	enc("pool_color", PoolColorArray([Color(1, 0, 0, 1)]))

	dec("int_64flag", "0200010005000000ffffffff")
	dec("int_flagbyte1", "02ff000005000000")
	dec("real64", "030001009a9999999999b93f")
	dec("type_27", "1b000000")
	dec("string_nul_inside", "040000000300000061006200")
	dec("string_nopad_end", "040000000100000061")
	dec("vector2_64flag", "050001000000c03f000000c0")
	dec("rid_bytes", "100000002a000000")
	dec("object_id_null", "110001000000000000000000")
	dec("object_full_denied", "1100000000000000")
	dec("nodepath_old", "0f0000000100000061000000")
	dec("nodepath_garbage_pad", "0f000000020000800000000000000000010000006100a0400100000062004040")
	dec("dict_dup_keys", "12000000020000000200000001000000020000000500000002000000010000000200000006000000")
	dec("array_shared_bit", "130000000100008000000000")
	dec("array_count_huge", "13000000ffffff7f")
	dec("pba_nopad", "1400000001000000ab")
	dec("pba_overrun", "1400000005000000ab")
	dec("pstr_neg", "17000000ffffffff")
	dec("pool_int_neg", "15000000ffffffff")
	dec("pv2_64flag", "18000100010000000000803f00000040")
	dec("short3", "020000")
	mutate_all(4)
	quit()

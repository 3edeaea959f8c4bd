extends SceneTree
# Godot 4.x side of the Variant interop test (run.sh). Prints, one per line:
#   ENC|<label>|<typeof>|<var_to_bytes hex>    for one value of every type, nested and edge cases
#   DECIN|<label>|<input hex>, then, unless bytes_to_var aborted (3.x does on errors):
#   DEC|<label>|<input hex>|<typeof>|<var_to_bytes(bytes_to_var(input)) hex>
# The Rust side (core/tests/variant_interop.rs) holds the same values under the same labels and
# checks that it decodes each ENC line to its value and encodes the value to those bytes, and
# that it decodes each DEC input as Godot did (or refuses it where Godot fails).
# Run: godot4 --headless -s variants_g4.gd

class Inner extends RefCounted:
	var x := 1

var encoded := []

func enc(label: String, v) -> void:
	var bytes := var_to_bytes(v)
	encoded.append([label, bytes])
	print("ENC|%s|%d|%s" % [label, typeof(v), bytes.hex_encode()])

# Seeded mutations of every encoding above (the same inputs on every run of this version):
# what bytes_to_var makes of almost-valid bytes, for the Rust side to match.
func mutate_all(per_value: int) -> void:
	var rng := RandomNumberGenerator.new()
	rng.seed = 20261204
	var words := [0, 1, 2, 3, 4, 0x7fffffff, 0xffffffff, 0x80000001, 0x10001c, 0x1001b, 0x10003]
	for item in encoded:
		var bytes: PackedByteArray = item[1]
		if bytes.size() > 512:
			continue
		for i in per_value:
			var m := bytes.duplicate()
			var op := rng.randi() % 5
			if op == 0 and m.size() > 0:
				m[rng.randi() % m.size()] = rng.randi() % 256
			elif op == 1:
				m.resize(rng.randi() % (m.size() + 1))
			elif op == 2 and m.size() > 0:
				m[0] = rng.randi() % 45
			elif op == 3 and m.size() >= 4:
				var at := (rng.randi() % (m.size() / 4)) * 4
				m.encode_u32(at, words[rng.randi() % words.size()])
			else:
				var at := (rng.randi() % (m.size() / 4 + 1)) * 4
				for k in 4:
					m.insert(at, rng.randi() % 256)
			dec("mut_%s_%d" % [item[0], i], m.hex_encode())

func dec(label: String, hex: String) -> void:
	print("DECIN|%s|%s" % [label, hex])
	var v = bytes_to_var(hex.hex_decode())
	print("DEC|%s|%s|%d|%s" % [label, hex, typeof(v), var_to_bytes(v).hex_encode()])

func nest_arrays(levels: int, inner):
	var v = inner
	for i in levels:
		v = [v]
	return v

func _initialize() -> void:
	enc("nil", null)
	enc("bool_true", true)
	enc("bool_false", false)
	enc("int_0", 0)
	enc("int_1", 1)
	enc("int_m1", -1)
	enc("int_max32", 2147483647)
	enc("int_2p31", 2147483648)
	enc("int_min32", -2147483648)
	enc("int_min32_m1", -2147483649)
	enc("int_max64", 9223372036854775807)
	enc("int_min64", -9223372036854775807 - 1)
	enc("float_0", 0.0)
	enc("float_1_5", 1.5)
	enc("float_0_1", 0.1)
	enc("float_inf", INF)
	enc("float_ninf", -INF)
	enc("float_1e40", 1e40)
	enc("float_nan", NAN)
	enc("string_empty", "")
	enc("string_hi", "hi")
	enc("string_abc", "abc")
	enc("string_abcd", "abcd")
	enc("string_e_acute", "é")
	enc("string_cjk", "日本語")
	enc("string_emoji", "😀!")
	enc("vector2", Vector2(1.5, -2))
	enc("vector2_0_1", Vector2(0.1, 0))
	enc("vector2i", Vector2i(1, -2))
	enc("rect2", Rect2(1, 2, 3, 4))
	enc("rect2i", Rect2i(1, 2, 3, -4))
	enc("vector3", Vector3(1, 2, 3))
	enc("vector3i", Vector3i(1, 2, -3))
	enc("transform2d", Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)))
	enc("vector4", Vector4(1, 2, 3, 4))
	enc("vector4i", Vector4i(1, 2, 3, -4))
	enc("plane", Plane(0, 1, 0, 5))
	enc("quaternion", Quaternion(0, 0, 0, 1))
	enc("aabb", AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)))
	enc("basis", Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)))
	enc("transform3d", Transform3D(Basis(), Vector3(1, 2, 3)))
	enc("projection", Projection(Vector4(1, 2, 3, 4), Vector4(5, 6, 7, 8), Vector4(9, 10, 11, 12), Vector4(13, 14, 15, 16)))
	enc("color", Color(1, 0.5, 0, 1))
	enc("color_0_1", Color(0.1, 0.2, 0.3, 0.4))
	enc("stringname", &"abc")
	enc("stringname_empty", &"")
	enc("nodepath_abs", NodePath("/root/RpcTest:position:x"))
	enc("nodepath_rel", NodePath("a/b"))
	enc("nodepath_subnames_only", NodePath(":position:x"))
	enc("nodepath_empty", NodePath(""))
	enc("rid_empty", RID())
	var obj_null: Object = null
	enc("object_null", obj_null)
	var freed := Node.new()
	freed.free()
	enc("object_freed", freed)
	enc("object_live", RefCounted.new())
	enc("callable", Callable(self, "enc"))
	enc("callable_empty", Callable())
	enc("dict_empty", {})
	enc("dict_a1", {"a": 1})
	enc("dict_mixed_keys", {1: "int", 1.0: "float", "1": "string", Vector2(1, 1): null})
	enc("dict_nested", {"k": [1, {"z": null}], "n": {}})
	var td: Dictionary[String, int] = {"x": 1, "y": 2}
	enc("dict_typed_string_int", td)
	var td2: Dictionary[int, Node] = {}
	enc("dict_typed_int_node", td2)
	var td3: Dictionary[Variant, bool] = {1: true}
	enc("dict_typed_variant_bool", td3)
	var td4: Dictionary[StringName, PackedByteArray] = {&"k": PackedByteArray([9])}
	enc("dict_typed_sn_pba", td4)
	enc("array_empty", [])
	enc("array_1_a", [1, "a"])
	enc("array_nested", [[true]])
	enc("array_every_scalar", [null, false, 7, 2.5, "s", Vector2(1, 2), Color(0, 0, 0, 1), &"n", NodePath("x")])
	var ta: Array[int] = [1, 2]
	enc("array_typed_int", ta)
	var tf: Array[float] = [1.5, 2.0]
	enc("array_typed_float", tf)
	var tsn: Array[StringName] = [&"a"]
	enc("array_typed_stringname", tsn)
	var tn: Array[Node] = []
	enc("array_typed_node", tn)
	var ti: Array[Inner] = []
	enc("array_typed_inner_script", ti)
	var tpa: Array[PackedInt32Array] = [PackedInt32Array([3])]
	enc("array_typed_packed", tpa)
	enc("array_depth_1024", nest_arrays(1024, null))
	enc("array_dicts_deep", nest_arrays(100, {"leaf": [1.5]}))
	enc("pba", PackedByteArray([1, 2, 3]))
	enc("pba_empty", PackedByteArray())
	enc("pba_4", PackedByteArray([1, 2, 3, 4]))
	var big := PackedByteArray()
	for i in 1000:
		big.append(i % 251)
	enc("pba_1000", big)
	enc("pi32", PackedInt32Array([1, -1, 2147483647]))
	enc("pi64", PackedInt64Array([1, 1099511627776, -9223372036854775807 - 1]))
	enc("pf32", PackedFloat32Array([1.5, -0.0]))
	enc("pf64", PackedFloat64Array([0.1, 1e300]))
	enc("pstr", PackedStringArray(["a", "bcd", "", "é"]))
	enc("pstr_empty", PackedStringArray())
	enc("pv2", PackedVector2Array([Vector2(1, 2), Vector2(-3, 0.5)]))
	enc("pv3", PackedVector3Array([Vector3(1, 2, 3)]))
	enc("pcolor", PackedColorArray([Color(1, 0, 0, 1), Color(0.1, 0.2, 0.3, 0.4)]))
	enc("pv4", PackedVector4Array([Vector4(1, 2, 3, 4)]))
	enc("pv4_empty", PackedVector4Array())

	# What bytes_to_var makes of inputs that are not its own output, valid or not.
	dec("bool_2", "0100000002000000")
	dec("int_flagbyte1", "02ff000005000000")
	dec("int_64flag", "0200010005000000ffffffff")
	dec("int_trailing", "0200000005000000ffff")
	dec("int_short", "02000000050000")
	dec("float_f64_short", "030001000000000000c03f")
	dec("float_f64_exact", "03000100000000000000f83f")
	dec("type_39", "27000000")
	dec("type_255", "ff000000")
	dec("type_0x42", "4200000005000000")
	dec("string_nopad_end", "040000000100000061")
	dec("string_nul_inside", "040000000300000061006200")
	dec("string_bom", "0400000004000000efbbbf41")
	dec("string_bom_twice", "0400000006000000efbbbfefbbbf4100")
	dec("string_nul_then_bad", "040000000300000061000ff0")
	dec("string_bad_utf8", "0400000001000000ff000000")
	dec("string_surrogate", "0400000003000000eda080ff")
	dec("string_overlong", "0400000002000000c0af0000")
	dec("string_above_10ffff", "0400000004000000f4908080")
	dec("string_truncated_seq", "0400000002000000e2820000")
	dec("string_neglen", "04000000ffffffff")
	dec("vector2_64flag", "050001000000000000000040000000000000f03f")
	dec("vector3i_short", "0a000000010000000200000003")
	dec("color_64flag", "140001000000803f0000003f000000000000803f")
	dec("nodepath_old", "160000000100000061000000")
	dec("nodepath_rel_a", "160000000100008000000000000000000100000061000000")
	dec("nodepath_abs_sub", "1600000001000080010000000100000004000000726f6f740100000078000000")
	dec("nodepath_flag2", "1600000001000080000000000200000001000000610000000100000062000000")
	dec("nodepath_count_huge", "16000000ffffffff0000000000000000")
	dec("rid", "170000002a00000000000000")
	dec("object_full_denied", "1800000000000000")
	dec("object_id_null", "180001000000000000000000")
	dec("callable_trailing", "19000000deadbeef")
	dec("dict_shared_bit", "1b000000010000800000000000000000")
	dec("dict_dup_keys", "1b000000020000000200000001000000020000000500000002000000010000000200000006000000")
	dec("dict_dup_three", "1b00000003000000020000000100000002000000050000000200000002000000020000000700000002000000010000000200000006000000")
	dec("dict_zero_keys", "1b000000020000000300000000000000020000000100000003000000000000800200000002000000")
	dec("dict_string_stringname_keys", "1b000000020000000400000001000000610000000200000001000000150000000100000061000000 0200000002000000".replace(" ", ""))
	dec("dict_int_float_keys", "1b00000002000000020000000100000002000000010000000300000000 00803f0200000002000000".replace(" ", ""))
	dec("dict_typed_string_int", "1b0005000400000002000000010000000400000001000000780000000200000001000000")
	dec("dict_typed_mismatch", "1b00050004000000020000000100000002000000070000000200000001000000")
	dec("dict_count_huge", "1b000000ffffff7f")
	dec("array_count_huge", "1c000000ffffff7f")
	dec("array_shared_bit", "1c0000000100008000000000")
	dec("array_typed_mismatch", "1c0001000200000001000000040000000100000061000000")
	dec("array_typed_badtype", "1c0001002700000000000000")
	dec("array_typed_classname", "1c000200040000004e6f646500000000")
	dec("array_typed_script", "1c00030004000000612e676400000000")
	dec("array_typed_kind_nil", "1c00010000000000010000000200000001000000")
	dec("array_typed_float_int", "1c00010003000000010000000200000001000000")
	dec("array_typed_string_sn", "1c0001000400000001000000150000000100000061000000")
	dec("array_typed_sn_string", "1c0001001500000001000000040000000100000061000000")
	dec("array_typed_object_nil", "1c000100180000000100000000000000")
	dec("array_typed_class_int", "1c000200040000004e6f6465010000000200000001000000")
	dec("array_typed_kind3_badutf8", "1c00030001000000ff00000000000000")
	dec("pba_nopad", "1d00000001000000ab")
	dec("pba_overrun", "1d00000005000000ab")
	dec("pba_neg", "1d000000ffffffff")
	dec("pi32_neg", "1e000000ffffffff")
	dec("pi32_overflow", "1e00000000000040")
	dec("pi32_short", "1e000000020000000100000000")
	dec("pf32_64flag", "20000100010000000000c03f")
	dec("pstr_neg", "22000000ffffffff")
	dec("pstr_nul_len", "22000000010000000200000061000000")
	dec("pstr_no_nul", "22000000010000000100000061000000")
	dec("pv2_64flag", "230001000100000000000000000000400000000000000840")
	dec("pcolor_64flag", "25000100010000000000803f00000000000000000000803f")
	dec("pv4_64flag", "2600010001000000000000000000f03f000000000000004000000000000008400000000000001040")
	dec("empty", "")
	dec("short3", "020000")
	mutate_all(4)
	quit(0)

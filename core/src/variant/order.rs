//! Dictionary key identity: which decoded keys Godot treats as the same key.
//!
//! Godot's dictionaries hash keys with `hash_compare`: `String` and `StringName` with the same
//! text are one key, `0.0` and `-0.0` are one key, every NaN is the same key, and `1` and `1.0`
//! are different keys. [`key_order`] is a total order with exactly those equalities, so
//! duplicates are found by sorting (O(n log n) comparisons, each bounded by the keys' size)
//! rather than by comparing every pair.

use alloc::vec::Vec;
use core::cmp::Ordering;

use super::VariantType;
use super::math::Reals;
use super::value::{Object, Variant};

/// Keeps one entry per key: at the first position of the key, with the last value, as
/// Godot's `Dictionary` assignment does.
pub(crate) fn dedup(entries: Vec<(Variant, Variant)>) -> Vec<(Variant, Variant)> {
    let n = entries.len();
    if n < 2 {
        return entries;
    }
    let mut index: Vec<usize> = (0..n).collect();
    // Stable: equal keys stay in input order, so each run starts at its first occurrence.
    index.sort_by(|&a, &b| key_order(&entries[a].0, &entries[b].0));
    // value_from[i] = where the value of the entry kept at i comes from; usize::MAX = dropped.
    let mut value_from = alloc::vec![usize::MAX; n];
    let mut duplicates = false;
    let mut run = 0;
    while run < n {
        let mut end = run + 1;
        while end < n && key_order(&entries[index[run]].0, &entries[index[end]].0) == Ordering::Equal {
            end += 1;
        }
        value_from[index[run]] = index[end - 1];
        duplicates |= end - run > 1;
        run = end;
    }
    if !duplicates {
        return entries;
    }
    let mut slots: Vec<Option<(Variant, Variant)>> = entries.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let from = value_from[i];
        if from == usize::MAX {
            continue;
        }
        let Some((key, mut value)) = slots[i].take() else { continue };
        if from != i {
            // `from` comes later than `i` and is not kept itself, so its slot is still full.
            if let Some((_, last)) = slots[from].take() {
                value = last;
            }
        }
        out.push((key, value));
    }
    out
}

/// Floats as dictionary keys: one NaN, one zero.
fn float_order(a: f64, b: f64) -> Ordering {
    let canonical = |f: f64| {
        if f.is_nan() {
            f64::NAN
        } else if f == 0.0 {
            0.0
        } else {
            f
        }
    };
    canonical(a).total_cmp(&canonical(b))
}

fn reals_order<T: Reals>(a: &T, b: &T) -> Ordering {
    let components = |v: &T| {
        let mut out = [0.0; 16];
        let mut n = 0;
        let _ = v.each(&mut |c| {
            if let Some(slot) = out.get_mut(n) {
                *slot = c;
                n += 1;
            }
            Ok(())
        });
        (out, n)
    };
    let ((a, n), (b, _)) = (components(a), components(b));
    a[..n]
        .iter()
        .zip(&b[..n])
        .map(|(&x, &y)| float_order(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn slice_order<T>(a: &[T], b: &[T], each: impl Fn(&T, &T) -> Ordering) -> Ordering {
    a.iter().zip(b).map(|(x, y)| each(x, y)).find(|o| o.is_ne()).unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// The type as a key rank: `StringName` ranks with `String`.
fn rank(v: &Variant) -> VariantType {
    match v.variant_type() {
        VariantType::StringName => VariantType::String,
        t => t,
    }
}

/// A total order on keys whose equality is Godot's key identity.
///
/// Keys come from untrusted input and may nest as deep as the decoder allows, so the
/// recursive cases stay in this small function and everything flat is compared in
/// [`flat_order`].
pub(crate) fn key_order(a: &Variant, b: &Variant) -> Ordering {
    use Variant as V;
    match (a, b) {
        (V::Array(x), V::Array(y)) => items_order(&x.items, &y.items),
        (V::Dictionary(x), V::Dictionary(y)) => entries_order(&x.entries, &y.entries),
        (V::Object(x), V::Object(y)) => object_order(x, y),
        _ => flat_order(a, b),
    }
}

fn items_order(a: &[Variant], b: &[Variant]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = key_order(x, y);
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn entries_order(a: &[(Variant, Variant)], b: &[(Variant, Variant)]) -> Ordering {
    for ((k1, v1), (k2, v2)) in a.iter().zip(b) {
        let order = key_order(k1, k2);
        if order.is_ne() {
            return order;
        }
        let order = key_order(v1, v2);
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Every case of [`key_order`] that does not nest (and different types, by rank).
#[inline(never)]
fn flat_order(a: &Variant, b: &Variant) -> Ordering {
    use Variant as V;
    let by_rank = rank(a).cmp(&rank(b));
    if by_rank.is_ne() {
        return by_rank;
    }
    match (a, b) {
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Rid(x), V::Rid(y)) => x.cmp(y),
        (V::Float(x), V::Float(y)) => float_order(*x, *y),
        (V::String(x) | V::StringName(x), V::String(y) | V::StringName(y)) => x.cmp(y),
        (V::Vector2(x), V::Vector2(y)) => reals_order(x, y),
        (V::Rect2(x), V::Rect2(y)) => reals_order(x, y),
        (V::Vector3(x), V::Vector3(y)) => reals_order(x, y),
        (V::Transform2D(x), V::Transform2D(y)) => reals_order(&**x, &**y),
        (V::Vector4(x), V::Vector4(y)) => reals_order(x, y),
        (V::Plane(x), V::Plane(y)) => reals_order(x, y),
        (V::Quaternion(x), V::Quaternion(y)) => reals_order(x, y),
        (V::Aabb(x), V::Aabb(y)) => reals_order(&**x, &**y),
        (V::Basis(x), V::Basis(y)) => reals_order(&**x, &**y),
        (V::Transform3D(x), V::Transform3D(y)) => reals_order(&**x, &**y),
        (V::Projection(x), V::Projection(y)) => reals_order(&**x, &**y),
        (V::Vector2i(x), V::Vector2i(y)) => (x.x, x.y).cmp(&(y.x, y.y)),
        (V::Vector3i(x), V::Vector3i(y)) => (x.x, x.y, x.z).cmp(&(y.x, y.y, y.z)),
        (V::Vector4i(x), V::Vector4i(y)) => (x.x, x.y, x.z, x.w).cmp(&(y.x, y.y, y.z, y.w)),
        (V::Rect2i(x), V::Rect2i(y)) => (x.position.x, x.position.y, x.size.x, x.size.y).cmp(&(
            y.position.x,
            y.position.y,
            y.size.x,
            y.size.y,
        )),
        (V::Color(x), V::Color(y)) => slice_order(&[x.r, x.g, x.b, x.a], &[y.r, y.g, y.b, y.a], |p, q| {
            float_order(f64::from(*p), f64::from(*q))
        }),
        (V::NodePath(x), V::NodePath(y)) => x.cmp(y),
        (V::Signal(x), V::Signal(y)) => (&x.name, x.object).cmp(&(&y.name, y.object)),
        (V::PackedByteArray(x), V::PackedByteArray(y)) => x.cmp(y),
        (V::PackedInt32Array(x), V::PackedInt32Array(y)) => x.cmp(y),
        (V::PackedInt64Array(x), V::PackedInt64Array(y)) => x.cmp(y),
        (V::PackedFloat32Array(x), V::PackedFloat32Array(y)) => {
            slice_order(x, y, |p, q| float_order(f64::from(*p), f64::from(*q)))
        }
        (V::PackedFloat64Array(x), V::PackedFloat64Array(y)) => slice_order(x, y, |p, q| float_order(*p, *q)),
        (V::PackedStringArray(x), V::PackedStringArray(y)) => x.cmp(y),
        (V::PackedVector2Array(x), V::PackedVector2Array(y)) => slice_order(x, y, reals_order),
        (V::PackedVector3Array(x), V::PackedVector3Array(y)) => slice_order(x, y, reals_order),
        (V::PackedVector4Array(x), V::PackedVector4Array(y)) => slice_order(x, y, reals_order),
        (V::PackedColorArray(x), V::PackedColorArray(y)) => {
            slice_order(x, y, |p, q| key_order(&V::Color(*p), &V::Color(*q)))
        }
        // Nil, Callable: one value each. (Different types were ordered by rank above.)
        _ => Ordering::Equal,
    }
}

fn object_order(a: &Object, b: &Object) -> Ordering {
    let kind = |o: &Object| match o {
        Object::Null => 0,
        Object::Id(_) => 1,
        Object::Full(_) => 2,
    };
    match (a, b) {
        (Object::Id(x), Object::Id(y)) => x.cmp(y),
        (Object::Full(x), Object::Full(y)) => {
            let order = x.class.cmp(&y.class);
            if order.is_ne() {
                return order;
            }
            for ((n1, v1), (n2, v2)) in x.properties.iter().zip(&y.properties) {
                let order = n1.cmp(n2).then_with(|| key_order(v1, v2));
                if order.is_ne() {
                    return order;
                }
            }
            x.properties.len().cmp(&y.properties.len())
        }
        _ => kind(a).cmp(&kind(b)),
    }
}

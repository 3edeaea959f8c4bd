//! Godot's math types, as plain data in wire order.
//!
//! Real components are `f64`: Godot 4 sends them as f32 (standard builds) or f64
//! (`precision=double` builds, header flag 64), and an f64 holds either exactly. The encoder
//! writes f32 unless a component would change, so values that came from Godot go back
//! byte-for-byte. `Color` is always f32, as in Godot.

use super::wire::{Reader, Sink, fits_f32};
use super::{DecodeError, EncodeError};

macro_rules! vector {
    ($(#[$doc:meta])* $name:ident, $t:ty, $($f:ident),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        #[allow(missing_docs)] // The components, named as in Godot.
        pub struct $name {
            $(pub $f: $t,)+
        }
    };
}

vector!(
    /// Godot's `Vector2`.
    Vector2, f64, x, y
);
vector!(
    /// Godot's `Vector3`.
    Vector3, f64, x, y, z
);
vector!(
    /// Godot's `Vector4` (4.x).
    Vector4, f64, x, y, z, w
);
vector!(
    /// Godot's `Quaternion` (3.x `Quat`).
    Quaternion, f64, x, y, z, w
);
vector!(
    /// Godot's `Vector2i` (4.x).
    Vector2i, i32, x, y
);
vector!(
    /// Godot's `Vector3i` (4.x).
    Vector3i, i32, x, y, z
);
vector!(
    /// Godot's `Vector4i` (4.x).
    Vector4i, i32, x, y, z, w
);
vector!(
    /// Godot's `Color`: four f32 channels, always sent as f32.
    Color, f32, r, g, b, a
);

/// Godot's `Rect2`: position and size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect2 {
    /// The top-left corner.
    pub position: Vector2,
    /// The extent.
    pub size: Vector2,
}

/// Godot's `Rect2i` (4.x).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect2i {
    /// The top-left corner.
    pub position: Vector2i,
    /// The extent.
    pub size: Vector2i,
}

/// Godot's `Transform2D`: the columns x, y and origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform2D {
    /// The x basis column.
    pub x: Vector2,
    /// The y basis column.
    pub y: Vector2,
    /// The translation.
    pub origin: Vector2,
}

/// Godot's `Plane`: a normal and the distance from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Plane {
    /// The normal.
    pub normal: Vector3,
    /// The distance from the origin along the normal.
    pub d: f64,
}

/// Godot's `AABB`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Aabb {
    /// The minimum corner.
    pub position: Vector3,
    /// The extent.
    pub size: Vector3,
}

/// Godot's `Basis`, by **rows** as Godot stores and sends it: `Basis(x, y, z)` in GDScript
/// takes columns, so its first row is `(x.x, y.x, z.x)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Basis {
    /// The three rows.
    pub rows: [Vector3; 3],
}

/// Godot's `Transform3D` (3.x `Transform`): a basis and an origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform3D {
    /// The rotation and scale.
    pub basis: Basis,
    /// The translation.
    pub origin: Vector3,
}

/// Godot's `Projection` (4.x): four columns.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Projection {
    /// The columns x, y, z, w.
    pub columns: [Vector4; 4],
}

/// A type sent as a fixed number of real components.
pub(crate) trait Reals: Sized {
    /// Calls `f` with each component in wire order.
    fn each(&self, f: &mut dyn FnMut(f64) -> Result<(), EncodeError>) -> Result<(), EncodeError>;
    /// Builds the value from components in wire order.
    fn read(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Self, DecodeError>;

    /// Whether every component survives f32 (then the f32 encoding loses nothing).
    fn fits_f32(&self) -> bool {
        let mut fits = true;
        let _ = self.each(&mut |c| {
            fits &= fits_f32(c);
            Ok(())
        });
        fits
    }

    fn encode(&self, out: &mut dyn Sink, wide: bool) -> Result<(), EncodeError> {
        self.each(&mut |c| out.real(c, wide))
    }

    fn decode(r: &mut Reader<'_>, wide: bool) -> Result<Self, DecodeError> {
        Self::read(&mut || r.real(wide))
    }
}

macro_rules! reals {
    ($name:ty, |$v:ident| [$($get:expr),+], |$next:ident| $build:expr) => {
        impl Reals for $name {
            fn each(&self, f: &mut dyn FnMut(f64) -> Result<(), EncodeError>) -> Result<(), EncodeError> {
                let $v = self;
                $(f($get)?;)+
                Ok(())
            }
            fn read($next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Self, DecodeError> {
                Ok($build)
            }
        }
    };
}

fn v2(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Vector2, DecodeError> {
    Ok(Vector2 { x: next()?, y: next()? })
}

fn v3(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Vector3, DecodeError> {
    Ok(Vector3 { x: next()?, y: next()?, z: next()? })
}

fn v4(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Vector4, DecodeError> {
    Ok(Vector4 { x: next()?, y: next()?, z: next()?, w: next()? })
}

reals!(Vector2, |v| [v.x, v.y], |n| v2(n)?);
reals!(Vector3, |v| [v.x, v.y, v.z], |n| v3(n)?);
reals!(Vector4, |v| [v.x, v.y, v.z, v.w], |n| v4(n)?);
reals!(Quaternion, |v| [v.x, v.y, v.z, v.w], |n| Quaternion { x: n()?, y: n()?, z: n()?, w: n()? });
reals!(Rect2, |v| [v.position.x, v.position.y, v.size.x, v.size.y], |n| Rect2 {
    position: v2(n)?,
    size: v2(n)?
});
reals!(Transform2D, |v| [v.x.x, v.x.y, v.y.x, v.y.y, v.origin.x, v.origin.y], |n| Transform2D {
    x: v2(n)?,
    y: v2(n)?,
    origin: v2(n)?
});
reals!(Plane, |v| [v.normal.x, v.normal.y, v.normal.z, v.d], |n| Plane { normal: v3(n)?, d: n()? });
reals!(Aabb, |v| [v.position.x, v.position.y, v.position.z, v.size.x, v.size.y, v.size.z], |n| Aabb {
    position: v3(n)?,
    size: v3(n)?
});
reals!(
    Basis,
    |v| [
        v.rows[0].x,
        v.rows[0].y,
        v.rows[0].z,
        v.rows[1].x,
        v.rows[1].y,
        v.rows[1].z,
        v.rows[2].x,
        v.rows[2].y,
        v.rows[2].z
    ],
    |n| Basis { rows: [v3(n)?, v3(n)?, v3(n)?] }
);

impl Reals for Transform3D {
    fn each(&self, f: &mut dyn FnMut(f64) -> Result<(), EncodeError>) -> Result<(), EncodeError> {
        self.basis.each(f)?;
        self.origin.each(f)
    }
    fn read(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Self, DecodeError> {
        Ok(Self { basis: Basis::read(next)?, origin: v3(next)? })
    }
}

impl Reals for Projection {
    fn each(&self, f: &mut dyn FnMut(f64) -> Result<(), EncodeError>) -> Result<(), EncodeError> {
        self.columns.iter().try_for_each(|c| c.each(f))
    }
    fn read(next: &mut dyn FnMut() -> Result<f64, DecodeError>) -> Result<Self, DecodeError> {
        Ok(Self { columns: [v4(next)?, v4(next)?, v4(next)?, v4(next)?] })
    }
}

/// A type sent as a fixed number of `i32` components.
pub(crate) trait Ints: Sized {
    fn encode(&self, out: &mut dyn Sink) -> Result<(), EncodeError>;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! ints {
    ($name:ty, |$v:ident| [$($get:expr),+], |$r:ident| $build:expr) => {
        impl Ints for $name {
            fn encode(&self, out: &mut dyn Sink) -> Result<(), EncodeError> {
                let $v = self;
                $(out.i32($get)?;)+
                Ok(())
            }
            fn decode($r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($build)
            }
        }
    };
}

ints!(Vector2i, |v| [v.x, v.y], |r| Vector2i { x: r.i32()?, y: r.i32()? });
ints!(Vector3i, |v| [v.x, v.y, v.z], |r| Vector3i { x: r.i32()?, y: r.i32()?, z: r.i32()? });
ints!(Vector4i, |v| [v.x, v.y, v.z, v.w], |r| Vector4i {
    x: r.i32()?,
    y: r.i32()?,
    z: r.i32()?,
    w: r.i32()?
});
ints!(Rect2i, |v| [v.position.x, v.position.y, v.size.x, v.size.y], |r| Rect2i {
    position: Vector2i { x: r.i32()?, y: r.i32()? },
    size: Vector2i { x: r.i32()?, y: r.i32()? }
});

impl Color {
    pub(crate) fn encode(&self, out: &mut dyn Sink) -> Result<(), EncodeError> {
        [self.r, self.g, self.b, self.a].iter().try_for_each(|&c| out.f32(c))
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { r: r.f32()?, g: r.f32()?, b: r.f32()?, a: r.f32()? })
    }
}

//! RFC 6455 §5.3 masking, a word at a time.
//!
//! Masking is the hot loop of every client frame and every server read. XOR-ing eight bytes at
//! a time with the key repeated over a `u64` lets the compiler vectorise the loop; a byte loop
//! runs at about a third of the speed on the machines this was measured on.

/// Rotates a mask key so that byte `offset` of a payload lines up with key byte 0.
#[inline]
#[must_use]
pub fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

/// XORs `buf` in place with `key`, where `buf[0]` is payload byte `offset` of the frame.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Copies `src` into `dst` (same length) while XOR-ing with `key`, in one pass.
///
/// `src[0]` is payload byte `offset` of the frame.
#[inline]
pub fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    debug_assert_eq!(dst.len(), src.len());
    let key = rotate_key(key, offset);
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (dc, sc) in (&mut d).zip(&mut s) {
        let mut w = [0u8; 8];
        w.copy_from_slice(sc);
        dc.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    for (i, (db, sb)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *db = *sb ^ key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_the_byte_definition_for_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            for offset in 0..8 {
                let src: [u8; 40] = core::array::from_fn(|i| (i * 7 + 3) as u8);
                let mut a = src;
                let mut b = src;
                apply_mask(&mut a[..len], key, offset);
                naive(&mut b[..len], key, offset);
                assert_eq!(a[..len], b[..len]);
                let mut c = [0u8; 40];
                copy_masked(&mut c[..len], &src[..len], key, offset);
                assert_eq!(c[..len], b[..len]);
            }
        }
    }

    #[test]
    fn rfc6455_section_5_7_masked_hello() {
        // "Hello" masked with 37 fa 21 3d.
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }
}

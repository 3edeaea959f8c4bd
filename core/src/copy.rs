//! Copying message payloads between queues in blocks.
//!
//! Large `copy_from_slice` calls become one `memcpy`, and glibc (2.36, the version measured)
//! copies sizes above a few KiB with `rep movsb`. On the AMD Zen 3 servers this project is
//! benchmarked on, `rep movsb` runs at 3 GB/s when the destination lies 1–15 bytes past the
//! source modulo 4 KiB, and at about half of a vector loop's speed elsewhere, while 2 KiB blocks
//! (copied by glibc's vector loop) run at 45–55 GB/s whatever the alignment. Payload copies hit
//! that band systematically: a queued message sits 5 bytes into its record and a 64 KiB server
//! frame's payload 10 bytes into the frame, in buffers large enough to be page-aligned the same
//! way. Blocks cost nothing measurable on other libraries and CPUs.

/// Block size: below glibc's `rep movsb` threshold on AVX2 machines.
const BLOCK: usize = 2048;

/// `dst.copy_from_slice(src)`, in blocks.
#[inline]
pub(crate) fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    if src.len() <= BLOCK {
        dst.copy_from_slice(src);
        return;
    }
    assert_eq!(dst.len(), src.len(), "copy_bytes: lengths differ");
    for (d, s) in dst.chunks_mut(BLOCK).zip(src.chunks(BLOCK)) {
        d.copy_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::copy_bytes;

    #[test]
    fn copies_every_length_around_the_block_size() {
        let src: std::vec::Vec<u8> = (0..3 * super::BLOCK + 7).map(|i| (i * 31 + 5) as u8).collect();
        for len in [0, 1, super::BLOCK - 1, super::BLOCK, super::BLOCK + 1, 2 * super::BLOCK, src.len()] {
            let mut dst = std::vec![0u8; len];
            copy_bytes(&mut dst, &src[..len]);
            assert_eq!(dst, src[..len]);
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn different_lengths_panic_as_copy_from_slice_does() {
        let src = [1u8; 5000];
        let mut dst = [0u8; 4999];
        copy_bytes(&mut dst, &src);
    }
}

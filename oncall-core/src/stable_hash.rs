//! Hashes whose values are part of the library's contract: written to vendors (aliases), stored by
//! hosts (drift ids) or compared across processes (the digest of a saved plan). They must never
//! change between releases or platforms, which std's hashers do not promise; FNV-1a is tiny, fixed
//! by its specification, and good enough where no adversary picks the input.

/// FNV-1a with a 64-bit state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a with a 128-bit state: for digests, where 64 bits would make an accidental match between
/// two different inputs merely unlikely rather than negligible.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv128(u128);

impl Fnv128 {
    pub(crate) fn new() -> Fnv128 {
        Fnv128(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        // The FNV-128 prime, 2^88 + 2^8 + 0x3b.
        const PRIME: u128 = (1 << 88) + (1 << 8) + 0x3b;
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    pub(crate) fn finish(self) -> u128 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published FNV-1a test vectors: the hashes never change.
    #[test]
    fn matches_the_published_vectors() {
        let h64 = |s: &str| {
            let mut h = Fnv64::new();
            h.feed(s.as_bytes());
            h.finish()
        };
        assert_eq!(h64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h64("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h64("foobar"), 0x8594_4171_f739_67e8);
        let h128 = |s: &str| {
            let mut h = Fnv128::new();
            h.feed(s.as_bytes());
            h.finish()
        };
        assert_eq!(h128(""), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(h128("a"), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }
}

//! NumPy-compatible seeding: `SeedSequence` → `PCG64` → `Generator`.
//!
//! Gymnasium seeds every environment with `np.random.default_rng(seed)`; reproducing that stream
//! bit for bit is what lets `reset(Some(seed))` here start the very episode Gymnasium starts.
//! The constants are NumPy's (`bit_generator.pyx`, `pcg64.h`); the arithmetic is all wrapping
//! `u32`/`u128`, exactly as the C code.

use crate::error::EnvError;
use std::fmt;
use std::str::FromStr;

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// A seed of any size, as NumPy's `SeedSequence` takes it: a non-negative integer split into
/// little-endian `u32` words (0 is the single word `[0]`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Seed {
    words: Vec<u32>,
}

impl Seed {
    /// A seed from its little-endian `u32` words (trailing zero words are dropped, as NumPy does).
    pub fn from_words(words: &[u32]) -> Self {
        let mut words = words.to_vec();
        while words.len() > 1 && words.last() == Some(&0) {
            words.pop();
        }
        if words.is_empty() {
            words.push(0);
        }
        Seed { words }
    }

    /// The little-endian `u32` words of the integer.
    pub fn words(&self) -> &[u32] {
        &self.words
    }
}

impl From<u64> for Seed {
    fn from(v: u64) -> Self {
        Seed::from_words(&[v as u32, (v >> 32) as u32])
    }
}

impl From<u128> for Seed {
    fn from(v: u128) -> Self {
        Seed::from_words(&[
            v as u32,
            (v >> 32) as u32,
            (v >> 64) as u32,
            (v >> 96) as u32,
        ])
    }
}

impl From<u32> for Seed {
    fn from(v: u32) -> Self {
        Seed::from_words(&[v])
    }
}

impl FromStr for Seed {
    type Err = EnvError;

    /// Parses a non-negative decimal integer of any size.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EnvError::InvalidSeed(format!(
                "expected a non-negative decimal integer, got {s:?}"
            )));
        }
        // Schoolbook base-10 → base-2^32 conversion: words = words * 10 + digit.
        let mut words: Vec<u32> = vec![0];
        for b in s.bytes() {
            let mut carry = u64::from(b - b'0');
            for w in words.iter_mut() {
                let v = u64::from(*w) * 10 + carry;
                *w = v as u32;
                carry = v >> 32;
            }
            if carry != 0 {
                words.push(carry as u32);
            }
        }
        Ok(Seed::from_words(&words))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({:?})", self.words)
    }
}

/// NumPy's `SeedSequence` (no spawn key): mixes the entropy into a pool of four words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; POOL_SIZE],
}

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

impl SeedSequence {
    /// Mixes `seed` into the entropy pool, as `np.random.SeedSequence(seed)` does.
    pub fn new(seed: &Seed) -> Self {
        let entropy = seed.words();
        let mut hash_const = INIT_A;
        let mut pool = [0u32; POOL_SIZE];
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        for src in 0..POOL_SIZE {
            for dst in 0..POOL_SIZE {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash_const);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        for &word in entropy.iter().skip(POOL_SIZE) {
            for slot in pool.iter_mut() {
                let h = hashmix(word, &mut hash_const);
                *slot = mix(*slot, h);
            }
        }
        SeedSequence { pool }
    }

    /// `generate_state(n, np.uint32)`: `n` words drawn from the pool.
    pub fn generate_state_u32(&self, n: usize) -> Vec<u32> {
        let mut hash_const = INIT_B;
        (0..n)
            .map(|i| {
                let mut v = self.pool[i % POOL_SIZE] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash_const);
                v ^ (v >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n, np.uint64)`: pairs of `u32` words joined little-endian.
    pub fn generate_state_u64(&self, n: usize) -> Vec<u64> {
        self.generate_state_u32(2 * n)
            .chunks_exact(2)
            .map(|p| u64::from(p[0]) | (u64::from(p[1]) << 32))
            .collect()
    }
}

const PCG_MULT: u128 = (2_549_297_995_355_413_924u128 << 64) | 4_865_540_595_714_422_341u128;

/// NumPy's `PCG64` bit generator (128-bit LCG with the XSL-RR output function).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
}

impl Pcg64 {
    /// `PCG64(SeedSequence(seed))`.
    pub fn from_seed_sequence(ss: &SeedSequence) -> Self {
        let s = ss.generate_state_u64(4);
        let init_state = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let init_seq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = Pcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    /// The generator's `(state, inc)`, as NumPy's `PCG64().state` reports them.
    pub fn state(&self) -> (u128, u128) {
        (self.state, self.inc)
    }

    #[inline(always)]
    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// `random_raw()`: the next 64-bit output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }
}

/// NumPy's `Generator(PCG64(...))`: the `np_random` of every Gymnasium environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpRandom {
    bits: Pcg64,
}

impl NpRandom {
    /// `np.random.default_rng(seed)`.
    pub fn from_seed(seed: &Seed) -> Self {
        NpRandom {
            bits: Pcg64::from_seed_sequence(&SeedSequence::new(seed)),
        }
    }

    /// `default_rng(None)`: seeded from the operating system's entropy, as Gymnasium does for
    /// an environment reset without a seed before it ever had one.
    pub fn from_os_entropy() -> Self {
        NpRandom::from_seed(&Seed::from(rand::random::<u128>()))
    }

    /// The underlying bit generator.
    pub fn bit_generator(&self) -> &Pcg64 {
        &self.bits
    }

    /// `random()`: a double in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn random(&mut self) -> f64 {
        (self.bits.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `uniform(low, high)`: `low + (high - low) * random()`, the range taken in f64 first.
    #[inline]
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let range = high - low;
        let u = self.random();
        // Two roundings, as NumPy does: never let this contract into a fused multiply-add.
        let scaled = std::hint::black_box(range * u);
        low + scaled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_seeds_split_into_words() {
        let s: Seed = "4294967297".parse().unwrap();
        assert_eq!(s.words(), &[1, 1]);
        assert_eq!("0".parse::<Seed>().unwrap(), Seed::from(0u64));
        assert_eq!(Seed::from(0u64).words(), &[0]);
        assert!("-1".parse::<Seed>().is_err());
        assert!("".parse::<Seed>().is_err());
        assert!("12a".parse::<Seed>().is_err());
        let big: Seed = "340282366920938463463374607431768211456".parse().unwrap();
        assert_eq!(big.words(), &[0, 0, 0, 0, 1]);
    }

    #[test]
    fn first_doubles_are_independent_of_the_stream_position_of_others() {
        let mut a = NpRandom::from_seed(&Seed::from(7u64));
        let mut b = a.clone();
        let xs: Vec<f64> = (0..4).map(|_| a.random()).collect();
        let ys: Vec<f64> = (0..4).map(|_| b.random()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_ne!(xs[0], xs[1]);
    }
}

//! Observation and action spaces (Gymnasium's `Discrete` and `Box`).

use crate::error::{EnvError, Result};
use rand::Rng;
use std::fmt;

/// A Gymnasium space. Observations are always flat `f32` vectors; `Box` spaces may describe a
/// multi-dimensional `shape`, flattened in C order.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// `Discrete(n, start)`: the integers `start, start + 1, ..., start + n - 1`.
    Discrete {
        /// Number of values (at least 1).
        n: u64,
        /// The first value.
        start: i64,
    },
    /// `Box(low, high, shape, float32)`.
    Box(BoxSpace),
}

/// The bounds and shape of a `Box` space (`f32`, C order, bounds may be infinite).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSpace {
    low: Vec<f32>,
    high: Vec<f32>,
    shape: Vec<usize>,
}

/// The element count of a Box `shape`, or a descriptive error when it does not fit in memory:
/// the product overflows `usize`, or `f32` bounds of that length could not be addressed.
fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / std::mem::size_of::<f32>())
        .ok_or_else(|| {
            EnvError::InvalidArgument(format!(
                "Box shape {shape:?} has more elements than fit in memory"
            ))
        })
}

impl BoxSpace {
    /// A box with per-element bounds; `low` and `high` have `shape.iter().product()` elements.
    ///
    /// Errors ([`EnvError::InvalidArgument`]) when the element count of `shape` overflows, when
    /// `low` or `high` has another length, or when a bound is NaN or `low > high`.
    pub fn new(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        let n = element_count(&shape)?;
        if low.len() != n || high.len() != n {
            return Err(EnvError::InvalidArgument(format!(
                "Box bounds have {} and {} elements but shape {shape:?} needs {n}",
                low.len(),
                high.len()
            )));
        }
        if let Some(i) = (0..n).find(|&i| low[i].is_nan() || high[i].is_nan() || low[i] > high[i]) {
            return Err(EnvError::InvalidArgument(format!(
                "Box bound {i}: low {} must not exceed high {}",
                low[i], high[i]
            )));
        }
        Ok(BoxSpace { low, high, shape })
    }

    /// A box with the same scalar bounds on every element.
    ///
    /// Errors like [`BoxSpace::new`], and also when the memory for the bounds cannot be had
    /// (a huge `shape` is refused, not a reason to abort).
    pub fn uniform(low: f32, high: f32, shape: Vec<usize>) -> Result<Self> {
        let n = element_count(&shape)?;
        let filled = |v: f32| -> Result<Vec<f32>> {
            let mut bounds = Vec::new();
            bounds.try_reserve_exact(n).map_err(|e| {
                EnvError::InvalidArgument(format!(
                    "Box shape {shape:?}: cannot allocate bounds for {n} elements ({e})"
                ))
            })?;
            bounds.resize(n, v);
            Ok(bounds)
        };
        let (lows, highs) = (filled(low)?, filled(high)?);
        BoxSpace::new(lows, highs, shape)
    }

    /// Lower bounds, flat.
    pub fn low(&self) -> &[f32] {
        &self.low
    }

    /// Upper bounds, flat.
    pub fn high(&self) -> &[f32] {
        &self.high
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn flat_dim(&self) -> usize {
        self.low.len()
    }

    /// Whether `x` has the right length and lies within the bounds.
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.low.len()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (lo, hi))| *v >= *lo && *v <= *hi)
    }

    /// Clips `x` into the bounds in place (NaN stays NaN; callers validate first).
    pub fn clip(&self, x: &mut [f32]) {
        for (v, (lo, hi)) in x.iter_mut().zip(self.low.iter().zip(&self.high)) {
            *v = v.max(*lo).min(*hi);
        }
    }

    /// Checks that `x` has the flat dimension and finite components.
    pub fn check_action(&self, x: &[f32]) -> Result<()> {
        if x.len() != self.low.len() {
            return Err(EnvError::ActionLength {
                expected: self.low.len(),
                actual: x.len(),
            });
        }
        if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EnvError::NonFiniteAction { index, value });
        }
        Ok(())
    }

    /// Samples like Gymnasium's `Box.sample`: uniform on bounded dimensions, exponential on
    /// half-bounded ones, standard normal on unbounded ones.
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        for (o, (&lo, &hi)) in out.iter_mut().zip(self.low.iter().zip(&self.high)) {
            *o = match (lo.is_finite(), hi.is_finite()) {
                (true, true) => {
                    if lo == hi {
                        lo
                    } else {
                        // Uniform in [lo, hi]; computed in f64 so the f32 result stays in range.
                        let u: f64 = rng.gen();
                        ((lo as f64) + (hi as f64 - lo as f64) * u).min(hi as f64) as f32
                    }
                }
                (true, false) => lo + exponential(rng),
                (false, true) => hi - exponential(rng),
                (false, false) => standard_normal(rng),
            };
        }
    }
}

fn exponential<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let u: f64 = rng.gen();
    (-(1.0 - u).ln()) as f32
}

fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    // Box-Muller: dependency-free and exact enough for sampling a space.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

impl Space {
    /// `Discrete(n)` starting at 0.
    pub fn discrete(n: u64) -> Self {
        Space::Discrete { n, start: 0 }
    }

    /// A `Box` space; see [`BoxSpace::new`].
    pub fn boxed(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        Ok(Space::Box(BoxSpace::new(low, high, shape)?))
    }

    /// Length of a flat element: 1 for `Discrete`, the element count for `Box`.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::Box(b) => b.flat_dim(),
        }
    }

    /// Number of discrete actions, or `None` for a `Box`.
    pub fn n(&self) -> Option<u64> {
        match self {
            Space::Discrete { n, .. } => Some(*n),
            Space::Box(_) => None,
        }
    }

    /// The box, or `None` for a `Discrete` space.
    pub fn as_box(&self) -> Option<&BoxSpace> {
        match self {
            Space::Box(b) => Some(b),
            Space::Discrete { .. } => None,
        }
    }

    /// Whether a discrete value lies in this space (false for `Box`).
    pub fn contains_discrete(&self, a: i64) -> bool {
        match self {
            // For `a >= start` the difference fits in a `u64`: wrapping keeps it exact.
            Space::Discrete { n, start } => a >= *start && (a.wrapping_sub(*start) as u64) < *n,
            Space::Box(_) => false,
        }
    }

    /// Whether `action` lies in this space.
    pub fn contains(&self, action: crate::Action<'_>) -> bool {
        match action {
            crate::Action::Discrete(a) => self.contains_discrete(a),
            crate::Action::Continuous(x) => self.as_box().is_some_and(|b| b.contains(x)),
        }
    }

    /// Checks an action against the space: range for `Discrete`, length and finiteness for
    /// `Box` (out-of-bounds but finite Box actions are allowed: environments clip them).
    pub fn check_action(&self, action: crate::Action<'_>) -> Result<()> {
        match (self, action) {
            (Space::Discrete { n, start }, crate::Action::Discrete(a)) => {
                if self.contains_discrete(a) {
                    Ok(())
                } else {
                    Err(EnvError::ActionOutOfRange {
                        action: a,
                        n: *n,
                        start: *start,
                    })
                }
            }
            (Space::Box(b), crate::Action::Continuous(x)) => b.check_action(x),
            (_, a) => Err(EnvError::ActionKind {
                given: a.kind(),
                space: self.to_string(),
            }),
        }
    }

    /// Draws a random discrete action (`Discrete` spaces only). `None` for a `Box`, for an
    /// empty `Discrete { n: 0, .. }`, and when the value drawn does not fit in an `i64`.
    pub fn sample_discrete<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<i64> {
        match self {
            Space::Discrete { n: 0, .. } | Space::Box(_) => None,
            Space::Discrete { n, start } => {
                let k = rng.gen_range(0..*n);
                i64::try_from(i128::from(*start) + i128::from(k)).ok()
            }
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Space::Discrete { n, start: 0 } => write!(f, "Discrete({n})"),
            Space::Discrete { n, start } => write!(f, "Discrete({n}, start={start})"),
            Space::Box(b) => {
                let uniform = |v: &[f32]| v.iter().all(|x| x.to_bits() == v[0].to_bits());
                if !b.low.is_empty() && uniform(&b.low) && uniform(&b.high) {
                    write!(
                        f,
                        "Box({:?}, {:?}, {:?}, float32)",
                        b.low[0], b.high[0], b.shape
                    )
                } else {
                    write!(f, "Box({:?}, {:?}, {:?}, float32)", b.low, b.high, b.shape)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;
    use rand::SeedableRng;

    #[test]
    fn discrete_range_and_errors() {
        let s = Space::Discrete { n: 3, start: -1 };
        assert!(s.contains(Action::Discrete(-1)));
        assert!(s.contains(Action::Discrete(1)));
        assert!(!s.contains(Action::Discrete(2)));
        assert!(matches!(
            s.check_action(Action::Discrete(2)),
            Err(EnvError::ActionOutOfRange {
                action: 2,
                n: 3,
                start: -1
            })
        ));
        assert!(matches!(
            s.check_action(Action::Continuous(&[0.0])),
            Err(EnvError::ActionKind { .. })
        ));
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        for _ in 0..100 {
            assert!(s.contains_discrete(s.sample_discrete(&mut rng).unwrap()));
        }
    }

    #[test]
    fn box_checks_samples_and_clips() {
        let b = BoxSpace::new(
            vec![-1.0, 0.0, f32::NEG_INFINITY],
            vec![1.0, f32::INFINITY, 2.0],
            vec![3],
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut x = [0.0f32; 3];
        for _ in 0..1000 {
            b.sample_into(&mut rng, &mut x);
            assert!(b.contains(&x), "{x:?}");
        }
        assert_eq!(
            b.check_action(&[0.0, 1.0]),
            Err(EnvError::ActionLength {
                expected: 3,
                actual: 2
            })
        );
        assert!(matches!(
            b.check_action(&[0.0, f32::NAN, 0.0]),
            Err(EnvError::NonFiniteAction { index: 1, .. })
        ));
        let mut y = [5.0f32, -3.0, 7.0];
        b.clip(&mut y);
        assert_eq!(y, [1.0, 0.0, 2.0]);
        assert!(BoxSpace::new(vec![1.0], vec![0.0], vec![1]).is_err());
        assert!(BoxSpace::new(vec![1.0], vec![2.0], vec![2]).is_err());
        assert_eq!(
            Space::Box(BoxSpace::uniform(-2.0, 2.0, vec![1]).unwrap()).to_string(),
            "Box(-2.0, 2.0, [1], float32)"
        );
    }

    #[test]
    fn box_shapes_whose_element_count_overflows_are_errors() {
        let huge = vec![1usize << 33, 1 << 33];
        // The product wraps to 0 in release builds: 0-element bounds must not slip through.
        let err = BoxSpace::new(vec![], vec![], huge.clone()).unwrap_err();
        assert!(
            matches!(&err, EnvError::InvalidArgument(m) if m.contains("more elements than fit")),
            "{err}"
        );
        assert!(Space::boxed(vec![], vec![], vec![usize::MAX, 2]).is_err());
        assert!(BoxSpace::uniform(-1.0, 1.0, huge).is_err());
        // No overflow, but far more bounds than any machine holds: an error, not an abort.
        let err = BoxSpace::uniform(0.0, 1.0, vec![1 << 61]).unwrap_err();
        assert!(matches!(err, EnvError::InvalidArgument(_)), "{err}");
        let err = BoxSpace::uniform(0.0, 1.0, vec![1 << 40, 1 << 20]).unwrap_err();
        assert!(matches!(err, EnvError::InvalidArgument(_)), "{err}");
        // Bounds whose lengths do not match the shape, or each other.
        assert!(BoxSpace::new(vec![0.0; 2], vec![1.0; 3], vec![2]).is_err());
        assert!(BoxSpace::new(vec![0.0; 6], vec![1.0; 6], vec![2, 2]).is_err());
        assert_eq!(
            BoxSpace::uniform(0.0, 1.0, vec![2, 3]).unwrap().flat_dim(),
            6
        );
        assert_eq!(
            BoxSpace::uniform(0.0, 1.0, vec![3, 0]).unwrap().flat_dim(),
            0
        );
    }

    #[test]
    fn extreme_discrete_spaces_neither_panic_nor_overflow() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert_eq!(Space::discrete(0).sample_discrete(&mut rng), None);
        assert!(!Space::discrete(0).contains_discrete(0));
        let wide = Space::Discrete {
            n: u64::MAX,
            start: i64::MIN,
        };
        assert!(wide.contains_discrete(i64::MIN));
        assert!(wide.contains_discrete(i64::MAX - 1));
        assert!(!wide.contains_discrete(i64::MAX));
        let high = Space::Discrete {
            n: u64::MAX,
            start: i64::MAX,
        };
        assert!(high.contains_discrete(i64::MAX));
        assert!(!high.contains_discrete(i64::MIN));
        for _ in 0..100 {
            // Most draws do not fit in an i64 above `start`; those that do are valid.
            if let Some(a) = high.sample_discrete(&mut rng) {
                assert!(high.contains_discrete(a));
            }
            assert!(wide.contains_discrete(wide.sample_discrete(&mut rng).unwrap()));
        }
    }
}

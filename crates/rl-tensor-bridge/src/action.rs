//! Actions between tensors and environments: [`ActionBuffer`] turns an action tensor into
//! host actions in a buffer reused every step — either a tensor that already holds environment
//! actions ([`ActionBuffer::fill_from_tensor`]) or a policy's raw output, action indices and
//! unclipped Gaussian samples ([`ActionBuffer::fill_from_policy`], what the training loops and
//! evaluation use); [`discrete_actions_to_tensor`] goes the other way for stored integer
//! actions.

use crate::checked::convert_checked;
use crate::error::{shapes_text, BridgeError, Result};
use crate::host::with_host_slice;
use candle_core::{DType, Device, Tensor, WithDType};
use rl_env::{Action, BoxSpace, Space, VecAction};

#[derive(Clone, Debug, PartialEq)]
enum Data {
    Discrete { n: u64, start: i64, buf: Vec<i64> },
    Continuous { space: BoxSpace, buf: Vec<f32> },
}

/// A host buffer for the actions of `n_envs` environments, built from the action space and
/// refilled from a tensor every step without allocating.
///
/// Accepted tensors (`n` = `n_envs`, `d` = the Box's flat dimension, `S` = the Box's shape):
///
/// | space | shapes | dtypes |
/// |---|---|---|
/// | `Discrete` | `[n]`, `[n, 1]` | `u8`, `u32`, `i16`, `i32`, `i64`; `f32`, `f64` holding integers |
/// | `Box` | `[n, d]`, `[n, ...S]` | `f32`, `f64` (finite values) |
///
/// A buffer made by [`ActionBuffer::single`] (one environment, no batch axis) also accepts the
/// unbatched shapes: `[]` for `Discrete`, `[d]` and `S` for `Box`.
///
/// [`ActionBuffer::fill_from_tensor`] takes environment actions: discrete ones are checked
/// against `[start, start + n)`, Box ones against NaN and infinities only — clipping into the
/// bounds is the environment's (or `ClipAction`'s) job. [`ActionBuffer::fill_from_policy`]
/// takes what a policy outputs, as SB3's `predict` and rollouts do: discrete action *indices*
/// `0..n` (environment action `start + index`) and Box actions clipped into the bounds for the
/// environment, while the policy's own values stay available ([`ActionBuffer::policy_actions`]:
/// log-probabilities are taken of them). After an error the buffer's contents are unspecified
/// until the next successful fill.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rl_env::{Space, VecAction};
/// use rl_tensor_bridge::ActionBuffer;
///
/// let mut actions = ActionBuffer::new(&Space::discrete(2), 3);
/// let t = Tensor::new(&[1u32, 0, 1], &Device::Cpu)?;
/// assert_eq!(actions.fill_from_tensor(&t)?, VecAction::Discrete(&[1, 0, 1]));
///
/// let out_of_range = Tensor::new(&[1u32, 2, 0], &Device::Cpu)?;
/// assert!(actions.fill_from_tensor(&out_of_range).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActionBuffer {
    space: Space,
    n_envs: usize,
    act_dim: usize,
    single: bool,
    data: Data,
    /// The policy's actions of the last `fill_from_policy` (indices as f32, or unclipped
    /// values), `[n_envs, act_dim]`.
    policy: Vec<f32>,
}

impl ActionBuffer {
    /// A buffer for a batch of `n_envs` environments sharing `space`.
    pub fn new(space: &Space, n_envs: usize) -> Self {
        let act_dim = space.flat_dim();
        let data = match space {
            Space::Discrete { n, start } => Data::Discrete {
                n: *n,
                start: *start,
                buf: vec![*start; n_envs],
            },
            Space::Box(b) => Data::Continuous {
                space: b.clone(),
                buf: vec![0.0; n_envs * act_dim],
            },
        };
        ActionBuffer {
            space: space.clone(),
            n_envs,
            act_dim,
            single: false,
            data,
            policy: vec![0.0; n_envs * act_dim],
        }
    }

    /// A buffer for one environment, accepting tensors with or without the batch axis.
    pub fn single(space: &Space) -> Self {
        ActionBuffer {
            single: true,
            ..ActionBuffer::new(space, 1)
        }
    }

    /// The action space.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Number of environments.
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Flat width of one action: 1 for `Discrete`, the flat dimension for `Box`.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// The actions of the last fill.
    pub fn as_vec_action(&self) -> VecAction<'_> {
        match &self.data {
            Data::Discrete { buf, .. } => VecAction::Discrete(buf),
            Data::Continuous { buf, .. } => VecAction::Continuous(buf),
        }
    }

    /// The action of environment `i` from the last fill, or `None` when `i >= n_envs`.
    pub fn action(&self, i: usize) -> Option<Action<'_>> {
        (i < self.n_envs).then(|| self.as_vec_action().get(i, self.act_dim))
    }

    /// Validates `t` (shape, dtype, range or finiteness, see the type's docs), copies it into the
    /// buffer and returns the actions ready for [`rl_env::VecEnv::step`].
    pub fn fill_from_tensor(&mut self, t: &Tensor) -> Result<VecAction<'_>> {
        self.check_shape(t)?;
        match &mut self.data {
            Data::Discrete { n, start, buf } => {
                let (n, start) = (*n, *start);
                if let Some(env) = fill_discrete(t, buf, in_range(n, start))? {
                    return Err(BridgeError::ActionOutOfRange {
                        env,
                        action: buf[env],
                        n,
                        start,
                    });
                }
            }
            Data::Continuous { buf, .. } => {
                let bad = match t.dtype() {
                    DType::F32 => with_host_slice(t, |s: &[f32]| {
                        convert_checked(buf, s, |x| x, f32::is_finite)
                    })?,
                    DType::F64 => with_host_slice(t, |s: &[f64]| {
                        convert_checked(buf, s, |x| x as f32, f32::is_finite)
                    })?,
                    other => {
                        return Err(BridgeError::DType {
                            what: "continuous action tensor",
                            expected: "f32 or f64",
                            actual: other,
                        })
                    }
                };
                if let Some(i) = bad {
                    let d = self.act_dim.max(1);
                    return Err(BridgeError::NonFiniteAction {
                        env: i / d,
                        component: i % d,
                        value: f64::from(buf[i]),
                    });
                }
            }
        }
        Ok(self.as_vec_action())
    }

    /// Validates a policy's output `t` — action indices `0..n` for `Discrete` (any dtype
    /// [`ActionBuffer::fill_from_tensor`] accepts), finite values for `Box` — and fills the
    /// buffer: the environment actions (`start + index`; values clipped into the box as
    /// `np.clip` does) and the policy's own values ([`ActionBuffer::policy_actions`]). Returns
    /// the environment actions, ready for [`rl_env::VecEnv::step`]. Accepts the same shapes as
    /// [`ActionBuffer::fill_from_tensor`].
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use rl_env::{Space, VecAction};
    /// use rl_tensor_bridge::ActionBuffer;
    ///
    /// let mut actions = ActionBuffer::new(&Space::Discrete { n: 3, start: -1 }, 2);
    /// let indices = Tensor::new(&[0u32, 2], &Device::Cpu)?;
    /// assert_eq!(actions.fill_from_policy(&indices)?, VecAction::Discrete(&[-1, 1]));
    /// assert_eq!(actions.policy_actions(), [0.0, 2.0]);
    ///
    /// let mut actions = ActionBuffer::new(&Space::boxed(vec![-1.0], vec![1.0], vec![1])?, 2);
    /// let sample = Tensor::new(&[[0.5f32], [-3.0]], &Device::Cpu)?;
    /// assert_eq!(actions.fill_from_policy(&sample)?, VecAction::Continuous(&[0.5, -1.0]));
    /// assert_eq!(actions.policy_actions(), [0.5, -3.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill_from_policy(&mut self, t: &Tensor) -> Result<VecAction<'_>> {
        self.check_shape(t)?;
        match &mut self.data {
            Data::Discrete { n, start, buf } => {
                let (n, start) = (*n, *start);
                if let Some(env) = fill_discrete(t, buf, in_range(n, 0))? {
                    return Err(BridgeError::ActionIndexOutOfRange {
                        env,
                        index: buf[env],
                        n,
                    });
                }
                for (p, a) in self.policy.iter_mut().zip(buf.iter_mut()) {
                    // Exact: an index below n < 2^64 fits, and start + index is a member of
                    // the space, which lies within i64.
                    *p = *a as f32;
                    *a = start.wrapping_add(*a);
                }
            }
            Data::Continuous { space, buf } => {
                let bad = match t.dtype() {
                    DType::F32 => with_host_slice(t, |s: &[f32]| {
                        convert_checked(&mut self.policy, s, |x| x, f32::is_finite)
                    })?,
                    DType::F64 => with_host_slice(t, |s: &[f64]| {
                        convert_checked(&mut self.policy, s, |x| x as f32, f32::is_finite)
                    })?,
                    other => {
                        return Err(BridgeError::DType {
                            what: "continuous action tensor",
                            expected: "f32 or f64",
                            actual: other,
                        })
                    }
                };
                if let Some(i) = bad {
                    let d = self.act_dim.max(1);
                    return Err(BridgeError::NonFiniteAction {
                        env: i / d,
                        component: i % d,
                        value: f64::from(self.policy[i]),
                    });
                }
                buf.copy_from_slice(&self.policy);
                for row in buf.chunks_exact_mut(self.act_dim.max(1)) {
                    space.clip(row);
                }
            }
        }
        Ok(self.as_vec_action())
    }

    /// [`ActionBuffer::fill_from_policy`] from host values `[n_envs, act_dim]` (action indices
    /// as whole `f32`s for `Discrete`, unclipped values for `Box`), as a fast policy path
    /// writes them: the same checks, no tensor, no allocation.
    pub fn fill_from_policy_values(&mut self, values: &[f32]) -> Result<VecAction<'_>> {
        if values.len() != self.policy.len() {
            return Err(BridgeError::ElementCount {
                what: "policy actions",
                shape: vec![self.n_envs, self.act_dim],
                expected: self.policy.len(),
                actual: values.len(),
            });
        }
        match &mut self.data {
            Data::Discrete { n, start, buf } => {
                let (n, start) = (*n, *start);
                for (env, (&v, a)) in values.iter().zip(buf.iter_mut()).enumerate() {
                    // Whole numbers below 2^24 are exact in f32; n itself may be larger.
                    if !(v >= 0.0 && f64::from(v) < n as f64 && v.fract() == 0.0) {
                        return Err(BridgeError::ActionIndexOutOfRange {
                            env,
                            index: v as i64,
                            n,
                        });
                    }
                    *a = start.wrapping_add(v as i64);
                }
                self.policy.copy_from_slice(values);
            }
            Data::Continuous { space, buf } => {
                if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                    let d = self.act_dim.max(1);
                    return Err(BridgeError::NonFiniteAction {
                        env: i / d,
                        component: i % d,
                        value: f64::from(values[i]),
                    });
                }
                self.policy.copy_from_slice(values);
                buf.copy_from_slice(values);
                for row in buf.chunks_exact_mut(self.act_dim.max(1)) {
                    space.clip(row);
                }
            }
        }
        Ok(self.as_vec_action())
    }

    /// The policy's actions of the last [`ActionBuffer::fill_from_policy`], flat
    /// `[n_envs, act_dim]`: action indices as `f32` (exact below 2^24) for `Discrete`, the
    /// unclipped values for `Box` — what a rollout buffer stores.
    pub fn policy_actions(&self) -> &[f32] {
        &self.policy
    }

    fn accepted_shapes(&self) -> Vec<Vec<usize>> {
        let n = self.n_envs;
        let mut shapes: Vec<Vec<usize>> = match &self.data {
            Data::Discrete { .. } => vec![vec![n], vec![n, 1]],
            Data::Continuous { space, .. } => {
                let mut batched = vec![n];
                batched.extend_from_slice(space.shape());
                vec![vec![n, self.act_dim], batched]
            }
        };
        if self.single {
            match &self.data {
                Data::Discrete { .. } => shapes.insert(0, vec![]),
                Data::Continuous { space, .. } => {
                    shapes.insert(0, space.shape().to_vec());
                    shapes.insert(0, vec![self.act_dim]);
                }
            }
        }
        shapes.dedup();
        shapes
    }

    fn check_shape(&self, t: &Tensor) -> Result<()> {
        let dims = t.dims();
        let n = self.n_envs;
        let ok = match &self.data {
            Data::Discrete { .. } => {
                dims == [n] || dims == [n, 1] || (self.single && dims.is_empty())
            }
            Data::Continuous { space, .. } => {
                let shape = space.shape();
                let batched = dims.first() == Some(&n)
                    && (dims[1..] == [self.act_dim] || dims[1..] == *shape);
                let unbatched = self.single && (dims == [self.act_dim] || dims == shape);
                batched || unbatched
            }
        };
        if ok {
            return Ok(());
        }
        let shapes = self.accepted_shapes();
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        Err(BridgeError::Shape {
            what: format!(
                "action tensor for {} env(s) with action space {}",
                self.n_envs, self.space
            ),
            expected: shapes_text(&refs),
            actual: dims.to_vec(),
        })
    }
}

/// The membership test of `Discrete(n, start)`: `a - start` in `[0, n)`, as one unsigned
/// comparison that vectorizes. Exact: `last` is clamped to `i64::MAX`, so for `a < start` the
/// wrapped difference `2^64 + a - start` always exceeds `last - start`.
fn in_range(n: u64, start: i64) -> impl Fn(i64) -> bool + Copy {
    let nonempty = n > 0;
    let last = (i128::from(start) + i128::from(n) - 1).min(i128::from(i64::MAX));
    let span = (last - i128::from(start)).max(0) as u64;
    move |a: i64| nonempty & ((a.wrapping_sub(start) as u64) <= span)
}

/// Converts the tensor's actions into `buf` and returns the first environment whose action
/// fails `ok`.
fn fill_discrete(
    t: &Tensor,
    buf: &mut [i64],
    ok: impl Fn(i64) -> bool + Copy,
) -> Result<Option<usize>> {
    fn widen<T: WithDType + Into<i64>>(
        t: &Tensor,
        buf: &mut [i64],
        ok: impl Fn(i64) -> bool + Copy,
    ) -> Result<Option<usize>> {
        with_host_slice(t, |s: &[T]| convert_checked(buf, s, |x| x.into(), ok))
    }
    match t.dtype() {
        DType::I64 => widen::<i64>(t, buf, ok),
        DType::U32 => widen::<u32>(t, buf, ok),
        DType::I32 => widen::<i32>(t, buf, ok),
        DType::I16 => widen::<i16>(t, buf, ok),
        DType::U8 => widen::<u8>(t, buf, ok),
        DType::F32 => integral_floats::<f32>(t, buf, ok),
        DType::F64 => integral_floats::<f64>(t, buf, ok),
        other => Err(BridgeError::DType {
            what: "discrete action tensor",
            expected: "u8, u32, i16, i32, i64, or f32/f64 holding integers",
            actual: other,
        }),
    }
}

fn integral_floats<T: WithDType>(
    t: &Tensor,
    buf: &mut [i64],
    ok: impl Fn(i64) -> bool,
) -> Result<Option<usize>> {
    // 2^63 is exact in f64; every integral f64 in [-2^63, 2^63) converts to i64 exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    with_host_slice(t, |s: &[T]| {
        for (env, (o, &v)) in buf.iter_mut().zip(s).enumerate() {
            let v = v.to_f64();
            if v.fract() != 0.0 || !v.is_finite() || !(-LIMIT..LIMIT).contains(&v) {
                return Err(BridgeError::NonIntegralAction { env, value: v });
            }
            *o = v as i64;
        }
        Ok(buf.iter().position(|&a| !ok(a)))
    })?
}

/// Turns integer actions (as a rollout buffer stores them) into a 1-D tensor of dtype `U8`,
/// `U32` (what `gather` and `index_select` want) or `I64`, after checking each against the
/// `Discrete` action space.
///
/// ```
/// use candle_core::{DType, Device};
/// use rl_env::Space;
/// use rl_tensor_bridge::discrete_actions_to_tensor;
///
/// let t = discrete_actions_to_tensor(&[0, 1, 1], &Space::discrete(2), DType::U32, &Device::Cpu)?;
/// assert_eq!(t.to_vec1::<u32>()?, vec![0, 1, 1]);
/// assert!(discrete_actions_to_tensor(&[2], &Space::discrete(2), DType::U32, &Device::Cpu).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn discrete_actions_to_tensor(
    actions: &[i64],
    space: &Space,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let Space::Discrete { n, start } = space else {
        return Err(rl_env::EnvError::ActionKind {
            given: "discrete",
            space: space.to_string(),
        }
        .into());
    };
    if let Some((env, &action)) = actions
        .iter()
        .enumerate()
        .find(|(_, &a)| !space.contains_discrete(a))
    {
        return Err(BridgeError::ActionOutOfRange {
            env,
            action,
            n: *n,
            start: *start,
        });
    }
    fn narrow<T: WithDType + TryFrom<i64>>(
        actions: &[i64],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if let Some((index, &value)) = actions
            .iter()
            .enumerate()
            .find(|(_, &a)| T::try_from(a).is_err())
        {
            return Err(BridgeError::NotRepresentable {
                what: "discrete actions",
                index,
                value,
                dtype,
            });
        }
        let narrowed = actions.iter().filter_map(|&a| T::try_from(a).ok());
        Ok(Tensor::from_iter(narrowed, device)?)
    }
    match dtype {
        DType::I64 => Ok(Tensor::from_slice(actions, actions.len(), device)?),
        DType::U32 => narrow::<u32>(actions, dtype, device),
        DType::U8 => narrow::<u8>(actions, dtype, device),
        other => Err(BridgeError::DType {
            what: "requested action tensor",
            expected: "u8, u32 or i64",
            actual: other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{in_range, ActionBuffer};
    use candle_core::{Device, Tensor};
    use rl_env::{Space, VecAction};

    /// Host values fill the buffer exactly as a tensor of the same values does, and bad values
    /// are the same errors.
    #[test]
    fn host_values_fill_like_tensors() {
        let d = Space::Discrete { n: 3, start: -1 };
        let (mut a, mut b) = (ActionBuffer::new(&d, 3), ActionBuffer::new(&d, 3));
        let t = Tensor::new(&[2f32, 0.0, 1.0], &Device::Cpu).unwrap();
        assert_eq!(
            a.fill_from_policy_values(&[2.0, 0.0, 1.0]).unwrap(),
            VecAction::Discrete(&[1, -1, 0])
        );
        b.fill_from_policy(&t).unwrap();
        assert_eq!(a, b);
        for bad in [
            [3.0, 0.0, 0.0],
            [0.5, 0.0, 0.0],
            [-1.0, 0.0, 0.0],
            [f32::NAN, 0.0, 0.0],
        ] {
            assert!(a.fill_from_policy_values(&bad).is_err(), "{bad:?}");
        }
        assert!(
            a.fill_from_policy_values(&[0.0, 1.0]).is_err(),
            "too few values"
        );
        let c = Space::boxed(vec![-1.0; 2], vec![1.0; 2], vec![2]).unwrap();
        let (mut a, mut b) = (ActionBuffer::new(&c, 2), ActionBuffer::new(&c, 2));
        let v = [0.5f32, -3.0, 2.0, 0.25];
        assert_eq!(
            a.fill_from_policy_values(&v).unwrap(),
            VecAction::Continuous(&[0.5, -1.0, 1.0, 0.25])
        );
        b.fill_from_policy(&Tensor::from_slice(&v, (2, 2), &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.policy_actions(), v);
        assert!(a
            .fill_from_policy_values(&[0.0, f32::INFINITY, 0.0, 0.0])
            .is_err());
    }

    #[test]
    fn in_range_is_exact_at_the_extremes() {
        let starts = [i64::MIN, i64::MIN + 1, -5, 0, 3, i64::MAX - 1, i64::MAX];
        let ns = [
            0u64,
            1,
            2,
            10,
            u64::MAX / 2,
            u64::MAX / 2 + 2,
            u64::MAX - 1,
            u64::MAX,
        ];
        for start in starts {
            for n in ns {
                let near = |x: i128| x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
                let s = i128::from(start);
                let mut probes = vec![
                    i64::MIN,
                    i64::MIN + 1,
                    -2,
                    -1,
                    0,
                    1,
                    2,
                    i64::MAX - 1,
                    i64::MAX,
                ];
                for d in [-2i128, -1, 0, 1] {
                    probes.push(near(s + d));
                    probes.push(near(s + i128::from(n) + d));
                }
                let inside = in_range(n, start);
                for a in probes {
                    let expected = a >= start && i128::from(a) - s < i128::from(n);
                    assert_eq!(inside(a), expected, "n {n} start {start} a {a}");
                }
            }
        }
    }
}

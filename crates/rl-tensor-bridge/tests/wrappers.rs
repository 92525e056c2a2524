//! `TensorEnv` and `TensorVecEnv` give, as tensors, exactly what the wrapped environments give
//! on the host, and reject bad actions before the environment is touched.

use candle_core::{DType, Device, Tensor};
use rl_env::{
    make, Action, AutoresetMode, BoxSpace, Env, EnvError, Info, Seed, Space, StepOutcome,
    SyncVecEnv, VecAction, VecEnv,
};
use rl_tensor_bridge::*;

fn cpu() -> Device {
    Device::Cpu
}

fn f32s(t: &Tensor) -> Vec<f32> {
    let mut out = vec![0.0; t.elem_count()];
    copy_tensor_to_f32(t, &mut out).unwrap();
    out
}

/// A continuous-action test environment: the observation is the running sum of the actions
/// plus the seed, and episodes are truncated after `len` steps.
struct Drift {
    obs_space: Space,
    act_space: Space,
    pos: [f32; 2],
    t: u32,
    len: u32,
    live: bool,
}

impl Drift {
    fn new(len: u32) -> Self {
        Drift {
            obs_space: Space::Box(
                BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, vec![2]).unwrap(),
            ),
            act_space: Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![2]).unwrap()),
            pos: [0.0; 2],
            t: 0,
            len,
            live: false,
        }
    }
}

impl Env for Drift {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        let start = if seed.is_some() { 0.5 } else { 0.0 };
        self.pos = [start; 2];
        self.t = 0;
        self.live = true;
        obs.copy_from_slice(&self.pos);
        Ok(Info::default())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        if !self.live {
            return Err(EnvError::NeedsReset("Drift.step"));
        }
        self.act_space.check_action(action)?;
        let Action::Continuous(a) = action else {
            unreachable!()
        };
        self.pos[0] += a[0];
        self.pos[1] += a[1];
        self.t += 1;
        obs.copy_from_slice(&self.pos);
        let truncated = self.t >= self.len;
        self.live = !truncated;
        Ok(StepOutcome {
            reward: f64::from(a[0] - a[1]),
            terminated: false,
            truncated,
            info: Info::default(),
        })
    }
}

#[test]
fn tensor_env_matches_the_plain_env_step_for_step() {
    for dtype in [DType::F32, DType::F64] {
        let mut plain = make("CartPole-v1").unwrap();
        let mut tenv = TensorEnv::with_dtype(make("CartPole-v1").unwrap(), cpu(), dtype).unwrap();
        let (obs, _) = plain.reset(Some(123)).unwrap();
        let (tobs, _) = tenv.reset(Some(123)).unwrap();
        assert_eq!((tobs.dims(), tobs.dtype()), (&[4usize][..], dtype));
        assert_eq!(f32s(&tobs), obs);
        for k in 0.. {
            let a = (k % 3 == 0) as u32;
            let expected = plain.step(Action::Discrete(i64::from(a))).unwrap();
            let got = tenv.step(&Tensor::new(a, &cpu()).unwrap()).unwrap();
            assert_eq!(f32s(&got.obs), expected.obs);
            assert_eq!(got.reward.dims(), &[] as &[usize]);
            assert_eq!(got.reward.dtype(), dtype);
            assert_eq!(got.reward_f64(), expected.reward);
            assert_eq!(f64::from(f32s(&got.reward)[0]), expected.reward);
            assert_eq!(
                got.terminated.to_scalar::<u8>().unwrap(),
                u8::from(expected.terminated)
            );
            assert_eq!(
                got.truncated.to_scalar::<u8>().unwrap(),
                u8::from(expected.truncated)
            );
            assert_eq!(got.is_done(), expected.terminated || expected.truncated);
            assert_eq!(tenv.last_obs(), expected.obs.as_slice());
            if got.is_done() {
                assert!(k > 3);
                break;
            }
        }
        // Stepping a finished episode is the env's error, passed through.
        assert!(matches!(
            tenv.step(&Tensor::new(0u32, &cpu()).unwrap()),
            Err(BridgeError::Env(EnvError::NeedsReset(_)))
        ));
    }
}

#[test]
fn tensor_env_rejects_bad_actions_before_stepping() {
    let mut tenv = TensorEnv::new(make("CartPole-v1").unwrap(), cpu()).unwrap();
    assert!(matches!(
        tenv.step(&Tensor::new(0u32, &cpu()).unwrap()),
        Err(BridgeError::Env(EnvError::NeedsReset(_)))
    ));
    tenv.reset(Some(1)).unwrap();
    let before = tenv.last_obs().to_vec();
    let err = tenv
        .step(&Tensor::new(&[0u32, 1], &cpu()).unwrap())
        .unwrap_err();
    assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &[2]));
    assert!(err.to_string().contains("[] or [1] or [1, 1]"), "{err}");
    assert!(matches!(
        tenv.step(&Tensor::new(-1i64, &cpu()).unwrap()),
        Err(BridgeError::ActionOutOfRange { action: -1, .. })
    ));
    assert_eq!(tenv.last_obs(), before.as_slice());
    assert!(matches!(
        TensorEnv::with_dtype(make("CartPole-v1").unwrap(), cpu(), DType::BF16),
        Err(BridgeError::DType {
            actual: DType::BF16,
            ..
        })
    ));
}

#[test]
fn tensor_env_with_box_actions() {
    let mut tenv = TensorEnv::new(Drift::new(3), cpu()).unwrap();
    let (obs, _) = tenv.reset(Some(0)).unwrap();
    assert_eq!(f32s(&obs), vec![0.5, 0.5]);
    let step = tenv
        .step(&Tensor::new(&[0.25f32, -0.5], &cpu()).unwrap())
        .unwrap();
    assert_eq!(f32s(&step.obs), vec![0.75, 0.0]);
    assert_eq!(step.reward.to_scalar::<f32>().unwrap(), 0.75);
    let step = tenv
        .step(&Tensor::new(&[[1.0f64, 1.0]], &cpu()).unwrap())
        .unwrap();
    assert_eq!(f32s(&step.obs), vec![1.75, 1.0]);
    assert!(matches!(
        tenv.step(&Tensor::new(&[f32::NAN, 0.0], &cpu()).unwrap()),
        Err(BridgeError::NonFiniteAction {
            env: 0,
            component: 0,
            ..
        })
    ));
    let step = tenv
        .step(&Tensor::new(&[0.0f32, 0.0], &cpu()).unwrap())
        .unwrap();
    assert!(step.is_truncated() && !step.is_terminated());
    assert_eq!(step.truncated.to_scalar::<u8>().unwrap(), 1);
}

#[test]
fn tensor_vec_env_matches_the_plain_vec_env() {
    let n = 5;
    for dtype in [DType::F32, DType::F64] {
        let mut plain = SyncVecEnv::make("CartPole-v1", n, AutoresetMode::SameStep).unwrap();
        let inner = SyncVecEnv::make("CartPole-v1", n, AutoresetMode::SameStep).unwrap();
        let mut tvec = TensorVecEnv::with_dtype(inner, cpu(), dtype).unwrap();
        plain.reset(Some(9)).unwrap();
        let obs = tvec.reset(Some(9)).unwrap();
        assert_eq!((obs.dims(), obs.dtype()), (&[n, 4][..], dtype));
        assert_eq!(f32s(&obs), plain.observations());

        let mut endings = 0;
        for k in 0..60usize {
            let actions: Vec<i64> = (0..n).map(|i| ((i + k) % 2) as i64).collect();
            plain.step(VecAction::Discrete(&actions)).unwrap();
            let t = discrete_actions_to_tensor(&actions, &Space::discrete(2), DType::U32, &cpu())
                .unwrap();
            let step = tvec.step(&t).unwrap();
            assert_eq!(f32s(&step.obs), plain.observations());
            assert_eq!(
                (step.rewards.dims(), step.rewards.dtype()),
                (&[n][..], dtype)
            );
            let rewards: Vec<f64> = f32s(&step.rewards).iter().map(|&r| f64::from(r)).collect();
            assert_eq!(rewards, plain.rewards());
            let flags = |t: &Tensor| -> Vec<bool> {
                t.to_vec1::<u8>().unwrap().iter().map(|&b| b == 1).collect()
            };
            assert_eq!(flags(&step.terminated), plain.terminated());
            assert_eq!(flags(&step.truncated), plain.truncated());
            assert_eq!(step.infos.len(), n);

            let ended: Vec<usize> = (0..n).filter(|&i| plain.buffers().done(i)).collect();
            assert_eq!(step.final_envs, ended.as_slice());
            match &step.final_observations {
                None => assert!(ended.is_empty()),
                Some(f) => {
                    assert_eq!(f.dims(), &[ended.len(), 4]);
                    let expected: Vec<f32> = ended
                        .iter()
                        .flat_map(|&i| plain.buffers().final_observation(i).unwrap().to_vec())
                        .collect();
                    assert_eq!(f32s(f), expected);
                    endings += ended.len();
                }
            }
        }
        assert!(
            endings > 0,
            "alternating actions end CartPole episodes within 60 steps"
        );
    }
}

#[test]
fn tensor_vec_env_next_step_mode_has_no_separate_final_observations() {
    let inner = SyncVecEnv::make("CartPole-v1", 2, AutoresetMode::NextStep).unwrap();
    let mut tvec = TensorVecEnv::new(inner, cpu()).unwrap();
    tvec.reset(Some(0)).unwrap();
    let push_right = Tensor::new(&[1u32, 1], &cpu()).unwrap();
    let mut saw_end = false;
    for _ in 0..40 {
        let step = tvec.step(&push_right).unwrap();
        saw_end |= step.buffers.done(0);
        assert!(step.final_observations.is_none() && step.final_envs.is_empty());
    }
    assert!(saw_end);
}

#[test]
fn tensor_vec_env_rejects_bad_actions_without_stepping() {
    let inner = SyncVecEnv::make("CartPole-v1", 3, AutoresetMode::SameStep).unwrap();
    let mut tvec = TensorVecEnv::new(inner, cpu()).unwrap();
    tvec.reset(Some(3)).unwrap();
    let before = tvec.inner().observations().to_vec();
    let err = tvec
        .step(&Tensor::new(&[0u32, 1], &cpu()).unwrap())
        .unwrap_err();
    assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &[2]));
    assert!(err.to_string().contains("[3] or [3, 1]"), "{err}");
    assert!(matches!(
        tvec.step(&Tensor::new(&[0i64, 1, 2], &cpu()).unwrap()),
        Err(BridgeError::ActionOutOfRange {
            env: 2,
            action: 2,
            ..
        })
    ));
    assert_eq!(tvec.inner().observations(), before.as_slice());
    assert_eq!(tvec.observations().unwrap().dims(), &[3, 4]);
}

#[test]
fn tensor_vec_env_with_box_actions_and_final_observations() {
    let inner =
        SyncVecEnv::new(vec![Drift::new(2), Drift::new(3)], AutoresetMode::SameStep).unwrap();
    let mut tvec = TensorVecEnv::new(inner, cpu()).unwrap();
    let obs = tvec.reset_with_seeds(&[Some(1), None]).unwrap();
    assert_eq!(f32s(&obs), vec![0.5, 0.5, 0.0, 0.0]);
    let a = Tensor::new(&[[0.5f32, 0.0], [0.0, 1.0]], &cpu()).unwrap();
    let step = tvec.step(&a).unwrap();
    assert_eq!(f32s(&step.obs), vec![1.0, 0.5, 0.0, 1.0]);
    assert_eq!(f32s(&step.rewards), vec![0.5, -1.0]);
    assert!(step.final_observations.is_none());
    let step = tvec.step(&a).unwrap();
    // Env 0 was truncated after 2 steps: its final observation is kept, its row restarted.
    assert_eq!(step.final_envs, &[0]);
    assert_eq!(
        f32s(step.final_observations.as_ref().unwrap()),
        vec![1.5, 0.5]
    );
    assert_eq!(step.truncated.to_vec1::<u8>().unwrap(), vec![1, 0]);
    assert_eq!(f32s(&step.obs)[2..], [0.0, 2.0]);
    let bad = Tensor::new(&[[0.0f32, 0.0], [f32::INFINITY, 0.0]], &cpu()).unwrap();
    assert!(matches!(
        tvec.step(&bad),
        Err(BridgeError::NonFiniteAction {
            env: 1,
            component: 0,
            ..
        })
    ));
}

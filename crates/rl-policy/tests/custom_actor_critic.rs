//! A user's own candle-nn actor-critic, written outside this crate (a shared trunk with a
//! policy head and a value head), plugs into the traits: it acts through the blanket
//! [`Policy`] impl and trains through code generic over [`ActorCritic`], like an algorithm.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{linear, Linear, Module, Optimizer, VarBuilder, VarMap, SGD};
use rand::SeedableRng;
use rl_policy::{ActionDist, ActorCritic, Categorical, Policy, StochasticPolicy};

/// obs -> Linear -> tanh -> (logits head, value head).
struct SharedTrunk {
    trunk: Linear,
    pi: Linear,
    v: Linear,
    varmap: VarMap,
    device: Device,
}

impl SharedTrunk {
    fn new(
        obs_dim: usize,
        n_actions: usize,
        hidden: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        Ok(SharedTrunk {
            trunk: linear(obs_dim, hidden, vb.pp("trunk"))?,
            pi: linear(hidden, n_actions, vb.pp("pi"))?,
            v: linear(hidden, 1, vb.pp("v"))?,
            varmap,
            device: device.clone(),
        })
    }

    fn features(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        self.trunk.forward(obs)?.tanh()
    }
}

impl StochasticPolicy for SharedTrunk {
    fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
        let logits = self.pi.forward(&self.features(obs)?)?;
        Ok(ActionDist::Categorical(Categorical::from_logits(&logits)?))
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<(String, Var)> = self
            .varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

impl ActorCritic for SharedTrunk {
    fn forward(&self, obs: &Tensor) -> rl_policy::Result<(ActionDist, Tensor)> {
        let h = self.features(obs)?; // computed once for both heads
        let dist = ActionDist::Categorical(Categorical::from_logits(&self.pi.forward(&h)?)?);
        let value = self.v.forward(&h)?.squeeze(1)?;
        Ok((dist, value))
    }
}

/// An "algorithm" that knows only the trait: one policy-gradient + value-regression step per
/// call, as A2C's loss does, returning the loss.
fn train_step<P: ActorCritic>(
    policy: &P,
    opt: &mut SGD,
    obs: &Tensor,
    actions: &Tensor,
    advantages: &Tensor,
    returns: &Tensor,
) -> f32 {
    let eval = policy.evaluate_actions(obs, actions).unwrap();
    let pg = (eval.log_prob * advantages)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap();
    let vf = (eval.value - returns)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let ent = eval.entropy.mean_all().unwrap().neg().unwrap();
    let loss = ((pg + (vf * 0.5).unwrap()).unwrap() + (ent * 0.01).unwrap()).unwrap();
    opt.backward_step(&loss).unwrap();
    loss.to_scalar::<f32>().unwrap()
}

#[test]
fn a_custom_network_acts_and_trains_through_the_traits() {
    let dev = Device::Cpu;
    let net = SharedTrunk::new(4, 2, 16, &dev).unwrap();
    let names: Vec<String> = net.trainable_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "pi.bias",
            "pi.weight",
            "trunk.bias",
            "trunk.weight",
            "v.bias",
            "v.weight"
        ]
    );

    let obs = Tensor::new(
        &[
            [0.1f32, -0.2, 0.3, 0.0],
            [-0.3, 0.1, 0.0, 0.2],
            [0.0, 0.4, -0.1, -0.2],
        ],
        &dev,
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let acts = net.act(&obs, false, &mut rng).unwrap();
    assert_eq!(acts.dims(), &[3]);
    assert!(acts.to_vec1::<u32>().unwrap().iter().all(|&a| a < 2));

    // Reward action 1 everywhere, with returns of 1: the probability of action 1 must rise and
    // the values must approach 1.
    let actions = Tensor::new(&[1u32, 1, 1], &dev).unwrap();
    let advantages = Tensor::new(&[1f32, 1.0, 1.0], &dev).unwrap();
    let returns = Tensor::new(&[1f32, 1.0, 1.0], &dev).unwrap();
    let vars: Vec<Var> = net.trainable_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = SGD::new(vars, 0.1).unwrap();
    let p1 = |net: &SharedTrunk| match net.action_dist(&obs).unwrap() {
        ActionDist::Categorical(c) => c
            .probs()
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
            .iter()
            .map(|r| r[1])
            .sum::<f32>(),
        _ => unreachable!("a categorical head"),
    };
    let (p_before, v_err_before) = (p1(&net), value_error(&net, &obs));
    let first = train_step(&net, &mut opt, &obs, &actions, &advantages, &returns);
    let mut last = first;
    for _ in 0..50 {
        last = train_step(&net, &mut opt, &obs, &actions, &advantages, &returns);
    }
    assert!(last < first, "loss {first} -> {last}");
    assert!(
        p1(&net) > p_before,
        "P(action 1) {p_before} -> {}",
        p1(&net)
    );
    assert!(value_error(&net, &obs) < v_err_before);
    assert_eq!(
        net.act(&obs, true, &mut rng)
            .unwrap()
            .to_vec1::<u32>()
            .unwrap(),
        vec![1, 1, 1]
    );
}

fn value_error(net: &SharedTrunk, obs: &Tensor) -> f32 {
    let v = net.predict_values(obs).unwrap().to_vec1::<f32>().unwrap();
    v.iter().map(|x| (x - 1.0).abs()).sum()
}

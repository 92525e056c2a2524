//! A2C and PPO with an [`MlpPolicy`] allocate nothing per rollout step and per update once
//! warm (the fast MLP path, the rollout buffer, the logger's keys and the episode window all
//! reuse their memory), on CartPole (discrete) and Pendulum (Box actions).
//!
//! A callback samples the process's allocation counter at every `on_step` (after a vector
//! step) and `on_rollout_end`: the count between two of its calls covers one rollout step (act,
//! environment step, store), or the end of a rollout (last values, GAE), or one `train` plus
//! the next act and step. After a warm-up, every one of them must be zero.
//!
//! This binary has its own `main` (`harness = false` in Cargo.toml): the allocator counts the
//! whole process, and libtest's main thread allocates while a test runs.

use candle_core::Device;
use rl_algos::a2c::{A2c, A2cConfig};
use rl_algos::callbacks::{Callback, Locals};
use rl_algos::logger::Logger;
use rl_algos::ppo::{Ppo, PpoConfig};
use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

/// Allocations between consecutive callback calls, by kind, after `warmup` timesteps.
struct Probe {
    warmup: u64,
    last: usize,
    steps: usize,
    step_allocs: usize,
    updates: usize,
    update_allocs: usize,
    after_rollout: bool,
}

impl Probe {
    fn new(warmup: u64) -> Self {
        Probe {
            warmup,
            last: 0,
            steps: 0,
            step_allocs: 0,
            updates: 0,
            update_allocs: 0,
            after_rollout: false,
        }
    }
}

impl Callback for Probe {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> rl_algos::Result<bool> {
        let now = allocations();
        if locals.num_timesteps > self.warmup {
            if self.after_rollout {
                self.updates += 1;
                self.update_allocs += now - self.last;
            } else {
                self.steps += 1;
                self.step_allocs += now - self.last;
            }
        }
        self.after_rollout = false;
        self.last = allocations();
        Ok(true)
    }

    fn on_rollout_end(
        &mut self,
        locals: &Locals<'_>,
        _logger: &mut Logger,
    ) -> rl_algos::Result<()> {
        let now = allocations();
        if locals.num_timesteps > self.warmup {
            self.steps += 1;
            self.step_allocs += now - self.last;
        }
        self.after_rollout = true;
        self.last = allocations();
        Ok(())
    }
}

fn policy(env: &SyncVecEnv) -> MlpPolicy {
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap()
}

fn report(what: &str, p: &Probe) -> bool {
    println!(
        "{what}: {} allocations over {} rollout steps, {} over {} updates (each with the next \
         step)",
        p.step_allocs, p.steps, p.update_allocs, p.updates
    );
    p.steps > 0 && p.updates > 0 && p.step_allocs == 0 && p.update_allocs == 0
}

fn a2c(env_id: &str, total: u64, warmup: u64) -> bool {
    let env = SyncVecEnv::make(env_id, 8, AutoresetMode::SameStep).unwrap();
    let config = A2cConfig {
        seed: Some(1),
        log_interval: 0,
        ..A2cConfig::default()
    };
    let mut model = A2c::new(policy(&env), env, config).unwrap();
    assert!(model.uses_fast_path(), "MlpPolicy acts on the fast path");
    let mut probe = Probe::new(warmup);
    model.learn(total, &mut [&mut probe]).unwrap();
    assert!(
        model.trainer().uses_fast_path(),
        "MlpPolicy trains on the fast path"
    );
    report(&format!("A2C {env_id}"), &probe)
}

fn ppo(env_id: &str, total: u64, warmup: u64) -> bool {
    let env = SyncVecEnv::make(env_id, 8, AutoresetMode::SameStep).unwrap();
    let config = PpoConfig {
        seed: Some(1),
        log_interval: 0,
        n_steps: 64,
        batch_size: 48,
        n_epochs: 3,
        ..PpoConfig::default()
    };
    let mut model = Ppo::new(policy(&env), env, config).unwrap();
    assert!(model.uses_fast_path(), "MlpPolicy acts on the fast path");
    let mut probe = Probe::new(warmup);
    model.learn(total, &mut [&mut probe]).unwrap();
    assert!(
        model.trainer().uses_fast_path(),
        "MlpPolicy trains on the fast path"
    );
    report(&format!("PPO {env_id}"), &probe)
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let mut ok = true;
    // 100 finished episodes fill the statistics window; then every interval must be clean.
    ok &= a2c("CartPole-v1", 60_000, 30_000);
    ok &= a2c("Pendulum-v1", 60_000, 30_000);
    // Minibatches of 48 over 512 samples: the last one of each epoch is shorter.
    ok &= ppo("CartPole-v1", 40_000, 20_000);
    ok &= ppo("Pendulum-v1", 40_000, 20_000);
    assert!(ok, "allocations in steady state (see above)");
    println!("on-policy steady state: no allocations");
}

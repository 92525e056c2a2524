#!/usr/bin/env python3
"""SB3's PPO on the matched workload of `benches/train.rs` (group `ppo`), for a same-machine
baseline.

Workload (what ModuRL publishes against SB3): 8 CartPole-v1 envs in a DummyVecEnv, n_steps 256
(2048 transitions per rollout), MlpPolicy with separate 2x64 tanh actor and critic, Adam 3e-4 eps
1e-5, minibatch 64, 10 epochs, clip 0.2, gamma 0.99, gae_lambda 0.95, advantage normalization,
vf_coef 0.5, ent_coef 0, max_grad_norm 0.5; torch on one thread, CPU.

Setup (Python 3.11, from PyPI):
    python3 -m venv /tmp/sb3 && /tmp/sb3/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0
Run:
    OMP_NUM_THREADS=1 /tmp/sb3/bin/python tools/bench/sb3_ppo_cartpole.py --rollouts 4
or let the Rust bench run it in the same process run:
    RL_SB3_PYTHON=/tmp/sb3/bin/python cargo bench -p rl --bench train -- ppo

Prints `env_steps_per_s <value>`: environment steps of `model.learn` per wall-clock second,
measured after one warm-up rollout (rollout, GAE and the 10 epochs all included).
"""
import argparse
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=4, help="timed rollouts (2048 steps each)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=256,
        batch_size=64,
        n_epochs=10,
        learning_rate=3e-4,
        clip_range=0.2,
        gamma=0.99,
        gae_lambda=0.95,
        normalize_advantage=True,
        vf_coef=0.5,
        ent_coef=0.0,
        max_grad_norm=0.5,
        seed=0,
        device="cpu",
        verbose=0,
    )
    per_rollout = 256 * 8
    model.learn(per_rollout)  # warm-up: one rollout and its update
    start = time.perf_counter()
    model.learn(args.rollouts * per_rollout, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    print(f"env_steps_per_s {args.rollouts * per_rollout / elapsed:.1f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SB3's SAC on the matched workload of issue 13's speed point, for a same-machine baseline.

Workload (what ModuRL publishes against SB3): one Pendulum-v1 env; a 2x64 tanh actor with mean
and log-std heads, two 2x64 tanh critics and their Polyak targets; replay buffer 10,000, batch
64; Adam 3e-4 eps 1e-5 (actor and critics); one actor, critic and temperature update per
transition (train_freq 1, gradient_steps 1); tau 0.005, gamma 0.99; automatic entropy tuning
from alpha 1.0 with target entropy -1; 256 random warm-up transitions; torch on one thread, CPU.
SB3 builds the temperature's own Adam as ``Adam([log_ent_coef], lr)`` with torch's default eps
1e-8 (policy optimizer_kwargs do not reach it); the Rust side should match that.

Setup (Python 3.11, from PyPI):
    python3 -m venv /tmp/sb3 && /tmp/sb3/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0
Run:
    OMP_NUM_THREADS=1 /tmp/sb3/bin/python tools/bench/sb3_sac_pendulum.py --steps 3000
or let the Rust bench run it in the same process run (once `benches/train.rs` has a `sac` group
that calls it like the `dqn` group calls sb3_dqn_cartpole.py):
    RL_SB3_PYTHON=/tmp/sb3/bin/python cargo bench -p rl --bench train -- sac

Prints `env_steps_per_s <value>`: environment steps of `model.learn` per wall-clock second (each
with one gradient step), measured after the 256 warm-up transitions and a first 500 learning steps.
"""
import argparse
import time

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="timed environment steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    model = SAC(
        "MlpPolicy",
        env,
        learning_rate=3e-4,
        buffer_size=10_000,
        learning_starts=256,
        batch_size=64,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto_1.0",
        target_update_interval=1,
        target_entropy=-1.0,
        policy_kwargs=dict(
            net_arch=[64, 64],
            activation_fn=torch.nn.Tanh,
            n_critics=2,
            optimizer_kwargs=dict(eps=1e-5),
        ),
        seed=0,
        device="cpu",
        verbose=0,
    )
    warm = 256 + 500
    model.learn(warm)  # warm-up transitions, then 500 learning steps
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    print(f"env_steps_per_s {args.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()

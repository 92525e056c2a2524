#!/usr/bin/env python3
"""SB3's A2C with rl-zoo's Pendulum-v1 settings (VecNormalize + gSDE), the workload of
`benches/train.rs` group `zoo_a2c_pendulum`, for a same-machine baseline.

Workload (rl-baselines3-zoo `hyperparams/a2c.yml`, Pendulum-v1, as shipped in this repository's
`hyperparams/a2c.yml`): 8 Pendulum-v1 envs in a DummyVecEnv wrapped in
`VecNormalize(gamma=0.9)` (rl-zoo passes the section's gamma), n_steps 8, gamma 0.9, gae_lambda
0.9, vf_coef 0.4, ent_coef 0, max_grad_norm 0.5, RMSprop, no advantage normalization, linear
learning rate from 7e-4, gSDE (`use_sde=True`, sde_sample_freq -1), policy_kwargs
`dict(log_std_init=-2, ortho_init=False)`; torch on one thread, CPU.

Setup (Python 3.11, from PyPI):
    python3 -m venv /tmp/sb3 && /tmp/sb3/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0
Run:
    OMP_NUM_THREADS=1 /tmp/sb3/bin/python tools/bench/sb3_a2c_pendulum_zoo.py --steps 20000
or let the Rust bench run it in the same process run:
    RL_SB3_PYTHON=/tmp/sb3/bin/python cargo bench -p rl --bench train -- zoo_a2c_pendulum

Prints `env_steps_per_s <value>`: environment steps of `model.learn` per wall-clock second,
measured after a warm-up of 640 steps.
"""
import argparse
import time

import torch
from stable_baselines3 import A2C
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize


def linear(initial):
    return lambda progress_remaining: progress_remaining * initial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="timed environment steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=8, seed=0), gamma=0.9)
    model = A2C(
        "MlpPolicy",
        env,
        n_steps=8,
        gamma=0.9,
        gae_lambda=0.9,
        vf_coef=0.4,
        ent_coef=0.0,
        max_grad_norm=0.5,
        use_rms_prop=True,
        normalize_advantage=False,
        learning_rate=linear(7e-4),
        use_sde=True,
        policy_kwargs=dict(log_std_init=-2, ortho_init=False),
        seed=0,
        device="cpu",
        verbose=0,
    )
    model.learn(640)  # warm-up
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    print(f"env_steps_per_s {args.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SB3's A2C on the workload of `benches/train.rs` (group `a2c`), for a same-machine baseline.

Workload: 8 CartPole-v1 envs in a DummyVecEnv, SB3's A2C defaults (n_steps 5, RMSprop
lr 7e-4 alpha 0.99 eps 1e-5, gamma 0.99, gae_lambda 1, vf_coef 0.5, ent_coef 0,
max_grad_norm 0.5), MlpPolicy with separate 2x64 tanh actor and critic; torch on one thread,
CPU, no evaluation, log_interval beyond the run.

Run:
    OMP_NUM_THREADS=1 /opt/sb3venv/bin/python tools/bench/sb3_a2c_cartpole.py --steps 20000
or let the Rust bench run it in the same process run:
    RL_SB3_PYTHON=/opt/sb3venv/bin/python cargo bench -p rl --bench train -- a2c

Prints `env_steps_per_s <value>`: environment steps of `model.learn` per wall-clock second,
measured after a 2,000-step warm-up.
"""
import argparse
import time

import torch
from stable_baselines3 import A2C
from stable_baselines3.common.env_util import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="timed environment steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = A2C("MlpPolicy", env, seed=0, device="cpu", verbose=0)
    model.learn(2000, log_interval=10**9)  # warm-up
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False, log_interval=10**9)
    elapsed = time.perf_counter() - start
    print(f"env_steps_per_s {args.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()

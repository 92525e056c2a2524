#!/usr/bin/env python3
"""SB3's DQN on the matched workload of `benches/train.rs` (group `dqn`), for a same-machine
baseline.

Workload (what ModuRL publishes against SB3): one CartPole-v1 env, QNetwork and target of 2x64
tanh, replay buffer 10,000, batch 64, Adam 2.5e-4 eps 1e-5, one gradient step every 4
transitions, no gradient clipping, hard target copy every 1,000 transitions, constant epsilon
0.1, gamma 0.99, 1,024 warm-up transitions; torch on one thread, CPU. SB3's DQN has no loss
option: it keeps its Huber loss where the workload says MSE (the two cost the same; the Rust
side runs MSE). "No clipping" is max_grad_norm = inf (torch still computes the norm).

Setup (Python 3.11, from PyPI):
    python3 -m venv /tmp/sb3 && /tmp/sb3/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0
Run:
    OMP_NUM_THREADS=1 /tmp/sb3/bin/python tools/bench/sb3_dqn_cartpole.py --steps 20000
or let the Rust bench run it in the same process run:
    RL_SB3_PYTHON=/tmp/sb3/bin/python cargo bench -p rl --bench train -- dqn

Prints `env_steps_per_s <value>`: environment steps of `model.learn` per wall-clock second,
measured after the warm-up transitions and a first 2,000 learning steps.
"""
import argparse
import math
import time

import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="timed environment steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=2.5e-4,
        buffer_size=10_000,
        learning_starts=1024,
        batch_size=64,
        tau=1.0,
        gamma=0.99,
        train_freq=4,
        gradient_steps=1,
        target_update_interval=1000,
        exploration_fraction=1.0,
        exploration_initial_eps=0.1,
        exploration_final_eps=0.1,
        max_grad_norm=math.inf,
        policy_kwargs=dict(
            net_arch=[64, 64],
            activation_fn=torch.nn.Tanh,
            optimizer_kwargs=dict(eps=1e-5),
        ),
        seed=0,
        device="cpu",
        verbose=0,
    )
    warm = 1024 + 2000
    model.learn(warm)  # warm-up transitions, then 2000 learning steps
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    print(f"env_steps_per_s {args.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()

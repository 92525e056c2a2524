#!/usr/bin/env python3
"""Record Gymnasium 1.4 classic-control trajectories made with keyword arguments.

Writes ``tests/golden/classic_control/env_kwargs.json`` (``header.format`` =
``"env_kwargs/1"``) for the parity test ``crates/rl-env/tests/env_kwargs.rs``: for every entry of
``CASES`` below, ``gymnasium.make(env_id, **kwargs)`` is reset with a seed and stepped with
recorded actions until the episode ends. The kwargs are those ``rl_env::make_with`` takes
(``EnvSpec::kwargs``): CartPole-v1 ``sutton_barto_reward``, Pendulum-v1 ``g``, MountainCar-v0 and
MountainCarContinuous-v0 ``goal_velocity``, and ``max_episode_steps`` (the TimeLimit).

Re-running
----------
The reference stack is exactly: Python 3.11.7, gymnasium 1.4.0, numpy 2.4.6 (Linux x86_64)::

    python3.11 -m venv /opt/sb3venv
    /opt/sb3venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0 numpy==2.4.6

Then, from the repository root::

    /opt/sb3venv/bin/python tools/golden/gen_env_kwargs_golden.py
    /opt/sb3venv/bin/python tools/golden/gen_env_kwargs_golden.py --out /tmp/x   # elsewhere

It is deterministic (seeded resets, actions from seeded NumPy generators or deterministic
controllers, no timestamps in the file): re-running rewrites the file byte for byte. It takes
under a second.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import gymnasium as gym
import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "classic_control"
FORMAT = "env_kwargs/1"


def arrival_velocity_f32() -> float:
    """The float32 velocity with which MountainCarContinuous-v0 (default kwargs, reset seed 0,
    energy pumping) first reaches the goal."""
    env = gym.make("MountainCarContinuous-v0")
    obs, _ = env.reset(seed=0)
    while True:
        obs, _, terminated, truncated, _ = env.step(pump_continuous(obs))
        if terminated or truncated:
            assert terminated, "the pumping controller should reach the goal"
            return env.unwrapped.state[1]


def pump_discrete(obs) -> int:
    """Energy pumping for MountainCar-v0: push in the direction of the velocity."""
    return 2 if obs[1] >= 0 else 0


def pump_continuous(obs) -> np.ndarray:
    """Energy pumping for MountainCarContinuous-v0 (full force along the velocity)."""
    return np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32)


def balance(obs) -> int:
    """A crude CartPole stabilizer: push towards the side the pole falls to."""
    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0


def mountain_car_continuous_f32_tie() -> float:
    """A goal_velocity that is above the arrival velocity v (float32) in float64 but rounds to v
    in float32: under NumPy 2 (NEP 50) ``np.float32 >= python float`` compares in float32, so
    the episode still terminates on arrival. A port comparing in float64 would not."""
    v = np.float32(arrival_velocity_f32())
    g = float(v) + float(np.spacing(v)) / 4
    assert g > float(v) and np.float32(g) == v and bool(v >= g)
    return g


def cases() -> list[dict]:
    """Name, env id, kwargs (as passed to gymnasium.make) and episodes of every case."""
    return [
        {
            "name": "cartpole_sutton_barto",
            "env_id": "CartPole-v1",
            "kwargs": {"sutton_barto_reward": True},
            "episodes": [(0, "random", 1), (1, "random", 2)],
            "why": "reward 0 per step and -1 on the terminating step",
        },
        {
            "name": "cartpole_sutton_barto_truncated",
            "env_id": "CartPole-v1",
            "kwargs": {"sutton_barto_reward": True, "max_episode_steps": 30},
            "episodes": [(3, "balance", None)],
            "why": "a truncated (not terminated) Sutton-Barto episode ends with reward 0",
        },
        {
            "name": "cartpole_sutton_barto_off",
            "env_id": "CartPole-v1",
            "kwargs": {"sutton_barto_reward": False},
            "episodes": [(4, "random", 5)],
            "why": "the default, given explicitly",
        },
        {
            "name": "pendulum_g_float",
            "env_id": "Pendulum-v1",
            "kwargs": {"g": 9.81, "max_episode_steps": 60},
            "episodes": [(0, "random", 1)],
            "why": "g changes the dynamics; 60-step TimeLimit",
        },
        {
            "name": "pendulum_g_int",
            "env_id": "Pendulum-v1",
            "kwargs": {"g": 2, "max_episode_steps": 40},
            "episodes": [(1, "random_out_of_range", 2)],
            "why": "an int g (3 * g stays a Python int before the division)",
        },
        {
            "name": "pendulum_g_negative",
            "env_id": "Pendulum-v1",
            "kwargs": {"g": -3.5, "max_episode_steps": 40},
            "episodes": [(2, "random", 3)],
            "why": "negative gravity",
        },
        {
            "name": "mountaincar_goal_velocity",
            "env_id": "MountainCar-v0",
            "kwargs": {"goal_velocity": 0.045},
            "episodes": [(0, "energy_pumping", None)],
            "why": "the car reaches x >= 0.5 slower than 0.045 and does not terminate there",
        },
        {
            "name": "mountaincar_goal_velocity_negative",
            "env_id": "MountainCar-v0",
            "kwargs": {"goal_velocity": -0.01},
            "episodes": [(1, "energy_pumping", None)],
            "why": "negative goal velocity",
        },
        {
            "name": "mountaincar_goal_velocity_int",
            "env_id": "MountainCar-v0",
            "kwargs": {"goal_velocity": 1, "max_episode_steps": 130},
            "episodes": [(2, "energy_pumping", None)],
            "why": "an unreachable int goal velocity: truncated by a 130-step TimeLimit",
        },
        {
            "name": "mountaincarcontinuous_goal_velocity_f32_tie",
            "env_id": "MountainCarContinuous-v0",
            "kwargs": {"goal_velocity": mountain_car_continuous_f32_tie()},
            "episodes": [(0, "energy_pumping", None)],
            "why": mountain_car_continuous_f32_tie.__doc__.replace("\n    ", " ").strip(),
        },
        {
            "name": "mountaincarcontinuous_goal_velocity",
            "env_id": "MountainCarContinuous-v0",
            "kwargs": {"goal_velocity": 0.065, "max_episode_steps": 300},
            "episodes": [(1, "energy_pumping", None)],
            "why": "a goal velocity above the arrival velocity; 300-step TimeLimit",
        },
        {
            "name": "acrobot_max_episode_steps",
            "env_id": "Acrobot-v1",
            "kwargs": {"max_episode_steps": 25},
            "episodes": [(0, "random", 1)],
            "why": "max_episode_steps as a keyword argument of make",
        },
    ]


def widen(a) -> list[float]:
    return [float(x) for x in np.asarray(a).reshape(-1)]


def record_episode(env: gym.Env, reset_seed: int, policy: str, action_seed: int | None) -> dict:
    space = env.action_space
    rng = np.random.default_rng(action_seed) if action_seed is not None else None

    def action(obs):
        if policy == "balance":
            return balance(obs)
        if policy == "energy_pumping":
            if isinstance(space, gym.spaces.Discrete):
                return pump_discrete(obs)
            return pump_continuous(obs)
        if isinstance(space, gym.spaces.Discrete):
            return int(rng.integers(space.n))
        scale = 1.5 if policy == "random_out_of_range" else 1.0
        return rng.uniform(space.low * scale, space.high * scale).astype(np.float32)

    obs, _ = env.reset(seed=reset_seed)
    episode = {
        "reset_seed": reset_seed,
        "policy": policy,
        "action_rng_seed": action_seed,
        "initial_observation": widen(obs),
        "steps": [],
    }
    while True:
        a = action(obs)
        obs, reward, terminated, truncated, _ = env.step(a)
        episode["steps"].append(
            {
                "action": a if isinstance(a, int) else widen(a),
                "obs": widen(obs),
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
        if terminated or truncated:
            break
    episode["length"] = len(episode["steps"])
    episode["episode_return"] = sum(s["reward"] for s in episode["steps"])
    return episode


def record() -> dict:
    out = []
    for case in cases():
        env = gym.make(case["env_id"], **case["kwargs"])
        out.append(
            {
                "name": case["name"],
                "env_id": case["env_id"],
                "kwargs": case["kwargs"],
                "why": case["why"],
                "max_episode_steps": env.spec.max_episode_steps,
                "episodes": [record_episode(env, *ep) for ep in case["episodes"]],
            }
        )
    header = {
        "format": FORMAT,
        "made_with": "tools/golden/gen_env_kwargs_golden.py",
        "gymnasium_version": gym.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "notes": (
            "Each case: env = gymnasium.make(env_id, **kwargs) (kwargs as JSON: bools, ints, "
            "floats; an int stays an int, e.g. g=2), then per episode env.reset(seed=reset_seed) "
            "and env.step until terminated or truncated. max_episode_steps is env.spec's, i.e. "
            "the TimeLimit applied. Actions: 'random' from np.random.default_rng(action_rng_seed) "
            "(integers(n) for Discrete, uniform(low, high) cast to float32 for Box; "
            "'random_out_of_range' draws from 1.5x the bounds), 'energy_pumping' pushes along the "
            "velocity, 'balance' pushes towards where the pole falls. obs and Box actions are "
            "float32 widened exactly to float64; rewards are float64. Floats are Python reprs "
            "(round-trip exact)."
        ),
    }
    return {"header": header, "cases": out}


def dumps(x, ind: int = 0) -> str:
    """JSON with one line per step (small diffs, readable), nothing else indented deeper."""
    pad = " " * ind
    if isinstance(x, dict) and not (set(x) >= {"action", "obs", "reward"}):
        items = [f'{pad} {json.dumps(k)}: {dumps(v, ind + 1)}' for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(x, list) and x and isinstance(x[0], dict):
        items = [pad + " " + dumps(v, ind + 1) for v in x]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(x, allow_nan=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    if gym.__version__ != "1.4.0" or not np.__version__.startswith("2."):
        raise SystemExit(f"needs gymnasium 1.4.0 and numpy 2.x, found {gym.__version__} and {np.__version__}")
    data = record()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "env_kwargs.json"
    text = dumps(data) + "\n"
    path.write_text(text)
    steps = sum(len(e["steps"]) for c in data["cases"] for e in c["episodes"])
    print(f"{path}: {len(data['cases'])} cases, {steps} steps, {len(text)} bytes")
    for c in data["cases"]:
        ends = [(e["length"], e["steps"][-1]["terminated"], e["steps"][-1]["truncated"]) for e in c["episodes"]]
        print(f"  {c['name']}: (length, terminated, truncated) {ends}")


if __name__ == "__main__":
    main()

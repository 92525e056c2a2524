#!/usr/bin/env python3
"""Record Stable-Baselines3 2.9.2 DQN model zips and what SB3 computes from them.

Writes, into ``tests/golden/sb3/``, for every entry of ``MODELS`` below:

- ``dqn_<name>.zip``: ``model.save(...)`` of a DQN trained briefly on CartPole-v1 (so the
  weights are not the initialization, and the target network differs from the online one);
- ``dqn_<name>_outputs.json``: the training settings, the versions, a summary of the
  ``policy.pth`` state dict (``q_net.q_net.*`` and ``q_net_target.q_net.*``), 64 recorded
  observations, and SB3's outputs on them from the model re-loaded from the zip:
  ``outputs.q_values`` (``policy.q_net(obs)``), ``outputs.target_q_values``
  (``policy.q_net_target(obs)``), ``outputs.deterministic_action`` (``model.predict(obs,
  deterministic=True)``, a batch) and ``outputs.deterministic_action_single_obs_first8`` (the
  same, one observation at a time). The layout follows the A2C/PPO ``*_outputs.json`` files of
  the shared golden set (``model_file``, ``algo``, ``env_id``, ``versions``, ``train``,
  ``observations``, ``outputs``), with ``algo`` = ``"DQN"``.

Re-running
----------
The reference stack is exactly: Python 3.11.7, stable-baselines3 2.9.2, gymnasium 1.4.0,
torch 2.15.0 (CPU), numpy 2.4.6 (Linux x86_64); see ``tools/golden/README.md``. From the
repository root::

    /opt/sb3venv/bin/python tools/golden/gen_sb3_dqn_zip_golden.py            # all models
    /opt/sb3venv/bin/python tools/golden/gen_sb3_dqn_zip_golden.py --out /tmp/x

It sets ``torch.set_num_threads(1)`` before anything runs and is deterministic: the JSON
files are rewritten byte for byte (no timestamps or timings in them). The zips hold SB3's
own ``system_info.txt`` and ``data`` (with a ``start_time``), so their bytes differ between
runs while the tensors in ``policy.pth`` do not. Both models take about a minute on one core.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import zipfile
from pathlib import Path

import torch

torch.set_num_threads(1)

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import stable_baselines3 as sb3  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "sb3"
ENV_ID = "CartPole-v1"

# name -> (seed, total_timesteps, DQN keyword arguments besides policy/env/seed/device).
MODELS: dict[str, tuple[int, int, dict]] = {
    # rl-zoo's CartPole-v1 settings (net_arch [256, 256], ReLU), a short run; the target is
    # copied every 1000 steps so it lags the online network when training stops.
    "cartpole": (
        3,
        12_000,
        dict(
            learning_rate=2.3e-3,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            gamma=0.99,
            target_update_interval=1_000,
            train_freq=256,
            gradient_steps=128,
            exploration_fraction=0.16,
            exploration_final_eps=0.04,
            policy_kwargs=dict(net_arch=[256, 256]),
        ),
    ),
    # A custom net_arch and activation (3 hidden layers of different widths, Tanh).
    "cartpole_custom_arch": (
        5,
        6_000,
        dict(
            learning_rate=1e-3,
            batch_size=32,
            learning_starts=500,
            target_update_interval=700,
            train_freq=4,
            gradient_steps=1,
            policy_kwargs=dict(net_arch=[32, 24, 16], activation_fn=torch.nn.Tanh),
        ),
    ),
}


def f(x) -> float:
    """A Python float (JSON writes the shortest round-trip decimal)."""
    return float(x)


def rollout_obs(model: DQN | None, seed: int, steps: int) -> np.ndarray:
    """Observations of a rollout: the greedy model (or random actions when model is None)."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(obs)
        if model is None:
            a = int(rng.integers(2))
        else:
            a = int(model.predict(obs, deterministic=True)[0])
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
    return np.asarray(out, dtype=np.float32)


def record(name: str, out: Path) -> None:
    seed, total, kwargs = MODELS[name]
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    model.learn(total_timesteps=total)
    zip_path = out / f"dqn_{name}.zip"
    model.save(zip_path)
    model = DQN.load(zip_path, device="cpu")
    policy = model.policy

    rng = np.random.default_rng(900 + seed)
    greedy = rollout_obs(model, 901 + seed, 2000)
    random = rollout_obs(None, 902 + seed, 2000)
    picks_g = np.sort(rng.choice(len(greedy), 32, replace=False))
    picks_r = np.sort(rng.choice(len(random), 32, replace=False))
    obs = np.concatenate([greedy[picks_g], random[picks_r]]).astype(np.float32)

    with torch.no_grad():
        t = torch.as_tensor(obs)
        q = policy.q_net(t).numpy()
        qt = policy.q_net_target(t).numpy()
    actions, _ = model.predict(obs, deterministic=True)
    single = [int(model.predict(o, deterministic=True)[0]) for o in obs[:8]]

    with zipfile.ZipFile(zip_path) as z:
        contents = [{"name": i.filename, "size": i.file_size} for i in z.infolist()]
        state = torch.load(io.BytesIO(z.read("policy.pth")), map_location="cpu", weights_only=True)
    state_summary = [
        {
            "key": k,
            "shape": list(v.shape),
            "dtype": str(v.dtype),
            "sum": f(v.double().sum()),
            "first_values": [f(x) for x in v.flatten()[:4]],
        }
        for k, v in state.items()
    ]
    hidden = kwargs["policy_kwargs"]
    doc = {
        "model_file": zip_path.name,
        "algo": "DQN",
        "env_id": ENV_ID,
        "versions": {
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "train": {
            "make_vec_env": {"env_id": ENV_ID, "n_envs": 1, "seed": seed},
            "algo_kwargs": {k: (repr(v) if k == "policy_kwargs" else v) for k, v in kwargs.items()},
            "policy": "MlpPolicy",
            "seed": seed,
            "total_timesteps": total,
            "device": "cpu",
            "torch_threads": 1,
        },
        "net_arch": list(hidden["net_arch"]),
        "activation": hidden.get("activation_fn", torch.nn.ReLU).__name__,
        "observation_sampling": (
            f"32 obs sampled from a 2000-step greedy rollout of the re-loaded model (reset seed "
            f"{901 + seed}) and 32 from a 2000-step random-action rollout (reset seed {902 + seed}); "
            f"rng default_rng({900 + seed})"
        ),
        "notes": (
            "All values are computed by the model re-loaded from the zip (DQN.load), with "
            "torch.no_grad on CPU, float32; obs are float32 widened exactly to float64. "
            "q_values = policy.q_net(obs); target_q_values = policy.q_net_target(obs); "
            "deterministic_action = model.predict(obs_batch, deterministic=True) (greedy argmax "
            "of q_values; DQN.predict only explores when deterministic=False); "
            "deterministic_action_single_obs_first8 = predict on each of the first 8 observations "
            "alone. policy.pth holds q_net.q_net.{0,2,..}.{weight,bias} and "
            "q_net_target.q_net.{0,2,..}.{weight,bias}: nn.Sequential(Linear, act, ..., Linear)."
        ),
        "zip_contents": contents,
        "policy_state_dict": state_summary,
        "observation_sources": ["greedy_rollout"] * 32 + ["random_rollout"] * 32,
        "observations": [[f(x) for x in row] for row in obs],
        "outputs": {
            "q_values": [[f(x) for x in row] for row in q],
            "target_q_values": [[f(x) for x in row] for row in qt],
            "deterministic_action": [int(a) for a in actions],
            "deterministic_action_single_obs_first8": single,
        },
    }
    path = out / f"dqn_{name}_outputs.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {zip_path.name} and {path.name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", action="append", choices=sorted(MODELS))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or MODELS:
        record(name, args.out)


if __name__ == "__main__":
    main()

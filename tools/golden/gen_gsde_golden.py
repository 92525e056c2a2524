#!/usr/bin/env python3
"""Record reference data of Stable-Baselines3 2.9.2 gSDE (generalized State-Dependent
Exploration) for A2C and PPO on Pendulum-v1.

Writes into ``tests/golden/sb3/``:

* ``a2c_update_pendulum_gsde*.json`` (``header.format`` = ``"sb3_a2c_update_golden/1"``): SB3's
  own ``collect_rollouts`` + ``A2C.train`` with ``use_sde=True``, iteration by iteration, in the
  schema of the other ``a2c_update_*.json`` files (read by the A2C parity test), plus what gSDE
  adds: ``header.sde`` (the distribution's settings) and, per iteration, ``rollout.sde_noise``:
  every exploration-matrix draw (``policy.reset_noise``) of that rollout with the step it
  happened before. torch's RNG cannot be reproduced outside torch, so the matrices are recorded
  and a port feeds them in instead of drawing its own.
* ``a2c_pendulum_gsde.zip`` / ``ppo_pendulum_gsde.zip`` with ``*_outputs.json``: briefly trained
  gSDE models (``log_std_init`` != 0) saved by ``model.save``, and what the re-loaded model
  computes on recorded observations (deterministic actions, log-probabilities, entropy,
  values, the state-dependent std and the std matrix).

Read ``tests/golden/README.md`` and each file's ``header.layout`` / ``header.notes`` (update
files) or ``notes`` (outputs files).

Re-running
----------
The reference stack is exactly: Python 3.11.7, stable-baselines3 2.9.2, gymnasium 1.4.0,
torch 2.15.0 (CPU), numpy 2.4.6 (Linux x86_64)::

    python3.11 -m venv /opt/sb3venv
    /opt/sb3venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0 numpy==2.4.6

Then, from the repository root::

    /opt/sb3venv/bin/python tools/golden/gen_gsde_golden.py            # everything
    /opt/sb3venv/bin/python tools/golden/gen_gsde_golden.py --out /tmp/x

The script sets ``torch.set_num_threads(1)`` before anything runs and is deterministic: the
JSON files are rewritten byte for byte (no timestamps or timings in them; the zips hold SB3's
own ``system_info.txt``). It takes about ten seconds on one core.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import zipfile
from pathlib import Path

import torch

torch.set_num_threads(1)

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import stable_baselines3 as sb3  # noqa: E402
from stable_baselines3 import A2C, PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "sb3"
FORMAT = "sb3_a2c_update_golden/1"
ENV_ID = "Pendulum-v1"

# One entry per update file. `max_episode_steps` is short so that truncations (and the timeout
# bootstrap) happen inside the recorded iterations.
UPDATE_CONFIGS = [
    {
        "name": "a2c_update_pendulum_gsde",
        "seed": 61,
        "n_envs": 4,
        "K": 5,
        "max_episode_steps": 12,
        "algo": dict(
            n_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
            learning_rate=7e-4, rms_prop_eps=1e-5, use_rms_prop=True, normalize_advantage=False,
            use_sde=True, sde_sample_freq=-1,
        ),
        "log_std_init": -1.0,
    },
    {
        "name": "a2c_update_pendulum_gsde_freq3_gae095_normadv",
        "seed": 62,
        "n_envs": 3,
        "K": 4,
        "max_episode_steps": 10,
        "algo": dict(
            n_steps=8, gamma=0.95, gae_lambda=0.95, ent_coef=0.0, vf_coef=0.4, max_grad_norm=0.5,
            learning_rate=1e-3, rms_prop_eps=1e-5, use_rms_prop=True, normalize_advantage=True,
            use_sde=True, sde_sample_freq=3,
        ),
        "log_std_init": -2.0,
    },
]

ZIP_CONFIGS = [
    {
        "name": "a2c_pendulum_gsde",
        "cls": A2C,
        "seed": 3,
        "n_envs": 4,
        "total_timesteps": 4000,
        "algo": dict(n_steps=8, gamma=0.9, gae_lambda=0.9, ent_coef=0.0, vf_coef=0.4,
                     use_sde=True, sde_sample_freq=4, normalize_advantage=False),
        "policy_kwargs": dict(log_std_init=-2.0, ortho_init=False),
    },
    {
        "name": "ppo_pendulum_gsde",
        "cls": PPO,
        "seed": 4,
        "n_envs": 4,
        "total_timesteps": 2048,
        "algo": dict(n_steps=128, batch_size=64, n_epochs=3, gamma=0.9, gae_lambda=0.95,
                     use_sde=True, sde_sample_freq=-1, learning_rate=1e-3),
        "policy_kwargs": dict(log_std_init=-0.5, net_arch=dict(pi=[32, 32], vf=[64])),
    },
]


def versions() -> dict:
    return {
        "stable_baselines3": sb3.__version__,
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------
# JSON helpers (the layout of the other golden files)


def f64list(a) -> list:
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return a.tolist()
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64).tolist()
    return a.astype(np.float64).tolist()


def t2l(t) -> list:
    return f64list(t.detach().cpu().numpy())


def tensor_dict(named) -> dict:
    return {
        name: {"shape": list(t.shape), "values": f64list(t.detach().cpu().numpy().reshape(-1))}
        for name, t in named
    }


def space_json(space) -> dict:
    def enc(v):
        v = float(v)
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")

    return {
        "type": "Box",
        "shape": list(space.shape),
        "dtype": str(space.dtype),
        "low": [enc(v) for v in space.low.reshape(-1)],
        "high": [enc(v) for v in space.high.reshape(-1)],
    }


def _has_dict(x) -> bool:
    if isinstance(x, dict):
        return True
    if isinstance(x, list):
        return any(_has_dict(v) for v in x)
    return False


def dumps(x, ind: int = 0) -> str:
    pad, pad1 = " " * ind, " " * (ind + 1)
    if isinstance(x, dict):
        if not x:
            return "{}"
        items = [pad1 + json.dumps(k) + ": " + dumps(v, ind + 1) for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(x, list):
        if not _has_dict(x):
            return json.dumps(x, separators=(",", ":"), allow_nan=False)
        if not x:
            return "[]"
        return "[\n" + ",\n".join(pad1 + dumps(v, ind + 1) for v in x) + "\n" + pad + "]"
    return json.dumps(x, allow_nan=False)


def write(path: Path, obj) -> None:
    path.write_text(dumps(obj) + "\n")
    print(f"wrote {path}")


# --------------------------------------------------------------------------------------------
# Update recording


SDE_NOTES = (
    "gSDE (SB3 StateDependentNoiseDistribution with ActorCriticPolicy's settings full_std=True, "
    "use_expln=False, learn_features=False, squash_output=False, epsilon=1e-6): the parameter "
    "log_std has shape [latent_dim_pi, action_dim] (latent_dim_pi = width of the last policy "
    "layer), initialised to log_std_init everywhere (orthogonal init does not touch it). "
    "std = exp(log_std) [latent, act]. For a batch with latent_pi [B, latent] (the policy MLP "
    "output, DETACHED: learn_features=False, so log-prob gradients reach the policy MLP only "
    "through the mean): variance = th.mm(latent_pi**2, std**2) [B, act]; the distribution is "
    "torch Normal(mean, scale) with mean = action_net(latent_pi) and scale = sqrt(variance + 1e-6). "
    "log_prob(a) = sum over action dims of (-((a - mean)**2) / (2 * scale**2) - log(scale) - "
    "log(sqrt(2 pi))) (torch recomputes var = scale**2); entropy = sum over action dims of "
    "(0.5 + 0.5 * log(2 pi) + log(scale)). Both depend on the state through latent_pi, never on "
    "the exploration matrices. NOISE: policy.reset_noise(n) = sample_weights(log_std, batch_size=n): "
    "weights_dist = Normal(zeros_like(std), std); exploration_mat = weights_dist.rsample() "
    "[latent, act]; exploration_matrices = weights_dist.rsample((n,)) [n, latent, act] (drawn "
    "after exploration_mat). sample() = mean + noise with noise = latent_pi @ exploration_mat when "
    "the batch has 1 row or a row count different from n, else the per-row product "
    "latent_pi[i] @ exploration_matrices[i] (th.bmm). mode() = mean. collect_rollouts calls "
    "reset_noise(n_envs) once before its loop, then, when sde_sample_freq > 0, again before every "
    "step whose index (0-based, within the rollout) is a multiple of sde_sample_freq (so step 0 "
    "draws twice). A2C.train and PPO.train do not resample. train/std = exp(log_std).mean() over "
    "all latent x act entries."
)


class Recorder:
    """Pass-through wrappers that record inputs/outputs of SB3's pieces."""

    def __init__(self, model: A2C):
        self.model = model
        self.noise = []
        self.step_in_rollout = 0
        self.steps = []
        self.perms = []
        self.evals = []
        self.batches = []
        self.clip = []
        pol = model.policy

        orig_reset = pol.reset_noise

        def reset_noise(n_envs=1):
            orig_reset(n_envs)
            d = pol.action_dist
            self.noise.append({
                "step": self.step_in_rollout,
                "n": n_envs,
                "exploration_mat": t2l(d.exploration_mat),
                "exploration_matrices": t2l(d.exploration_matrices),
            })

        pol.reset_noise = reset_noise

        orig_perm = np.random.permutation

        def permutation(*args, **kwargs):
            p = orig_perm(*args, **kwargs)
            self.perms.append(np.array(p))
            return p

        np.random.permutation = permutation

        orig_eval = pol.evaluate_actions

        def evaluate_actions(obs, actions):
            v, lp, ent = orig_eval(obs, actions)
            self.evals.append((v.detach().clone(), lp.detach().clone(), ent.detach().clone()))
            return v, lp, ent

        pol.evaluate_actions = evaluate_actions

        buf = model.rollout_buffer
        orig_get_samples = buf._get_samples

        def _get_samples(batch_inds, env=None):
            s = orig_get_samples(batch_inds, env)
            self.batches.append(s)
            return s

        buf._get_samples = _get_samples

        orig_clip = torch.nn.utils.clip_grad_norm_

        def clip_grad_norm_(parameters, max_norm, *args, **kwargs):
            params = list(parameters)
            per = {n: float(torch.linalg.vector_norm(p.grad, 2)) for (n, _), p in
                   zip(model.policy.named_parameters(), params)}
            total = orig_clip(params, max_norm, *args, **kwargs)
            self.clip.append((total.detach().clone(), per))
            return total

        torch.nn.utils.clip_grad_norm_ = clip_grad_norm_


class StepRecorder(BaseCallback):
    def __init__(self, rec: Recorder):
        super().__init__()
        self.rec = rec

    def _on_rollout_start(self) -> None:
        pass

    def _on_step(self) -> bool:
        loc = self.locals
        infos = loc["infos"]
        self.rec.steps.append({
            "rewards_raw": np.array(loc["rewards"], dtype=np.float32).copy(),
            "dones": np.array(loc["dones"]).copy(),
            "truncated": np.array([bool(i.get("TimeLimit.truncated", False)) for i in infos]),
            "terminal_obs": [i.get("terminal_observation") for i in infos],
            "new_obs": np.array(loc["new_obs"]).copy(),
            "clipped_actions": np.array(loc["clipped_actions"]).copy(),
        })
        self.rec.step_in_rollout += 1
        return True


def record_update(cfg: dict, out: Path) -> None:
    seed, n_envs, K = cfg["seed"], cfg["n_envs"], cfg["K"]
    hp = cfg["algo"]
    n_steps = hp["n_steps"]
    vec_env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed,
                           env_kwargs={"max_episode_steps": cfg["max_episode_steps"]})
    model = A2C("MlpPolicy", vec_env, seed=seed, device="cpu", verbose=0,
                policy_kwargs=dict(log_std_init=cfg["log_std_init"]), **hp)
    pol = model.policy
    initial_params = tensor_dict(pol.state_dict().items())
    param_order = list(pol.state_dict().keys())
    rec = Recorder(model)
    cb_rec = StepRecorder(rec)
    total, cb = model._setup_learn(K * n_steps * n_envs, cb_rec)
    cb.on_training_start(locals(), globals())
    iterations = []
    coverage = {"terminated": 0, "truncated": 0, "noise_draws": 0, "clipped_actions": 0}
    for it in range(1, K + 1):
        rec.step_in_rollout = 0
        rec.steps, rec.noise, rec.perms, rec.evals, rec.batches, rec.clip = [], [], [], [], [], []
        model.collect_rollouts(model.env, cb, model.rollout_buffer, n_rollout_steps=n_steps)
        buf = model.rollout_buffer
        last_obs = np.array(model._last_obs).copy()
        with torch.no_grad():
            last_values = pol.predict_values(torch.as_tensor(last_obs)).flatten()
        episode_ends = []
        for t, st in enumerate(rec.steps):
            for e in range(n_envs):
                if st["dones"][e]:
                    kind = "truncated" if st["truncated"][e] else "terminated"
                    coverage[kind] += 1
                    term = np.asarray(st["terminal_obs"][e], dtype=np.float32)
                    with torch.no_grad():
                        tv = float(pol.predict_values(pol.obs_to_tensor(term)[0])[0])
                    episode_ends.append({
                        "step": t, "env": e, "kind": kind,
                        "terminal_observation": f64list(term),
                        "terminal_value": tv,
                        "reward_raw": float(st["rewards_raw"][e]),
                        "reward_stored": float(buf.rewards[t, e]),
                        "reset_observation": f64list(st["new_obs"][e]),
                    })
        clipped = np.stack([s["clipped_actions"] for s in rec.steps])
        coverage["clipped_actions"] += int(np.sum(clipped != buf.actions))
        coverage["noise_draws"] += len(rec.noise)
        rollout = {
            "observations": f64list(buf.observations),
            "actions": f64list(buf.actions),
            "clipped_actions": f64list(clipped),
            "rewards_raw": f64list(np.stack([s["rewards_raw"] for s in rec.steps])),
            "rewards": f64list(buf.rewards),
            "episode_starts": f64list(buf.episode_starts),
            "values": f64list(buf.values),
            "log_probs": f64list(buf.log_probs),
            "step_dones": f64list(np.stack([s["dones"] for s in rec.steps])),
            "step_truncated": f64list(np.stack([s["truncated"] for s in rec.steps])),
            "episode_ends": episode_ends,
            "last_obs": f64list(last_obs),
            "last_values": t2l(last_values),
            "dones": f64list(rec.steps[-1]["dones"]),
            "advantages": f64list(buf.advantages),
            "returns": f64list(buf.returns),
            "sde_noise": rec.noise,
        }
        model._update_current_progress_remaining(model.num_timesteps, total)
        model.train()
        logged = dict(model.logger.name_to_value)
        order = rec.perms[-1]
        v, lp, ent = rec.evals[-1]
        adv = rec.batches[-1].advantages
        if model.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)

        def unpermute(x):
            flat = np.empty(n_envs * n_steps, dtype=np.float32)
            flat[order] = x.detach().cpu().numpy().reshape(-1)
            # env-major flat index env*n_steps + step -> [n_steps][n_envs]
            return f64list(flat.reshape(n_envs, n_steps).T)

        total_norm, per = rec.clip[-1]
        clip_coef = min(float(hp["max_grad_norm"]) / (float(total_norm) + 1e-6), 1.0)
        policy_loss = logged["train/policy_loss"]
        value_loss = logged["train/value_loss"]
        entropy_loss = logged["train/entropy_loss"]
        loss = policy_loss + hp["ent_coef"] * entropy_loss + hp["vf_coef"] * value_loss
        sq = model.policy.optimizer.state
        iterations.append({
            "iteration": it,
            "num_timesteps_after_rollout": int(model.num_timesteps),
            "rollout": rollout,
            "train": {
                "n_updates": int(model._n_updates),
                "learning_rate": float(model.policy.optimizer.param_groups[0]["lr"]),
                "batch_order": f64list(order),
                "per_sample": {
                    "values": unpermute(v.flatten()),
                    "log_prob": unpermute(lp),
                    "entropy": unpermute(ent),
                    "advantages_used": unpermute(adv),
                },
                "policy_loss": policy_loss,
                "value_loss": value_loss,
                "entropy_loss": entropy_loss,
                "loss": loss,
                "explained_variance": float(logged["train/explained_variance"]),
                "grad_norm_before_clip": float(total_norm),
                "clip_coef": clip_coef,
                "grad_norms_per_param_before_clip": per,
                "std_logged": float(logged["train/std"]),
            },
            "optimizer_state_after": {
                "step": float(sq[next(iter(model.policy.parameters()))]["step"]),
                "square_avg": {n: {"shape": list(p.shape),
                                   "values": f64list(sq[p]["square_avg"].numpy().reshape(-1))}
                               for n, p in model.policy.named_parameters()},
            },
            "params_after": tensor_dict(pol.state_dict().items()),
        })
    latent = pol.mlp_extractor.latent_dim_pi
    kwargs_repr = ", ".join(f"{k}={v!r}" for k, v in hp.items())
    header = {
        "format": FORMAT,
        "config_name": cfg["name"],
        "env_id": ENV_ID,
        "algo": "A2C",
        "policy": "MlpPolicy",
        "versions": versions(),
        "device": "cpu",
        "torch_threads": 1,
        "K_iterations": K,
        "n_envs": n_envs,
        "n_steps": n_steps,
        "seed": seed,
        "hyperparameters": {k: hp[k] for k in (
            "n_steps", "gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm",
            "learning_rate", "rms_prop_eps", "use_rms_prop", "normalize_advantage",
            "use_sde", "sde_sample_freq")},
        "a2c_constructor": f"A2C('MlpPolicy', vec_env, seed={seed}, device='cpu', verbose=0, "
                           f"policy_kwargs=dict(log_std_init={cfg['log_std_init']!r}), {kwargs_repr})",
        "env_construction": {
            "code": f"make_vec_env('{ENV_ID}', n_envs={n_envs}, seed={seed}, "
                    f"env_kwargs={{'max_episode_steps': {cfg['max_episode_steps']}}})",
            "max_episode_steps": cfg["max_episode_steps"],
            "first_reset_seeds": [seed + i for i in range(n_envs)],
        },
        "learn_loop": "total, cb = model._setup_learn(K*n_steps*n_envs, StepRecorder()); "
                      "cb.on_training_start(...); K times: model.collect_rollouts(model.env, cb, "
                      "model.rollout_buffer, n_rollout_steps=n_steps); "
                      "model._update_current_progress_remaining(model.num_timesteps, total); "
                      "model.train().",
        "recording": "a BaseCallback._on_step copies rewards (before the bootstrap), dones, infos, "
                     "clipped actions; pass-through wrappers around policy.reset_noise (exploration "
                     "matrices after each draw), np.random.permutation (batch order), "
                     "rollout_buffer._get_samples, policy.evaluate_actions and "
                     "torch.nn.utils.clip_grad_norm_ record without changing the computation; the "
                     "losses, explained variance and std are SB3's logged values.",
        "observation_space": space_json(vec_env.observation_space),
        "action_space": space_json(vec_env.action_space),
        "policy_kwargs_effective": {
            "net_arch": "dict(pi=[64, 64], vf=[64, 64]) (default)",
            "activation_fn": "nn.Tanh",
            "ortho_init": True,
            "log_std_init": cfg["log_std_init"],
            "use_sde": True,
            "full_std": True,
            "use_expln": False,
            "squash_output": False,
            "learn_features": False,
            "share_features_extractor": True,
            "optimizer_class": "torch.optim.RMSprop",
            "optimizer_kwargs": {"alpha": 0.99, "eps": hp["rms_prop_eps"], "weight_decay": 0},
        },
        "sde": {
            "use_sde": True,
            "sde_sample_freq": hp["sde_sample_freq"],
            "full_std": True,
            "use_expln": False,
            "learn_features": False,
            "squash_output": False,
            "epsilon": 1e-6,
            "latent_sde_dim": latent,
            "log_std_shape": [latent, int(vec_env.action_space.shape[0])],
        },
        "param_order": param_order,
        "n_params": int(sum(p.numel() for p in pol.parameters())),
        "layout": {
            "params": "name -> {shape, values}; values row-major (C order); key order = "
                      "state_dict order = optimizer param order",
            "rollout.*": "as in the other a2c_update files (see tests/golden/README.md): "
                         "[n_steps][n_envs] arrays, observations [n_steps][n_envs][obs_dim], "
                         "actions UNCLIPPED float32 samples, episode_ends with step, env, kind, "
                         "terminal_observation, terminal_value, reward_raw, reward_stored, "
                         "reset_observation",
            "rollout.sde_noise": "list, in draw order, of {step, n, exploration_mat [latent][act], "
                                 "exploration_matrices [n][latent][act]}: the matrices after a "
                                 "policy.reset_noise(n) that happened before rollout step `step` "
                                 "(0-based). The actions of step t used the last draw with "
                                 "step <= t.",
            "train.batch_order": "[n_steps*n_envs] permutation served by rollout_buffer.get(); "
                                 "flat index = env*n_steps + step",
            "train.per_sample.*": "[n_steps][n_envs] (un-permuted): values/log_prob/entropy from "
                                  "evaluate_actions in train(); advantages_used = the advantages "
                                  "entering the policy loss (normalized when normalize_advantage)",
            "train.grad_norms_per_param_before_clip": "name -> vector_norm(grad, 2) before clip",
            "optimizer_state_after": "{step, square_avg: name -> {shape, values}} RMSprop state",
            "params_after": "policy state_dict after optimizer.step()",
        },
        "notes": (
            "Everything is what SB3 2.9.2 + torch 2.15 (CPU, 1 thread) computed. The rollout, "
            "timeout bootstrap, GAE, A2C loss, gradient clipping and RMSprop follow exactly the "
            "notes of a2c_update_pendulum.json (same code path); only the action distribution "
            "differs. " + SDE_NOTES + " loss = policy_loss + ent_coef * entropy_loss + vf_coef * "
            "value_loss is recomputed in float64 from the logged float32 .item() values."
        ),
        "coverage": coverage,
    }
    write(out / f"{cfg['name']}.json", {
        "header": header,
        "initial_params": initial_params,
        "initial_optimizer_state": {"step": 0.0, "square_avg": "absent (created lazily as zeros at the first step)"},
        "iterations": iterations,
    })


# --------------------------------------------------------------------------------------------
# Zips and outputs


def record_zip(cfg: dict, out: Path) -> None:
    cls = cfg["cls"]
    env = make_vec_env(ENV_ID, n_envs=cfg["n_envs"], seed=cfg["seed"])
    model = cls("MlpPolicy", env, seed=cfg["seed"], device="cpu", verbose=0,
                policy_kwargs=cfg["policy_kwargs"], **cfg["algo"])
    model.learn(cfg["total_timesteps"])
    zip_path = out / f"{cfg['name']}.zip"
    model.save(zip_path)
    model = cls.load(zip_path, device="cpu")
    pol = model.policy
    pol.set_training_mode(False)

    # Observations: 24 from a stochastic rollout of the model, 8 from random actions.
    rng = np.random.default_rng(cfg["seed"] + 100)
    e = gym.make(ENV_ID)
    obs_list, sources = [], []
    o, _ = e.reset(seed=cfg["seed"] + 200)
    model.policy.reset_noise(1)
    for t in range(240):
        a, _ = model.predict(o, deterministic=False)
        o, _, term, trunc, _ = e.step(a)
        if t % 10 == 9:
            obs_list.append(np.array(o, dtype=np.float32))
            sources.append("model_rollout")
        if term or trunc:
            o, _ = e.reset()
    o, _ = e.reset(seed=cfg["seed"] + 300)
    for t in range(80):
        o, _, term, trunc, _ = e.step(rng.uniform(-2, 2, size=(1,)).astype(np.float32))
        if t % 10 == 9:
            obs_list.append(np.array(o, dtype=np.float32))
            sources.append("random_actions")
    obs = np.stack(obs_list)
    with torch.no_grad():
        ot = torch.as_tensor(obs)
        dist = pol.get_distribution(ot)
        mean = dist.distribution.mean
        scale = dist.distribution.stddev
        lp_half = dist.log_prob(torch.full_like(mean, 0.5))
        lp_mean = dist.log_prob(mean)
        ent = dist.entropy()
        values = pol.predict_values(ot).flatten()
        det, _ = model.predict(obs, deterministic=True)
    sd = pol.state_dict()
    write(out / f"{cfg['name']}_outputs.json", {
        "model_file": zip_path.name,
        "algo": cls.__name__,
        "env_id": ENV_ID,
        "versions": versions(),
        "train": {
            "make_vec_env": {"env_id": ENV_ID, "n_envs": cfg["n_envs"], "seed": cfg["seed"]},
            "algo_kwargs": {**cfg["algo"], "policy_kwargs": repr(cfg["policy_kwargs"])},
            "policy": "MlpPolicy",
            "seed": cfg["seed"],
            "total_timesteps": cfg["total_timesteps"],
            "device": "cpu",
            "torch_threads": 1,
            "recorded_by": "tools/golden/gen_gsde_golden.py",
        },
        "observation_sampling": "24 obs every 10th step of a 240-step stochastic rollout of the "
                                "re-loaded model (reset seed = seed+200, reset_noise(1) first), 8 "
                                "every 10th step of an 80-step rollout with uniform random actions "
                                "from default_rng(seed+100) (reset seed = seed+300)",
        "notes": (
            "All tensors are computed by the model re-loaded from the zip, with torch.no_grad on "
            "CPU, float32. " + SDE_NOTES + " Outputs: deterministic_action_clipped = "
            "model.predict(obs, deterministic=True) (the mean clipped to the action bounds); "
            "action_mean = distribution.mean [N][act]; log_std_param = the log_std parameter "
            "[latent][act]; std_matrix = exp(log_std) [latent][act]; action_std = the "
            "state-dependent scale sqrt(latent_pi**2 @ std_matrix**2 + 1e-6) [N][act]; "
            "log_prob_of_action_0.5 = log_prob of the constant action 0.5 in every dimension; "
            "log_prob_of_mean = log_prob(mean); entropy [N]; value = predict_values(obs)[:, 0]."
        ),
        "zip_contents": [{"name": i.filename, "size": i.file_size} for i in zipfile.ZipFile(zip_path).infolist()],
        "policy_state_dict": [
            {"key": k, "shape": list(t.shape), "dtype": str(t.dtype), "sum": float(t.sum()),
             "first_values": f64list(t.reshape(-1)[:4])} for k, t in sd.items()
        ],
        "observation_sources": sources,
        "observations": f64list(obs),
        "outputs": {
            "deterministic_action_clipped": f64list(det),
            "action_mean": t2l(mean),
            "log_std_param": t2l(pol.log_std),
            "std_matrix": t2l(torch.exp(pol.log_std)),
            "action_std": t2l(scale),
            "log_prob_of_action_0.5": t2l(lp_half),
            "log_prob_of_mean": t2l(lp_mean),
            "entropy": t2l(ent),
            "value": t2l(values),
        },
    })


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for cfg in ZIP_CONFIGS:
        record_zip(cfg, args.out)
    # The update recorder patches np.random.permutation and clip_grad_norm_ (pass-through).
    for cfg in UPDATE_CONFIGS:
        record_update(cfg, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record update-by-update reference data of Stable-Baselines3 2.9.2 SAC, TD3 and DDPG (Pendulum-v1).

Writes ``tests/golden/sb3/<config>.json`` (``sac_update_*``, ``td3_update_*``, ``ddpg_update_*``;
``header.format`` = ``"sb3_sac_update_golden/1"``, ``"sb3_td3_update_golden/1"`` or
``"sb3_ddpg_update_golden/1"``), one file per entry of ``CONFIGS`` below, for the parity tests of
the Rust SAC / TD3 / DDPG. SB3's own ``learn()`` is driven unchanged; everything is recorded
through pass-through wrappers (see ``RECORDING`` and ``header.recording``). Read
``tests/golden/README.md`` and each file's ``header.layout`` / ``header.notes``.

Re-running
----------
The reference stack is exactly: Python 3.11.7, stable-baselines3 2.9.2, gymnasium 1.4.0,
torch 2.15.0 (CPU), numpy 2.4.6 (on Linux x86_64)::

    python3.11 -m venv /opt/sb3venv
    /opt/sb3venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0 numpy==2.4.6

Then, from the repository root::

    /opt/sb3venv/bin/python tools/golden/gen_offpolicy_continuous_golden.py            # all configs
    /opt/sb3venv/bin/python tools/golden/gen_offpolicy_continuous_golden.py --check    # + replay check
    /opt/sb3venv/bin/python tools/golden/gen_offpolicy_continuous_golden.py --only td3_update_pendulum --out /tmp/x

The script runs on CPU with ``torch.set_num_threads(1)`` (set before anything else runs) and is
deterministic: re-running it rewrites the files byte for byte (the header holds no timestamps or
timings). ``--out DIR`` overrides the output folder (default: the repository's
``tests/golden/sb3/``, found relative to this file). ``--check`` runs
``check_offpolicy_continuous_golden.py`` on the written files (an independent float32 torch
replay of every gradient step from the recorded batches and noise, chained from its own
parameters and Adam states). All configs together take a few seconds on one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import stable_baselines3 as sb3  # noqa: E402
import stable_baselines3.sac.sac as sac_module  # noqa: E402
import stable_baselines3.td3.td3 as td3_module  # noqa: E402
import torch.distributions.normal as normal_module  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from stable_baselines3 import DDPG, SAC, TD3  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "sb3"
ENV_ID = "Pendulum-v1"
FORMATS = {
    "SAC": "sb3_sac_update_golden/1",
    "TD3": "sb3_td3_update_golden/1",
    "DDPG": "sb3_ddpg_update_golden/1",
}
ALGOS = {"SAC": SAC, "TD3": TD3, "DDPG": DDPG}


class LinearLR:
    """learning_rate = start * progress_remaining (rl-zoo's lin_<start>)."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        return self.start * progress_remaining

    def describe(self) -> str:
        return f"linear: {self.start!r} * progress_remaining"


# Every config: Pendulum-v1 through make_vec_env with a short TimeLimit (so the buffer holds
# truncations; Pendulum never terminates). `kwargs` = the keyword arguments passed to the
# algorithm besides policy/env/seed/device/policy_kwargs/action_noise. `noise` = the action
# noise: None, ("normal", sigma) or ("ou", sigma, theta, dt) with mean 0 (one per action dim).
CONFIGS: dict[str, dict] = {
    # SAC, learned alpha from 1.0, one env, one gradient step per env step.
    "sac_update_pendulum_auto": dict(
        algo="SAC",
        n_envs=1,
        seed=3,
        max_episode_steps=40,
        total_timesteps=92,
        net_arch=[16, 16],
        noise=None,
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=60,
            batch_size=16,
            tau=0.05,
            gamma=0.99,
            train_freq=1,
            gradient_steps=1,
            ent_coef="auto",
            target_update_interval=1,
            target_entropy="auto",
        ),
    ),
    # SAC, learned alpha from 0.1 ("auto_0.1"), 2 envs, train_freq 3, 2 gradient steps per call,
    # Polyak every 2nd gradient step of a call, linear learning rate (all three optimizers),
    # normal action noise on top of the stochastic policy, a ring buffer that wraps.
    "sac_update_pendulum_auto01_multienv": dict(
        algo="SAC",
        n_envs=2,
        seed=17,
        max_episode_steps=30,
        total_timesteps=128,
        net_arch=[16, 16],
        noise=("normal", 0.1),
        kwargs=dict(
            learning_rate=LinearLR(3e-3),
            buffer_size=64,
            learning_starts=40,
            batch_size=16,
            tau=0.1,
            gamma=0.95,
            train_freq=3,
            gradient_steps=2,
            ent_coef="auto_0.1",
            target_update_interval=2,
            target_entropy="auto",
        ),
    ),
    # SAC, fixed alpha 0.1, one env, train_freq 5 with gradient_steps -1 (5 per call).
    "sac_update_pendulum_fixed": dict(
        algo="SAC",
        n_envs=1,
        seed=29,
        max_episode_steps=25,
        total_timesteps=80,
        net_arch=[16, 16],
        noise=None,
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=50,
            batch_size=16,
            tau=0.05,
            gamma=0.99,
            train_freq=5,
            gradient_steps=-1,
            ent_coef=0.1,
            target_update_interval=1,
            target_entropy="auto",
        ),
    ),
    # SAC with gSDE (use_sde=True): learned alpha, one env, a new exploration matrix every 4
    # collection steps (sde_sample_freq) on top of the one per rollout and the one per gradient
    # step, log_std_init -2, clip_mean 2.0 (SB3's default: Hardtanh on the mean).
    "sac_update_pendulum_gsde": dict(
        algo="SAC",
        n_envs=1,
        seed=5,
        max_episode_steps=40,
        total_timesteps=96,
        net_arch=[16, 16],
        noise=None,
        sde=dict(log_std_init=-2.0),
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=60,
            batch_size=16,
            tau=0.05,
            gamma=0.99,
            train_freq=4,
            gradient_steps=4,
            ent_coef="auto",
            target_update_interval=1,
            target_entropy="auto",
            use_sde=True,
            sde_sample_freq=4,
        ),
    ),
    # SAC with gSDE and use_expln (log_std_init -1: expln's exp branch and its masks; with
    # log_std > 0 the weights' std is >= 1 and Pendulum's actions saturate, where SB3's
    # atanh(tanh(u)) round trip turns last-bit tanh differences between libm and torch into
    # 1e-4 log-probability differences: not a parity test any more), a tight clip_mean 0.3
    # (Hardtanh clips some means), fixed alpha, 2 envs (per-env exploration matrices while
    # collecting), gSDE at warm-up, 2 gradient steps per call.
    "sac_update_pendulum_gsde_expln": dict(
        algo="SAC",
        n_envs=2,
        seed=23,
        max_episode_steps=30,
        total_timesteps=100,
        net_arch=[16, 16],
        noise=None,
        sde=dict(log_std_init=-1.0, use_expln=True, clip_mean=0.3),
        kwargs=dict(
            learning_rate=LinearLR(2e-3),
            buffer_size=1000,
            learning_starts=40,
            batch_size=16,
            tau=0.05,
            gamma=0.98,
            train_freq=3,
            gradient_steps=2,
            ent_coef=0.05,
            target_update_interval=1,
            target_entropy="auto",
            use_sde=True,
            sde_sample_freq=-1,
            use_sde_at_warmup=True,
        ),
    ),
    # TD3: 2 envs, policy_delay 2 with 3 gradient steps per call (the delay crosses train()
    # calls), target policy smoothing 0.2 clipped at 0.5, normal action noise 0.1.
    "td3_update_pendulum": dict(
        algo="TD3",
        n_envs=2,
        seed=7,
        max_episode_steps=30,
        total_timesteps=112,
        net_arch=[16, 16],
        noise=("normal", 0.1),
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=50,
            batch_size=16,
            tau=0.05,
            gamma=0.98,
            train_freq=4,
            gradient_steps=3,
            policy_delay=2,
            target_policy_noise=0.2,
            target_noise_clip=0.5,
        ),
    ),
    # TD3 with Ornstein-Uhlenbeck action noise (reset at every episode end), one env, wide target
    # smoothing (0.5 clipped at 1.0) so that next actions hit the [-1, 1] clamp.
    "td3_update_pendulum_ou": dict(
        algo="TD3",
        n_envs=1,
        seed=41,
        max_episode_steps=20,
        total_timesteps=80,
        net_arch=[16, 16],
        noise=("ou", 0.3, 0.15, 0.05),
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=50,
            batch_size=16,
            tau=0.05,
            gamma=0.99,
            train_freq=1,
            gradient_steps=1,
            policy_delay=2,
            target_policy_noise=0.5,
            target_noise_clip=1.0,
        ),
    ),
    # DDPG (= TD3 with one critic, policy_delay 1, no target smoothing), normal noise 0.3.
    "ddpg_update_pendulum": dict(
        algo="DDPG",
        n_envs=1,
        seed=13,
        max_episode_steps=40,
        total_timesteps=90,
        net_arch=[16, 16],
        noise=("normal", 0.3),
        kwargs=dict(
            learning_rate=1e-3,
            buffer_size=1000,
            learning_starts=50,
            batch_size=16,
            tau=0.05,
            gamma=0.99,
            train_freq=1,
            gradient_steps=1,
        ),
    ),
}

RECORDING = (
    "model.learn(total_timesteps, callback=StepRecorder(), log_interval=None) runs SB3's own "
    "OffPolicyAlgorithm.learn; nothing is re-implemented. Pass-through recorders, removed after learn(): "
    "an instance wrapper around model._sample_action (warm-up vs policy, its returned action and buffer_action; the "
    "action noise object is passed through a recording proxy that stores each call's float32 output and the raw "
    "numpy.random.normal draws it made), model.predict (the unscaled action), actor forward hooks (the policy "
    "output in [-1, 1]) and an instance wrapper around actor.get_action_dist_params (SAC: mean, clamped log_std); "
    "torch.distributions.normal._standard_normal is wrapped to record the standard-normal eps of every "
    "Normal.rsample (collection and both SAC samples per gradient step); torch.Tensor.normal_ is wrapped during "
    "train() to record TD3's target policy noise before clipping; a BaseCallback._on_step (right after env.step "
    "and num_timesteps += n_envs, before _store_transition) copies the env step; wrappers around "
    "replay_buffer.add (the row as stored) and replay_buffer.sample (numpy.random.randint is wrapped while it runs "
    "to capture batch_inds and env_indices; the returned ReplayBufferSamples are copied); actor.action_log_prob "
    "(SAC: inputs/outputs of both samples); forward hooks on critic / critic_target / actor_target (their inputs "
    "and per-head outputs); torch.nn.functional.mse_loss (each head's current Q, the target Q, each head's MSE); "
    "torch.Tensor.backward (the value of every loss backpropagated in train(): SAC ent_coef_loss, critic_loss, "
    "actor_loss; TD3 critic_loss, actor_loss); optimizer step pre-hooks (per-parameter gradient norms before each "
    "optimizer step; full gradients on the first gradient step); the algorithm module's polyak_update (which target "
    "updates ran); model.train (learning rate, logger values; parameters of every network after each gradient "
    "step, read when the next gradient step samples and at the end of train()). log_interval=None only turns off "
    "dump_logs."
)

RECORDING_SDE = (
    " gSDE files: an instance wrapper around actor.reset_noise records the standard-normal draws of both "
    "exploration matrices it samples (torch.distributions.normal._standard_normal), the matrices, and where it ran."
)


# --------------------------------------------------------------------------------------------
# JSON helpers (same layout as the DQN update files)


def f64list(a) -> list:
    """float32/float64/int/bool arrays -> nested python lists (float32 widened exactly)."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return a.tolist()
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64).tolist()
    return a.astype(np.float64).tolist()


def tnp(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def tensor_dict(named) -> dict:
    return {name: {"shape": list(t.shape), "values": f64list(tnp(t).reshape(-1))} for name, t in named}


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
    """Objects indented by one space per level, lists without objects on one line."""
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


# --------------------------------------------------------------------------------------------
# Recorder


class RecordingNoise:
    """Proxy handed to _sample_action: calls the real noise object, records output and draws."""

    def __init__(self, inner, rec: "Recorder"):
        self.inner = inner
        self.rec = rec

    def __call__(self):
        rec = self.rec
        rec.normal_draws = []
        rec.in_noise = True
        try:
            out = self.inner()
        finally:
            rec.in_noise = False
        rec.pending["action_noise"] = f64list(np.asarray(out).reshape(rec.n_envs, -1))
        rec.pending["action_noise_dtype"] = str(np.asarray(out).dtype)
        rec.pending["action_noise_draws"] = [f64list(np.asarray(d, dtype=np.float64).reshape(-1)) for d in rec.normal_draws]
        return out


class Recorder:
    def __init__(self, model, cfg: dict):
        self.model = model
        self.cfg = cfg
        self.algo = cfg["algo"]
        self.is_sac = self.algo == "SAC"
        self.is_sde = bool(getattr(model, "use_sde", False))
        self.sde_resets: list[dict] = []
        self.in_reset = False
        self.reset_draws: list = []
        self.n_envs = cfg["n_envs"]
        self.steps: list[dict] = []
        self.gradient_steps: list[dict] = []
        self.train_calls: list[dict] = []
        self.pending = self._fresh_pending()
        self.in_collect = False
        self.in_sample = False
        self.in_noise = False
        self.normal_draws: list = []
        self.randint_calls: list[np.ndarray] = []
        self.cur_step: dict | None = None
        self.cur_grad: dict | None = None
        self.cur_train: dict | None = None
        self._undo: list = []

    @staticmethod
    def _fresh_pending() -> dict:
        return {"source": None, "policy": None, "unscaled": None, "action_noise": None,
                "action_noise_draws": None, "action_noise_dtype": None, "action": None, "buffer_action": None}

    def networks(self) -> dict:
        m = self.model
        nets = {"actor": m.actor, "critic": m.critic, "critic_target": m.critic_target}
        if not self.is_sac:
            nets["actor_target"] = m.actor_target
        return nets

    def all_params(self) -> dict:
        out = {k: tensor_dict(v.named_parameters()) for k, v in self.networks().items()}
        if self.is_sac and self.model.log_ent_coef is not None:
            out["log_ent_coef"] = f64list(tnp(self.model.log_ent_coef))
        return out

    # -- installation ------------------------------------------------------------------------
    def install(self) -> None:
        m, rec = self.model, self

        def patch(obj, name, new):
            had = name in vars(obj)
            old = getattr(obj, name)
            setattr(obj, name, new)
            self._undo.append((obj, name, old, had))
            return old

        # numpy.random.randint: batch_inds (sample) and env_indices (_get_samples)
        orig_randint = np.random.randint

        def randint(*args, **kwargs):
            v = orig_randint(*args, **kwargs)
            if rec.in_sample:
                rec.randint_calls.append(np.array(v, copy=True))
            return v

        patch(np.random, "randint", randint)

        # numpy.random.normal: the draws of the action noise
        orig_normal = np.random.normal

        def normal(*args, **kwargs):
            v = orig_normal(*args, **kwargs)
            if rec.in_noise:
                rec.normal_draws.append(np.array(v, copy=True))
            return v

        patch(np.random, "normal", normal)

        # torch standard normal of Normal.rsample (SAC)
        orig_std_normal = normal_module._standard_normal

        def standard_normal(*args, **kwargs):
            v = orig_std_normal(*args, **kwargs)
            rec.last_eps = v.detach().clone()
            if rec.in_reset:
                rec.reset_draws.append(rec.last_eps)
                return v
            if rec.in_collect:
                rec.pending.setdefault("_eps", []).append(rec.last_eps)
            return v

        patch(normal_module, "_standard_normal", standard_normal)

        # torch.Tensor.normal_ (TD3 target policy noise)
        orig_tensor_normal = torch.Tensor.normal_

        def tensor_normal_(self_t, *args, **kwargs):
            out = orig_tensor_normal(self_t, *args, **kwargs)
            if rec.cur_grad is not None and not rec.is_sac:  # SAC's eps: _standard_normal above
                rec.cur_grad.setdefault("_target_noise", []).append((out.detach().clone(), args, kwargs))
            return out

        patch(torch.Tensor, "normal_", tensor_normal_)

        # torch.Tensor.backward: every loss value, in order
        orig_backward = torch.Tensor.backward

        def backward(self_t, *args, **kwargs):
            if rec.cur_grad is not None:
                rec.cur_grad.setdefault("_losses", []).append(float(self_t.detach().item()))
            return orig_backward(self_t, *args, **kwargs)

        patch(torch.Tensor, "backward", backward)

        # F.mse_loss
        orig_mse = F.mse_loss

        def mse_loss(input, target, *args, **kwargs):
            out = orig_mse(input, target, *args, **kwargs)
            g = rec.cur_grad
            if g is not None:
                assert not args and not kwargs
                g.setdefault("_mse", []).append((tnp(input)[:, 0], tnp(target)[:, 0], float(out.item())))
            return out

        patch(F, "mse_loss", mse_loss)

        # collection: _sample_action, predict, actor forward / dist params
        orig_sample_action = m._sample_action

        def sample_action(learning_starts, action_noise=None, n_envs=1):
            rec.pending = rec._fresh_pending()
            rec.in_collect = True
            try:
                proxy = None if action_noise is None else RecordingNoise(action_noise, rec)
                action, buffer_action = orig_sample_action(learning_starts, proxy, n_envs)
            finally:
                rec.in_collect = False
            p = rec.pending
            p["source"] = "policy" if p["unscaled"] is not None else "warmup_random"
            p["action"] = np.array(action, copy=True)
            p["buffer_action"] = np.array(buffer_action, copy=True)
            return action, buffer_action

        patch(m, "_sample_action", sample_action)

        orig_predict = m.predict

        def predict(observation, state=None, episode_start=None, deterministic=False):
            out = orig_predict(observation, state, episode_start, deterministic)
            if rec.in_collect:
                rec.pending["unscaled"] = np.array(out[0], copy=True)
            return out

        patch(m, "predict", predict)

        def actor_hook(module, inputs, output):
            if rec.in_collect:
                pol = rec.pending["policy"] = rec.pending["policy"] or {}
                pol["actor_output"] = f64list(tnp(output))
            elif rec.cur_grad is not None and not rec.is_sac:
                rec.cur_grad["_actor_pi"] = tnp(output)

        h = m.actor.register_forward_hook(actor_hook)
        self._undo.append(("hook", h))

        if self.is_sac:
            orig_dist_params = m.actor.get_action_dist_params

            def get_action_dist_params(obs):
                mean, log_std, kw = orig_dist_params(obs)
                rec.last_dist = (tnp(mean), tnp(log_std))
                if rec.in_collect:
                    pol = rec.pending["policy"] = rec.pending["policy"] or {}
                    pol["mean"] = f64list(rec.last_dist[0])
                    pol["log_std"] = f64list(rec.last_dist[1])
                return mean, log_std, kw

            patch(m.actor, "get_action_dist_params", get_action_dist_params)

            orig_alp = m.actor.action_log_prob

            def action_log_prob(obs):
                rec.last_eps = None
                actions, log_prob = orig_alp(obs)
                g = rec.cur_grad
                if g is not None:
                    entry = {"mean": f64list(rec.last_dist[0])}
                    if rec.is_sde:  # log_std is the [latent, act] parameter (params_after)
                        assert rec.last_eps is None  # gSDE samples with the step's matrix
                    else:
                        entry["log_std"] = f64list(rec.last_dist[1])
                        entry["eps"] = f64list(tnp(rec.last_eps))
                    entry["actions"] = f64list(tnp(actions))
                    entry["log_prob"] = f64list(tnp(log_prob))
                    g.setdefault("_alp", []).append(entry)
                return actions, log_prob

            patch(m.actor, "action_log_prob", action_log_prob)

            if rec.is_sde:
                orig_reset_noise = m.actor.reset_noise

                def reset_noise(batch_size=1):
                    rec.reset_draws = []
                    rec.in_reset = True
                    try:
                        orig_reset_noise(batch_size=batch_size)
                    finally:
                        rec.in_reset = False
                    assert len(rec.reset_draws) == 2, len(rec.reset_draws)
                    dist = m.actor.action_dist
                    entry = {
                        "batch_size": int(batch_size),
                        "eps_single": f64list(tnp(rec.reset_draws[0])),
                        "eps_per_env": f64list(tnp(rec.reset_draws[1])),
                        "exploration_mat": f64list(tnp(dist.exploration_mat)),
                        "exploration_matrices": f64list(tnp(dist.exploration_matrices)),
                    }
                    g = rec.cur_grad
                    if g is not None:
                        assert "sde" not in g
                        g["sde"] = entry
                    else:
                        entry = {"before_step": len(rec.steps), "num_timesteps": int(m.num_timesteps), **entry}
                        rec.sde_resets.append(entry)

                patch(m.actor, "reset_noise", reset_noise)

        def critic_hook(module, inputs, output):
            g = rec.cur_grad
            if g is not None:
                g.setdefault("_critic", []).append((tnp(inputs[1]), [tnp(o)[:, 0] for o in output]))

        def critic_target_hook(module, inputs, output):
            g = rec.cur_grad
            if g is not None:
                g.setdefault("_critic_target", []).append((tnp(inputs[1]), [tnp(o)[:, 0] for o in output]))

        for mod, hook in ((m.critic, critic_hook), (m.critic_target, critic_target_hook)):
            self._undo.append(("hook", mod.register_forward_hook(hook)))
        if not self.is_sac:
            def actor_target_hook(module, inputs, output):
                g = rec.cur_grad
                if g is not None:
                    g["_actor_target_out"] = tnp(output)

            self._undo.append(("hook", m.actor_target.register_forward_hook(actor_target_hook)))

        # optimizer pre-step hooks: gradient norms
        opts = {"actor": m.actor.optimizer, "critic": m.critic.optimizer}
        if self.is_sac and m.ent_coef_optimizer is not None:
            opts["ent_coef"] = m.ent_coef_optimizer
        self.optimizers = opts
        name_of = {}
        for k, net in (("actor", m.actor), ("critic", m.critic)):
            for n, p in net.named_parameters():
                name_of[id(p)] = n
        if self.is_sac and m.log_ent_coef is not None:
            name_of[id(m.log_ent_coef)] = "log_ent_coef"

        def make_pre(key):
            def pre(optimizer, args, kwargs):
                g = rec.cur_grad
                if g is None:
                    return
                grads = {}
                for p in optimizer.param_groups[0]["params"]:
                    grads[name_of[id(p)]] = p.grad.detach().clone()
                per = {n: float(torch.linalg.vector_norm(v, 2).item()) for n, v in grads.items()}
                total = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v, 2) for v in grads.values()]), 2).item())
                entry = {"lr": float(optimizer.param_groups[0]["lr"]), "grad_norm": total, "grad_norms_per_param": per}
                if g["index"] == 0:
                    entry["grads"] = {n: {"shape": list(v.shape), "values": f64list(tnp(v).reshape(-1))} for n, v in grads.items()}
                g.setdefault("_opt", []).append((key, entry))

            return pre

        for key, opt in opts.items():
            self._undo.append(("hook", opt.register_step_pre_hook(make_pre(key))))

        # polyak
        mod = sac_module if self.is_sac else td3_module

        def polyak_update(params, target_params, tau):
            params, target_params = list(params), list(target_params)
            mod_orig_polyak(params, target_params, tau)
            if not params:  # batch-norm running stats (none in an MLP)
                return
            g = rec.cur_grad
            g.setdefault("_polyak", []).append(float(tau))

        mod_orig_polyak = patch(mod, "polyak_update", polyak_update)

        # replay buffer
        rb = m.replay_buffer
        orig_add = rb.add

        def add(obs, next_obs, action, reward, done, infos):
            pos = rb.pos
            orig_add(obs, next_obs, action, reward, done, infos)
            rec.cur_step["stored"] = {
                "pos": int(pos),
                "obs": f64list(rb.observations[pos]),
                "next_obs": f64list(rb.next_observations[pos]),
                "action": f64list(rb.actions[pos]),
                "reward": f64list(rb.rewards[pos]),
                "done": f64list(rb.dones[pos]),
                "timeout": f64list(rb.timeouts[pos]),
                "pos_after": int(rb.pos),
                "full_after": bool(rb.full),
            }

        patch(rb, "add", add)

        orig_sample = rb.sample

        def sample(batch_size, env=None):
            rec.finish_grad()
            g = {
                "index": len(rec.gradient_steps),
                "train_call": rec.cur_train["index"],
                "step_in_call": rec.cur_train["_k"],
                "num_timesteps": int(m.num_timesteps),
                "buffer_pos": int(rb.pos),
                "buffer_full": bool(rb.full),
                "upper_bound": int(rb.buffer_size if rb.full else rb.pos),
            }
            if not rec.is_sac:
                g["n_updates"] = int(m._n_updates)  # TD3 increments before sampling
            rec.cur_train["_k"] += 1
            rec.randint_calls = []
            rec.in_sample = True
            try:
                data = orig_sample(batch_size, env=env)
            finally:
                rec.in_sample = False
            assert len(rec.randint_calls) == 2, rec.randint_calls
            assert data.discounts is None
            g["batch_inds"] = f64list(rec.randint_calls[0])
            g["env_indices"] = f64list(rec.randint_calls[1])
            g["batch"] = {
                "observations": f64list(tnp(data.observations)),
                "actions": f64list(tnp(data.actions)),
                "next_observations": f64list(tnp(data.next_observations)),
                "dones": f64list(tnp(data.dones)[:, 0]),
                "rewards": f64list(tnp(data.rewards)[:, 0]),
            }
            if rec.is_sac:
                g["_alpha"] = rec._alpha_now()  # alpha of this step: read before alpha's update
            rec.gradient_steps.append(g)
            rec.cur_grad = g
            return data

        patch(rb, "sample", sample)

        orig_train = m.train

        def train(gradient_steps, batch_size=64):
            t = {
                "index": len(rec.train_calls),
                "num_timesteps": int(m.num_timesteps),
                "progress_remaining": float(m._current_progress_remaining),
                "gradient_steps": int(gradient_steps),
                "batch_size": int(batch_size),
                "first_gradient_step": len(rec.gradient_steps),
                "_k": 0,
            }
            rec.cur_train = t
            orig_train(gradient_steps=gradient_steps, batch_size=batch_size)
            rec.finish_grad()
            del t["_k"]
            assert len(rec.gradient_steps) - t["first_gradient_step"] == gradient_steps
            t["learning_rate"] = float(m.actor.optimizer.param_groups[0]["lr"])
            for opt in rec.optimizers.values():
                assert float(opt.param_groups[0]["lr"]) == t["learning_rate"]
            logged = m.logger.name_to_value
            keys = ["train/n_updates", "train/actor_loss", "train/critic_loss", "train/learning_rate"]
            if rec.is_sac:
                keys += ["train/ent_coef", "train/ent_coef_loss"]
            t["logged"] = {
                k: (int(logged[k]) if k == "train/n_updates" else float(logged[k])) for k in keys if k in logged
            }
            rec.train_calls.append(t)
            rec.cur_train = None

        patch(m, "train", train)

    def finish_grad(self) -> None:
        """Post-process the gradient step in progress (called when the next one samples and
        after train())."""
        g = self.cur_grad
        if g is None:
            return
        self.cur_grad = None
        m = self.model
        b = np.asarray(g["batch"]["actions"]).shape[0]
        losses = g.pop("_losses")
        mse = g.pop("_mse")
        crit = g.pop("_critic")
        crit_t = g.pop("_critic_target")
        opt = g.pop("_opt")
        polyak = g.pop("_polyak", [])
        assert len(crit_t) == 1
        g["target_next_actions"] = f64list(crit_t[0][0])
        g["next_q_values_per_critic"] = [f64list(q) for q in crit_t[0][1]]
        g["next_q_values_min"] = f64list(np.min(np.stack(crit_t[0][1], axis=1), axis=1))
        tq = mse[0][1]
        for _, t, _ in mse:
            assert (t == tq).all()
        g["target_q_values"] = f64list(tq)
        g["current_q_values"] = [f64list(c) for c, _, _ in mse]
        assert all((c == cc).all() for (c, _, _), cc in zip(mse, crit[0][1]))
        g["mse_per_critic"] = [v for _, _, v in mse]
        if self.is_sac:
            alp = g.pop("_alp")
            assert len(alp) == 2
            g["pi"] = alp[0]
            g["next_pi"] = alp[1]
            g["ent_coef"] = g.pop("_alpha")
            n_loss = 3 if m.ent_coef_optimizer is not None else 2
            assert len(losses) == n_loss, losses
            if m.ent_coef_optimizer is not None:
                g["ent_coef_loss"] = losses[0]
            g["critic_loss"] = losses[-2]
            g["actor_loss"] = losses[-1]
            assert len(crit) == 2
            g["q_values_pi"] = [f64list(q) for q in crit[1][1]]
            g["target_update"] = bool(polyak)
            assert (g["step_in_call"] % m.target_update_interval == 0) == g["target_update"]
            order_keys = [k for k, _ in opt]
            assert order_keys == (["ent_coef"] if m.ent_coef_optimizer is not None else []) + ["critic", "actor"], order_keys
        else:
            noise = g.pop("_target_noise")
            assert len(noise) == 1
            raw, args, kwargs = noise[0]
            g["target_noise_raw"] = f64list(tnp(raw))
            g["target_noise_clipped"] = f64list(tnp(raw.clamp(-m.target_noise_clip, m.target_noise_clip)))
            g["actor_target_next"] = f64list(g.pop("_actor_target_out"))
            g["critic_loss"] = losses[0]
            g["actor_update"] = len(losses) == 2
            assert g["actor_update"] == (g["n_updates"] % m.policy_delay == 0)
            if g["actor_update"]:
                g["actor_loss"] = losses[1]
                g["actor_actions_pi"] = f64list(g.pop("_actor_pi"))
            else:
                g.pop("_actor_pi", None)
            g["target_update"] = bool(polyak)
            assert g["target_update"] == g["actor_update"]
            assert len(polyak) in (0, 2)
            assert len(crit) == 1
        g["optimizer_steps"] = [{"optimizer": k, **e} for k, e in opt]
        g["params_after"] = self.all_params()
        if self.is_sac:
            g["ent_coef_after"] = float(self._alpha_now())
        order = [
            "index", "train_call", "step_in_call", "num_timesteps", "n_updates", "learning_rate", "buffer_pos",
            "buffer_full", "upper_bound", "batch_inds", "env_indices", "batch", "sde",
            "pi", "ent_coef", "ent_coef_loss",
            "next_pi", "target_noise_raw", "target_noise_clipped", "actor_target_next", "target_next_actions",
            "next_q_values_per_critic", "next_q_values_min", "target_q_values", "current_q_values", "mse_per_critic",
            "critic_loss", "q_values_pi", "actor_update", "actor_actions_pi", "actor_loss", "target_update",
            "optimizer_steps", "params_after", "ent_coef_after",
        ]
        g["learning_rate"] = float(m.actor.optimizer.param_groups[0]["lr"])
        assert set(g) <= set(order), set(g) - set(order)
        for k in order:
            if k in g:
                g[k] = g.pop(k)
        del b

    def _alpha_now(self) -> float:
        m = self.model
        if m.ent_coef_optimizer is not None:
            return float(torch.exp(m.log_ent_coef.detach()).item())
        return float(m.ent_coef_tensor.item())

    def uninstall(self) -> None:
        for item in reversed(self._undo):
            if item[0] == "hook":
                item[1].remove()
                continue
            obj, name, old, had = item
            if had:
                setattr(obj, name, old)
            else:
                delattr(obj, name)
        self._undo = []


class StepRecorder(BaseCallback):
    def __init__(self, rec: Recorder):
        super().__init__(verbose=0)
        self.rec = rec

    def _on_step(self) -> bool:
        rec, m, loc = self.rec, self.model, self.locals
        p = rec.pending
        n_envs = m.n_envs
        infos = loc["infos"]
        dones = np.asarray(loc["dones"])
        term_obs = [f64list(infos[i]["terminal_observation"]) if dones[i] else None for i in range(n_envs)]
        policy = None
        if p["source"] == "policy":
            policy = dict(p["policy"])
            if rec.is_sac and rec.is_sde:
                assert not p.get("_eps"), "gSDE collection draws no per-step noise"
                policy.pop("log_std", None)  # the [latent, act] parameter, not per state
            elif rec.is_sac:
                eps = p.get("_eps", [])
                assert len(eps) == 1
                policy["eps"] = f64list(tnp(eps[0]))
        unscaled = p["unscaled"]
        act_dim = m.action_space.shape[0]
        s = {
            "index": len(rec.steps),
            "num_timesteps": int(m.num_timesteps),
            "action_source": p["source"],
            "obs": f64list(m._last_obs),
            "policy": policy,
            "unscaled_action": None if unscaled is None else f64list(np.asarray(unscaled).reshape(n_envs, act_dim)),
            "action_noise": p["action_noise"],
            "action_noise_draws": p["action_noise_draws"],
            "buffer_action": f64list(p["buffer_action"].reshape(n_envs, act_dim)),
            "env_action": f64list(np.asarray(loc["actions"]).reshape(n_envs, act_dim)),
            "rewards": f64list(loc["rewards"]),
            "dones": f64list(dones.astype(bool)),
            "truncated": [bool(infos[i].get("TimeLimit.truncated", False)) for i in range(n_envs)],
            "terminal_observation": term_obs,
            "new_obs": f64list(loc["new_obs"]),
        }
        assert np.asarray(loc["rewards"]).dtype == np.float32
        assert p["buffer_action"].dtype == np.float32 and np.asarray(loc["actions"]).dtype == np.float32
        if p["action_noise"] is not None:
            assert p["action_noise_dtype"] == "float32"
        if p["source"] == "warmup_random":
            s["unscaled_action"] = f64list(np.asarray(p["_warmup"]).reshape(n_envs, act_dim))
        rec.steps.append(s)
        rec.cur_step = s
        return True

    def _on_rollout_end(self) -> None:
        pass


class WarmupCapture:
    """Captures action_space.sample() outputs during warm-up (the unscaled random action)."""

    def __init__(self, rec: Recorder, space):
        self.rec = rec
        self.space = space
        self.orig = space.sample

    def install(self):
        rec, orig = self.rec, self.orig

        def sample(*args, **kwargs):
            v = orig(*args, **kwargs)
            if rec.in_collect:
                rec.pending.setdefault("_warmup", []).append(np.array(v, copy=True))
            return v

        self.space.sample = sample

    def uninstall(self):
        del self.space.sample


# --------------------------------------------------------------------------------------------


def describe_lr(lr) -> object:
    return lr.describe() if isinstance(lr, LinearLR) else lr


def kwargs_repr(d: dict) -> str:
    parts = []
    for k, v in d.items():
        parts.append(f"{k}=LinearLR({v.start!r})" if isinstance(v, LinearLR) else f"{k}={v!r}")
    return ", ".join(parts)


def make_noise(spec, act_dim: int):
    if spec is None:
        return None, None, None
    if spec[0] == "normal":
        sigma = spec[1]
        obj = NormalActionNoise(mean=np.zeros(act_dim), sigma=sigma * np.ones(act_dim))
        desc = {"class": "NormalActionNoise", "mean": [0.0] * act_dim, "sigma": [sigma] * act_dim, "dtype": "float32"}
        code = f"NormalActionNoise(mean=np.zeros({act_dim}), sigma={sigma!r} * np.ones({act_dim}))"
        return obj, desc, code
    _, sigma, theta, dt = spec
    obj = OrnsteinUhlenbeckActionNoise(mean=np.zeros(act_dim), sigma=sigma * np.ones(act_dim), theta=theta, dt=dt)
    desc = {
        "class": "OrnsteinUhlenbeckActionNoise", "mean": [0.0] * act_dim, "sigma": [sigma] * act_dim,
        "theta": theta, "dt": dt, "initial_noise": None, "dtype": "float32",
    }
    code = f"OrnsteinUhlenbeckActionNoise(mean=np.zeros({act_dim}), sigma={sigma!r} * np.ones({act_dim}), theta={theta!r}, dt={dt!r})"
    return obj, desc, code


def adam_state(opt, named) -> dict:
    names = [n for n, _ in named]
    params = [p for _, p in named]
    st = [opt.state[p] for p in params]
    steps = {float(s["step"].item()) for s in st}
    assert len(steps) == 1
    return {
        "step": steps.pop(),
        "exp_avg": tensor_dict((n, s["exp_avg"]) for n, s in zip(names, st)),
        "exp_avg_sq": tensor_dict((n, s["exp_avg_sq"]) for n, s in zip(names, st)),
    }


def optimizer_header(opt) -> dict:
    g = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    g["betas"] = list(g["betas"])
    out = {"class": "torch.optim.Adam"}
    for k in ("betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay"):
        if k in g:
            out[k] = g[k]
    return out


def run_config(name: str, cfg: dict) -> dict:
    torch.set_num_threads(1)
    algo = cfg["algo"]
    n_envs, seed = cfg["n_envs"], cfg["seed"]
    ms = cfg["max_episode_steps"]
    vec_env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, env_kwargs={"max_episode_steps": ms})
    act_dim = vec_env.action_space.shape[0]
    noise_obj, noise_desc, noise_code = make_noise(cfg["noise"], act_dim)
    policy_kwargs = dict(net_arch=list(cfg["net_arch"]))
    policy_kwargs.update(cfg.get("sde", {}))
    kwargs = dict(cfg["kwargs"])
    model = ALGOS[algo]("MlpPolicy", vec_env, seed=seed, device="cpu", verbose=0, policy_kwargs=dict(policy_kwargs),
                        action_noise=noise_obj, **kwargs)
    is_sac = algo == "SAC"
    rec = Recorder(model, cfg)
    initial = rec.all_params()
    assert initial["critic"] == initial["critic_target"]
    if not is_sac:
        assert initial["actor"] == initial["actor_target"]
    rb = model.replay_buffer

    warm = WarmupCapture(rec, model.action_space)
    warm.install()
    rec.install()
    try:
        model.learn(total_timesteps=cfg["total_timesteps"], callback=StepRecorder(rec), log_interval=None)
    finally:
        rec.uninstall()
        warm.uninstall()

    header_notes = notes(algo) + ("\n" + SAC_SDE_NOTES if rec.is_sde else "")
    tc = model.train_freq
    hp_passed = {k: describe_lr(v) if k == "learning_rate" else (list(v) if isinstance(v, tuple) else v)
                 for k, v in kwargs.items()}
    hp_eff = {
        "learning_rate": describe_lr(model.learning_rate),
        "buffer_size": model.buffer_size,
        "replay_buffer_rows": int(rb.buffer_size),
        "replay_buffer_class": type(rb).__name__,
        "handle_timeout_termination": bool(rb.handle_timeout_termination),
        "optimize_memory_usage": bool(rb.optimize_memory_usage),
        "learning_starts": model.learning_starts,
        "batch_size": model.batch_size,
        "tau": model.tau,
        "gamma": model.gamma,
        "train_freq": {"frequency": tc.frequency, "unit": tc.unit.value},
        "gradient_steps": model.gradient_steps,
        "gradient_steps_meaning": (
            f"-1: as many as transitions collected in the rollout = num_collected_steps * n_envs = {tc.frequency * n_envs} per train() call"
            if model.gradient_steps < 0 else "per train() call"
        ),
        "n_steps": model.n_steps,
        "use_sde": bool(model.use_sde),
        **({"sde_sample_freq": int(model.sde_sample_freq), "use_sde_at_warmup": bool(model.use_sde_at_warmup)}
           if model.use_sde else {}),
        "action_noise": noise_desc,
    }
    if is_sac:
        hp_eff.update({
            "ent_coef": model.ent_coef if isinstance(model.ent_coef, str) else float(model.ent_coef),
            "ent_coef_learned": model.ent_coef_optimizer is not None,
            "ent_coef_init_value": (
                (float(model.ent_coef.split("_")[1]) if "_" in model.ent_coef else 1.0)
                if model.ent_coef_optimizer is not None else float(model.ent_coef)
            ),
            "ent_coef_init_value_meaning": "learned: init_value of 'auto' (1.0) / 'auto_<v>' (v), log_ent_coef starts at float32 log(ones(1) * init_value) (initial_params.log_ent_coef); fixed: the constant alpha (float32 ent_coef_tensor)",
            "target_entropy": float(model.target_entropy),
            "target_update_interval": model.target_update_interval,
        })
    else:
        hp_eff.update({
            "policy_delay": model.policy_delay,
            "target_policy_noise": model.target_policy_noise,
            "target_noise_clip": model.target_noise_clip,
            "n_critics": model.critic.n_critics,
        })
    pol = model.policy
    nets = rec.networks()
    policy_eff = {
        "net_arch": list(cfg["net_arch"]),
        "actor_net_arch": list(model.actor.net_arch),
        "critic_net_arch": list(cfg["net_arch"]),
        "activation_fn": "nn.ReLU",
        "features_extractor": "FlattenExtractor",
        "share_features_extractor": bool(pol.share_features_extractor),
        "n_critics": int(model.critic.n_critics),
        "optimizer_class": "torch.optim.Adam",
        "optimizer_kwargs": dict(pol.optimizer_kwargs),
        "squash_output": bool(pol.squash_output),
        "modules": {k: repr(v).replace("\n", " ") for k, v in nets.items()},
        "param_order": {k: [n for n, _ in v.named_parameters()] for k, v in nets.items()},
    }
    if is_sac:
        if model.use_sde:
            a = model.actor
            policy_eff.update({
                "use_sde": True, "log_std_init": float(a.log_std_init), "use_expln": bool(a.use_expln),
                "clip_mean": float(a.clip_mean), "full_std": bool(a.full_std),
                "learn_features": bool(a.action_dist.learn_features), "sde_epsilon": float(a.action_dist.epsilon),
                "squash_output": True,
            })
        else:
            policy_eff.update({"log_std_clamp": [-20, 2], "squashed_gaussian_epsilon": 1e-6, "use_sde": False})
    optimizers = {k: optimizer_header(o) for k, o in rec.optimizers.items()}
    optimizers["lr"] = describe_lr(kwargs["learning_rate"])
    optimizers["lr_initial"] = float(model.lr_schedule(1.0))

    steps = rec.steps
    grads = rec.gradient_steps
    n_trunc = sum(sum(s["truncated"]) for s in steps)
    n_done = sum(sum(s["dones"]) for s in steps)
    sources = [s["action_source"] for s in steps]
    coverage = {
        "env_steps": len(steps),
        "transitions": len(steps) * n_envs,
        "episodes_done": n_done,
        "truncated": n_trunc,
        "terminated": n_done - n_trunc,
        "warmup_random_steps": sources.count("warmup_random"),
        "policy_steps": sources.count("policy"),
        "replay_buffer_wrapped": any(s["stored"]["full_after"] for s in steps),
        "train_calls": len(rec.train_calls),
        "gradient_steps": len(grads),
        "target_updates": sum(1 for g in grads if g["target_update"]),
    }
    if not is_sac:
        coverage["actor_updates"] = sum(1 for g in grads if g["actor_update"])
        raw = np.concatenate([np.asarray(g["target_noise_raw"]).reshape(-1) for g in grads])
        coverage["target_noise_values_clipped"] = int(np.sum(np.abs(raw) > model.target_noise_clip))
        na = np.concatenate([np.asarray(g["actor_target_next"]).reshape(-1) + np.asarray(g["target_noise_clipped"]).reshape(-1) for g in grads])
        coverage["target_next_actions_clamped_to_bounds"] = int(np.sum(np.abs(na) > 1.0))
    if noise_desc is not None:
        na = [s for s in steps if s["action_noise"] is not None]
        coverage["steps_with_action_noise"] = len(na)
        coverage["buffer_actions_clipped_after_noise"] = int(sum(
            int(np.sum(np.abs(np.asarray(s["buffer_action"])) >= 1.0)) for s in na))
    header = {
        "format": FORMATS[algo],
        "config_name": name,
        "env_id": ENV_ID,
        "algo": algo,
        "policy": "MlpPolicy",
        "versions": {
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "made_with": "tools/golden/gen_offpolicy_continuous_golden.py (this repository)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "total_timesteps": cfg["total_timesteps"],
        "n_envs": n_envs,
        "seed": seed,
        "hyperparameters": hp_passed,
        "hyperparameters_effective": hp_eff,
        "constructor": f"{algo}('MlpPolicy', vec_env, seed={seed}, device='cpu', verbose=0, policy_kwargs={policy_kwargs!r}, "
        f"action_noise={noise_code}, {kwargs_repr(kwargs)})"
        + ("  # LinearLR(v)(progress_remaining) = v * progress_remaining" if isinstance(kwargs["learning_rate"], LinearLR) else ""),
        "env_construction": {
            "code": f"make_vec_env('{ENV_ID}', n_envs={n_envs}, seed={seed}, env_kwargs={{'max_episode_steps': {ms}}})",
            "effective_stack": f"DummyVecEnv([Monitor(gym.make('{ENV_ID}', render_mode='rgb_array', max_episode_steps={ms})) for i in range({n_envs})]); gym.make's TimeLimit({ms}) replaces the registered limit (200)",
            "max_episode_steps": ms,
            "first_reset_seeds": [seed + i for i in range(n_envs)],
            "later_resets": "unseeded (each sub-env's generator continues)",
        },
        "learn_loop": (
            f"model.learn(total_timesteps={cfg['total_timesteps']}, callback=StepRecorder(), log_interval=None): "
            "_setup_learn (num_timesteps = 0, env.reset(); with n_envs > 1 the action noise is wrapped in "
            "VectorizedActionNoise, one deep copy per env), then while num_timesteps < total_timesteps: "
            "collect_rollouts(train_freq) ; if num_timesteps > 0 and num_timesteps > learning_starts: "
            "train(gradient_steps, batch_size)"
        ),
        "recording": RECORDING + (RECORDING_SDE if rec.is_sde else ""),
        "observation_space": space_json(model.observation_space),
        "action_space": space_json(model.action_space),
        "policy_kwargs": dict(policy_kwargs),
        "policy_kwargs_effective": policy_eff,
        "optimizers": optimizers,
        "n_params": {k: int(sum(p.numel() for p in v.parameters())) for k, v in nets.items()},
        "layout": layout(algo),
        "notes": header_notes,
        "coverage": coverage,
    }
    final = {
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "params": rec.all_params(),
        "optimizer_state": {
            "actor": adam_state(model.actor.optimizer, list(model.actor.named_parameters())),
            "critic": adam_state(model.critic.optimizer, list(model.critic.named_parameters())),
        },
    }
    if is_sac and model.ent_coef_optimizer is not None:
        final["optimizer_state"]["ent_coef"] = adam_state(model.ent_coef_optimizer, [("log_ent_coef", model.log_ent_coef)])
    if rec.is_sde:
        coverage["sde_resets_collecting"] = len(rec.sde_resets)
        coverage["sde_resets_training"] = sum(1 for g in grads if "sde" in g)
        coverage["means_clipped_by_clip_mean"] = int(sum(
            np.sum(np.abs(np.asarray(g["pi"]["mean"])) >= model.actor.clip_mean) for g in grads))
        if model.actor.use_expln:
            coverage["log_std_entries_above_0_initially"] = int(np.sum(np.asarray(initial["actor"]["log_std"]["values"]) > 0))
    doc = {
        "header": header,
        "initial_params": initial,
        **({"sde_resets": rec.sde_resets} if rec.is_sde else {}),
        "steps": steps,
        "train_calls": rec.train_calls,
        "gradient_steps": grads,
        "final": final,
    }
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(HERE))
    import check_offpolicy_continuous_golden as chk  # noqa: E402

    meas, fails = chk.analyse(doc)
    if fails:
        raise AssertionError(f"{name}: inconsistent recording:\n" + "\n".join(fails))
    header["float_observations"] = chk.float_observations(meas)
    return doc


def layout(algo: str) -> dict:
    sac = algo == "SAC"
    nets = "actor, critic, critic_target" + ("" if sac else ", actor_target") + (", log_ent_coef (when learned)" if sac else "")
    d = {
        "params (initial_params, gradient_steps[].params_after, final.params)": f"network -> name -> {{shape, values}} for {nets}; values = row-major (C order) flattening of the float32 torch tensor; names = each module's named_parameters() (header.policy_kwargs_effective.param_order) = its optimizer's param order. In the SB3 policy state_dict the keys are '<network>.' + name. log_ent_coef is a list of one float (shape [1])",
        "steps[]": "one entry per VecEnv.step() call of collect_rollouts, in order. Per-env fields are lists of length n_envs; actions are [n_envs][act_dim]",
        "steps[].index / num_timesteps": "0-based call index / model.num_timesteps AFTER the step (+= n_envs per step)",
        "steps[].action_source": "'warmup_random' (num_timesteps before the step < learning_starts: action_space.sample() per env, the policy is not called) or 'policy' (model.predict(_last_obs, deterministic=False))",
        "steps[].obs": "[n_envs][obs_dim] model._last_obs, the observation the action was taken in",
        "steps[].policy": "null for warm-up; else the actor's forward under no_grad on obs (batch n_envs): actor_output [n_envs][act_dim] in [-1, 1]" + ("; mean, log_std (clamped) [n_envs][act_dim] and eps [n_envs][act_dim], the standard-normal draw of Normal.rsample: actor_output = tanh(mean + eps * exp(log_std))" if sac else " = tanh of the last Linear"),
        "steps[].unscaled_action": "[n_envs][act_dim] float32: policy steps: predict's output = unscale_action(actor_output) = low + 0.5 * (actor_output + 1) * (high - low); warm-up steps: the action_space.sample() values (the space's own numpy Generator, seeded by the algorithm's seed: not reproducible outside numpy, feed it)",
        "steps[].action_noise / action_noise_draws": "null without action noise; else the float32 noise added in _sample_action [n_envs][act_dim] (one call per env in env order when n_envs > 1: VectorizedActionNoise) and the raw float64 numpy.random.normal outputs of those calls, one list per call (NormalActionNoise: np.random.normal(mean, sigma), so the draw is mean + sigma * z; OU: np.random.normal(size=act_dim) standard normals)",
        "steps[].buffer_action": "[n_envs][act_dim] float32 stored in the replay buffer: scaled = scale_action(unscaled) = 2 * ((a - low) / (high - low)) - 1 (float32); with noise clip(scaled + noise, -1, 1)",
        "steps[].env_action": "[n_envs][act_dim] float32 sent to env.step = unscale_action(buffer_action)",
        "steps[].rewards": "[n_envs] float32 rewards returned by the VecEnv",
        "steps[].dones / truncated": "[n_envs] done = terminated or truncated; truncated = infos[i]['TimeLimit.truncated']. Pendulum never terminates: every done here is a truncation",
        "steps[].terminal_observation": "[n_envs] infos[i]['terminal_observation'] where done, else null",
        "steps[].new_obs": "[n_envs][obs_dim] obs returned by the VecEnv (the reset obs where done) = next step's obs",
        "steps[].stored": "the replay-buffer row written by this step: pos, obs, next_obs (= terminal_observation where done), action [n_envs][act_dim] (= buffer_action), reward, done (float32 0/1), timeout (float32 0/1), pos_after / full_after",
        "train_calls[]": "one entry per train() call: index, num_timesteps, progress_remaining, gradient_steps (as passed), batch_size, first_gradient_step, learning_rate (set on every optimizer by _update_learning_rate at the call), logged (SB3 logger values after train())",
        "gradient_steps[]": "one entry per gradient step in execution order: index, train_call, step_in_call, num_timesteps, " + ("" if sac else "n_updates (model._n_updates after its increment at the top of the step: the policy-delay counter), ") + "learning_rate, buffer_pos/buffer_full/upper_bound (indices drawn in [0, upper_bound))",
        "gradient_steps[].batch_inds / env_indices": "[B] np.random.randint(0, upper_bound, B) and np.random.randint(0, n_envs, B) (drawn even for n_envs = 1)",
        "gradient_steps[].batch": "ReplayBufferSamples: observations [B][obs_dim], actions [B][act_dim] (scaled to [-1, 1] as stored), next_observations [B][obs_dim], dones [B] (= done * (1 - timeout): 0 for truncations), rewards [B]",
        "gradient_steps[].target_next_actions": "[B][act_dim] the actions fed to critic_target (SAC: next_pi.actions; TD3: clamp(actor_target(s') + clipped noise, -1, 1))",
        "gradient_steps[].next_q_values_per_critic / next_q_values_min": "[n_critics][B] critic_target(next_observations, target_next_actions) per head, and [B] their min",
        "gradient_steps[].target_q_values": "[B] the TD targets (see header.notes)",
        "gradient_steps[].current_q_values / mse_per_critic": "[n_critics][B] critic(observations, batch actions) per head before the critic step, and each head's F.mse_loss against the targets",
        "gradient_steps[].critic_loss / actor_loss": "the loss values that were backpropagated (float32 .item())",
        "gradient_steps[].target_update": "whether polyak_update ran on the targets in this step",
        "gradient_steps[].optimizer_steps": "one entry per optimizer.step() in order: optimizer ('ent_coef', 'critic', 'actor'), lr, grad_norm (L2 norm over all of that optimizer's gradients, float32), grad_norms_per_param; grads (full gradients) on gradient step 0 only. No gradient clipping in SAC/TD3",
        "gradient_steps[].params_after": "every network's parameters at the end of the gradient step (after the optimizer steps and the Polyak update)",
        "final": "num_timesteps, n_updates, episode_num after learn(); params; optimizer_state: Adam {step, exp_avg, exp_avg_sq} per optimizer (actor, critic" + (", ent_coef when learned" if sac else "") + ")",
    }
    if sac:
        d.update({
            "gradient_steps[].pi / next_pi": "the two actor.action_log_prob calls of the step: on observations (pi: the actor/alpha losses) and on next_observations (next_pi, under no_grad: the targets). Each: mean, log_std (clamped) [B][act_dim], eps [B][act_dim] (the standard normal drawn by Normal.rsample: torch.empty(shape).normal_()), actions = tanh(mean + eps * std) [B][act_dim], log_prob [B]",
            "gradient_steps[].ent_coef / ent_coef_loss / ent_coef_after": "alpha used in this step (exp(log_ent_coef) before its update, or the fixed value), alpha's loss (learned only) and alpha after the step",
            "gradient_steps[].q_values_pi": "[n_critics][B] critic(observations, pi.actions) after the critic step (the actor loss input)",
        })
    else:
        d.update({
            "gradient_steps[].target_noise_raw / target_noise_clipped": "[B][act_dim] replay_data.actions.clone().data.normal_(0, target_policy_noise) (torch RNG) and its clamp(-target_noise_clip, target_noise_clip)",
            "gradient_steps[].actor_target_next": "[B][act_dim] actor_target(next_observations)",
            "gradient_steps[].actor_update / actor_actions_pi": "whether n_updates % policy_delay == 0 (actor step + Polyak of both targets), and actor(observations) [B][act_dim] of the actor loss",
        })
    return d


COMMON_NOTES = """Everything below is what SB3 2.9.2 + torch 2.15 (CPU, 1 thread) + numpy 2.4.6 computed; the semantics were read from the installed sources (sac/sac.py, sac/policies.py, td3/td3.py, td3/policies.py, ddpg/ddpg.py, common/off_policy_algorithm.py, common/buffers.py, common/policies.py, common/distributions.py, common/noise.py, common/utils.py, torch/distributions/normal.py) and every gradient step was replayed independently by tools/golden/check_offpolicy_continuous_golden.py (header.float_observations).
ENVS: make_vec_env('Pendulum-v1', n_envs, seed=S, env_kwargs={'max_episode_steps': N}) -> DummyVecEnv of Monitor(gym.make(..., max_episode_steps=N)); gym.make's TimeLimit(N) replaces the registered 200. The algorithm's seed=S calls set_random_seed(S) (random, np.random, torch.manual_seed), action_space.seed(S) and env.seed(S); learn() resets sub-env i with seed S+i. DummyVecEnv autoresets in the same step (infos[i]['terminal_observation'] holds the final obs). Pendulum never terminates, so every done is a truncation (infos[i]['TimeLimit.truncated'] True). Rewards come back as float32. Box(-2, 2, (1,), float32) actions.
ACTION SCALING (common/policies.py, numpy float32 arithmetic with python-float constants, NEP 50): scale_action(a) = 2.0 * ((a - low) / (high - low)) - 1.0; unscale_action(s) = low + (0.5 * (s + 1.0) * (high - low)). Both are float32 ops evaluated in that order (scale_action(unscale_action(x)) is not always bit-identical to x).
COLLECTION (OffPolicyAlgorithm.collect_rollouts with _sample_action; policy in eval mode): if num_timesteps (before the step) < learning_starts: unscaled = np.array([action_space.sample() for each env]) (warm-up; the policy is not called and no torch RNG is used); else unscaled = model.predict(_last_obs, deterministic=False) = unscale_action(actor output) (policy.predict with squash_output=True unscales instead of clipping). scaled = scale_action(unscaled); with action noise: scaled = np.clip(scaled + noise(), -1, 1) (noise() float32 [act_dim] for 1 env, stacked [n_envs, act_dim] for n_envs > 1: VectorizedActionNoise calls each env's deep copy in env order); buffer_action = scaled (stored); action = unscale_action(scaled) (sent to env.step, which clips to the bounds). Then num_timesteps += n_envs; callbacks; _store_transition (next_obs = terminal_observation where done; replay_buffer.add(_last_obs, next_obs, buffer_action, reward, done, infos)); _update_current_progress_remaining; after the step, for every env idx with done: action_noise.reset(indices=[idx]) (n_envs > 1) or action_noise.reset() (1 env). NormalActionNoise: np.random.normal(mean, sigma).astype(float32), reset does nothing. OrnsteinUhlenbeckActionNoise: noise = noise_prev + theta * (mean - noise_prev) * dt + sigma * sqrt(dt) * np.random.normal(size=act_dim) in float64; noise_prev = noise (float64 state); returns noise.astype(float32); reset: noise_prev = initial_noise or zeros.
REPLAY BUFFER (ReplayBuffer, handle_timeout_termination=True): arrays [rows, n_envs, ...], rows = max(buffer_size // n_envs, 1); add writes row pos for all envs (actions float32 [n_envs, act_dim] = buffer_action); pos wraps at rows (full = True). sample(B): batch_inds = np.random.randint(0, rows if full else pos, size=B); env_indices = np.random.randint(0, n_envs, size=B); dones in the batch = dones * (1 - timeouts) (so 0 for every Pendulum transition here: truncated steps bootstrap from the terminal observation); rewards [B, 1]. action_space.sample() (warm-up) uses the space's own numpy Generator; np.random.normal (action noise) and np.random.randint (sampling) share numpy's global legacy RNG.
TRAIN SCHEDULE: learn() calls train(gradient_steps, batch_size) after collect_rollouts when num_timesteps > 0 and num_timesteps > learning_starts (strict); gradient_steps = -1 means the rollout's num_collected_steps * n_envs. _update_learning_rate sets every optimizer's lr = lr_schedule(progress_remaining at the call) (progress_remaining = 1 - num_timesteps / total_timesteps after the last env step).
NETWORKS (FlattenExtractor = identity on the Box obs; Linear: y = x W^T + b, W [out, in]; PyTorch default init from torch.manual_seed(S): kaiming_uniform_(a=sqrt(5)) weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, in construction order; targets are load_state_dict copies). share_features_extractor=False: the critic has its own (parameter-free) FlattenExtractor. ContinuousCritic: n_critics Q-networks qf{i} = create_mlp(obs_dim + act_dim, 1, net_arch, ReLU) = Linear, ReLU, Linear, ReLU, Linear (names qf{i}.0 / qf{i}.2 / qf{i}.4), input cat([obs, action], dim=1) (obs first); forward returns one [B, 1] tensor per head; q1_forward = head 0.
ADAM (torch.optim.Adam with SB3's default optimizer_kwargs {} for SAC/TD3 policies: betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad False, single-tensor CPU implementation): state created at the first step: step = 0 (float32 tensor), exp_avg = exp_avg_sq = 0. Per step: step += 1; exp_avg = lerp(exp_avg, g, 1 - beta1); exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g; bias_correction1 = 1 - beta1^step; bias_correction2 = 1 - beta2^step; step_size = lr / bias_correction1; denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps; param -= step_size * exp_avg / denom. Each optimizer's zero_grad() (set_to_none) runs right before its own loss's backward, so the gradients an optimizer steps with come from its own loss only (the actor loss also leaves gradients on the critic's parameters; the critic's zero_grad clears them before they could be used).
POLYAK (common/utils.polyak_update, under no_grad, per parameter pair in order): target.mul_(1 - tau); torch.add(target, param, alpha=tau, out=target). On this build the add-with-alpha is one fused multiply-add: t1 = f32(target * f32(1 - tau)); target = one rounding of t1 + f32(tau) * param (see the DQN files' notes; header.float_observations.polyak_*). A second polyak_update with tau = 1.0 copies batch-norm running stats: none here.
MSE: F.mse_loss(current_q [B,1], target_q [B,1]) = mean over B of (current - target)^2."""

SAC_NOTES = """SAC ACTOR (sac/policies.Actor, use_sde=False): latent_pi = create_mlp(obs_dim, -1, net_arch, ReLU) = Linear, ReLU, Linear, ReLU (names latent_pi.0, latent_pi.2); mu = Linear(last, act_dim); log_std = Linear(last, act_dim); get_action_dist_params: mean = mu(latent), log_std = clamp(log_std(latent), -20, 2) (LOG_STD_MIN, LOG_STD_MAX). SquashedDiagGaussianDistribution(epsilon=1e-6): std = ones_like(mean) * exp(log_std); Normal(mean, std).rsample(): eps = torch.empty(shape).normal_() (torch's global CPU generator; shape [B, act_dim]; feed the recorded eps), u = mean + eps * std; action = tanh(u). log_prob (log_prob_from_params -> log_prob(action, gaussian_actions=u), no atanh inverse): Normal.log_prob(u) = -((u - mean) ** 2) / (2 * var) - log(std) - log(sqrt(2 * pi)) with var = std ** 2 (torch evaluates u - mean, NOT eps * std: in float32 the two can differ by rounding), summed over the action dims (sum_independent_dims, dim=1); then log_prob -= sum(log(1 - action ** 2 + 1e-6), dim=1). Collection: predict -> actor(obs, deterministic=False) = the same sample without log_prob, one eps draw of shape [n_envs, act_dim] per VecEnv step.
SAC ENTROPY COEFFICIENT: ent_coef 'auto' / 'auto_<v>': init_value 1.0 / v; log_ent_coef = log(ones(1) * init_value) (float32 [1], requires_grad) with its own torch.optim.Adam([log_ent_coef], lr=lr_schedule(1)) (default betas/eps 1e-8; its lr follows the schedule like the others); target_entropy 'auto' = float(-prod(action_shape).astype(float32)) = -1.0 here. A float ent_coef is a fixed tensor ent_coef_tensor = tensor(float(ent_coef)) (float32) and no third optimizer.
SAC TRAIN (sac.py train(), per gradient step, in this order): (1) replay_data = replay_buffer.sample(B); discounts = gamma (python float; no n-step). (2) actions_pi, log_prob = actor.action_log_prob(observations) (draws eps for pi); log_prob = log_prob.reshape(-1, 1). (3) learned alpha: ent_coef = exp(log_ent_coef.detach()) (value BEFORE alpha's update; fixed: ent_coef_tensor); ent_coef_loss = -(log_ent_coef * (log_prob + target_entropy).detach()).mean(); ent_coef_optimizer.zero_grad(); ent_coef_loss.backward(); ent_coef_optimizer.step() (gradient d/dlog_ent_coef = -mean(log_prob + target_entropy)). (4) with no_grad: next_actions, next_log_prob = actor.action_log_prob(next_observations) (draws eps for next_pi, after pi's eps); next_q = cat(critic_target(next_observations, next_actions), dim=1); next_q = min over heads (keepdim); next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1); target_q = rewards + (1 - dones) * discounts * next_q (float32 torch, left to right: ((1 - dones) * gamma) * next_q, then rewards + that). (5) current_q = critic(observations, actions) (per head); critic_loss = 0.5 * sum(F.mse_loss(q_i, target_q) for heads) (python sum starting at int 0: ((0 + mse_0) + mse_1), then 0.5 *); critic.optimizer.zero_grad(); backward; critic.optimizer.step() (the critic's parameters only). (6) q_values_pi = cat(critic(observations, actions_pi), dim=1) with the UPDATED critic; min_qf_pi = min over heads (keepdim); actor_loss = (ent_coef * log_prob - min_qf_pi).mean(); actor.optimizer.zero_grad(); backward (the gradient also flows into the critic's parameters but only the actor's optimizer steps; the critic's grads are cleared by its zero_grad next step); actor.optimizer.step() (log_prob and actions_pi were computed with the actor's parameters before this step: no recomputation). (7) if gradient_step % target_update_interval == 0 (gradient_step = the index within THIS train() call, 0-based): polyak_update(critic.parameters(), critic_target.parameters(), tau). After the loop: _n_updates += gradient_steps; logged train/ent_coef = mean of the per-step alphas, train/actor_loss, train/critic_loss, train/ent_coef_loss (learned only) = np.mean of the step values.
SAC ORDER OF RANDOM DRAWS per gradient step: numpy randint x2 (indices), torch normal [B, act_dim] for pi, torch normal [B, act_dim] for next_pi."""

SAC_SDE_NOTES = """SAC WITH gSDE (use_sde=True; sac/policies.Actor + common/distributions.StateDependentNoiseDistribution(action_dim, full_std=True, use_expln, learn_features=True, squash_output=True), epsilon 1e-6): mu = Linear(last, act_dim), wrapped as nn.Sequential(mu, Hardtanh(-clip_mean, clip_mean)) when clip_mean > 0 (parameter names mu.0.weight / mu.0.bias; Hardtanh's gradient passes only strictly inside the bounds); log_std = nn.Parameter(ones(last, act_dim) * log_std_init) (name log_std, shape [latent, act_dim]); no log_std clamp. get_action_dist_params: mean = mu(latent_pi(obs)), log_std (the parameter), latent_sde = latent_pi(obs) (NOT detached: learn_features=True, gradients flow into latent_pi through the noise and the variance). get_std(log_std) = exp(log_std), or with use_expln: exp(log_std) * (log_std <= 0) + (log1p(log_std * (log_std > 0) + 1e-6) + 1) * (log_std > 0). reset_noise(n) = sample_weights: std = get_std(log_std); weights_dist = Normal(zeros_like(std), std); exploration_mat = weights_dist.rsample() (= 0 + eps1 * std with eps1 = _standard_normal([latent, act]); differentiable in log_std); exploration_matrices = weights_dist.rsample((n,)) (eps2 [n, latent, act]); recorded per reset: eps_single (eps1), eps_per_env (eps2) and both matrices. proba_distribution: variance = mm(latent_sde ** 2, std ** 2); distribution = Normal(mean, sqrt(variance + 1e-6)). Sample: noise = mm(latent_sde, exploration_mat) when the batch has 1 row or not n rows, else bmm(latent_sde.unsqueeze(1), exploration_matrices).squeeze(1); action = tanh(mean + noise). log_prob(action) (no gaussian_actions are passed): u = atanh(clamp(action, -1 + eps32, 1 - eps32)) with eps32 = float32 machine epsilon and atanh(x) = 0.5 * (log1p(x) - log1p(-x)); Normal(mean, scale).log_prob(u) summed over dims, minus sum(log(1 - tanh(u) ** 2 + 1e-6), dim=1). Deterministic action: tanh(mean).
WHERE THE MATRICES ARE DRAWN: at construction (proba_distribution_net; not recorded, never used); in collect_rollouts: actor.reset_noise(n_envs) once at its start, then before each step with num_collected_steps % sde_sample_freq == 0 when sde_sample_freq > 0 (so twice before the first step of a rollout) (top-level sde_resets[]: before_step = index of the next steps[] entry, num_timesteps, batch_size = n_envs); in SAC.train before every gradient step, after replay_buffer.sample: actor.reset_noise() (batch_size 1; gradient_steps[].sde), whose exploration_mat is used by BOTH action_log_prob calls of the step (batch B != 1 rows; with B = 1 it would be too), so the pi sample is differentiable in log_std through exploration_mat = eps_single * std. With use_sde_at_warmup the policy acts during warm-up. Collection with one env uses exploration_mat (1 row); with n_envs > 1 the per-env exploration_matrices. The matrices drawn in train() are replaced at the next rollout's start before any collection step uses them. Logged: train/std = mean of get_std(log_std) at dump_logs (not recorded here).
SAC gSDE TRAIN: as SAC TRAIN above with the torch draws replaced: per gradient step numpy randint x2, then torch normal [latent, act] and [1, latent, act] (reset_noise); no per-sample draws. steps[].policy holds mean and actor_output only (no eps, no per-state log_std); gradient_steps[].pi / next_pi hold mean, actions, log_prob."""

TD3_NOTES = """TD3 ACTOR (td3/policies.Actor): mu = create_mlp(obs_dim, act_dim, net_arch, ReLU, squash_output=True) = Linear, ReLU, Linear, ReLU, Linear, Tanh (names mu.0, mu.2, mu.4); deterministic output in [-1, 1]. actor_target = a copy (load_state_dict). Collection: predict -> actor(obs) -> unscale_action; exploration comes only from the action noise.
TD3 TRAIN (td3.py train(), per gradient step): (0) _n_updates += 1 (BEFORE the step: the counter runs across train() calls, gradient_steps[].n_updates). (1) replay_data = replay_buffer.sample(B). (2) with no_grad: noise = replay_data.actions.clone().data.normal_(0, target_policy_noise) (torch's global CPU generator, shape [B, act_dim]; not reproducible outside torch: feed gradient_steps[].target_noise_raw); noise = noise.clamp(-target_noise_clip, target_noise_clip); next_actions = (actor_target(next_observations) + noise).clamp(-1, 1); next_q = min over heads of cat(critic_target(next_observations, next_actions), dim=1) (keepdim); target_q = rewards + (1 - dones) * discounts * next_q (float32, ((1 - dones) * gamma) * next_q, then rewards + that). (3) current_q = critic(observations, actions); critic_loss = sum(F.mse_loss(q_i, target_q) for heads) (python sum from int 0, NO 0.5 factor unlike SAC); critic.optimizer.zero_grad(); backward; critic.optimizer.step(). (4) if _n_updates % policy_delay == 0: actor_loss = -critic.q1_forward(observations, actor(observations)).mean() (head 0 only, the UPDATED critic; q1_forward runs the features extractor under no_grad, the gradient flows through the action input); actor.optimizer.zero_grad(); backward; actor.optimizer.step(); then polyak_update(critic.parameters(), critic_target.parameters(), tau) and polyak_update(actor.parameters(), actor_target.parameters(), tau) (critic first). Targets move only on actor-update steps. After the loop: logged train/n_updates = _n_updates; train/actor_loss = mean of this call's actor losses (only logged when the call had one; the logger keeps the previous value otherwise since dump_logs never runs here), train/critic_loss = mean of this call's critic losses.
TD3 ORDER OF RANDOM DRAWS per gradient step: numpy randint x2 (indices), torch normal_ [B, act_dim] for the target policy noise."""

DDPG_NOTES = """DDPG (ddpg/ddpg.py) is TD3 with policy_delay=1, n_critics=1 (policy_kwargs default), target_policy_noise=0.1 and target_noise_clip=0.0: the target noise IS drawn from torch's generator every step (gradient_steps[].target_noise_raw) but clamp(-0.0, 0.0) makes it +-0.0, so next_actions = clamp(actor_target(s'), -1, 1) exactly (adding a signed zero changes no value). Every step updates the actor and both targets. One critic head: critic_loss = mse of qf0, target = r + (1 - done) * gamma * Q'_0(s', mu'(s'))."""


def notes(algo: str) -> str:
    if algo == "SAC":
        return COMMON_NOTES + "\n" + SAC_NOTES
    if algo == "TD3":
        return COMMON_NOTES + "\n" + TD3_NOTES
    return COMMON_NOTES + "\n" + TD3_NOTES + "\n" + DDPG_NOTES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--only", action="append", choices=sorted(CONFIGS), help="run only these configs")
    ap.add_argument("--check", action="store_true", help="run check_offpolicy_continuous_golden.py on the written files")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.only or list(CONFIGS):
        doc = run_config(name, copy.deepcopy(CONFIGS[name]))
        path = args.out / f"{name}.json"
        text = dumps(doc) + "\n"
        path.write_text(text)
        written.append(path)
        print(f"{path} {len(text)} bytes: {json.dumps(doc['header']['coverage'])}")
    if args.check:
        sys.path.insert(0, str(HERE))
        import check_offpolicy_continuous_golden

        ok = check_offpolicy_continuous_golden.main([str(p) for p in written])
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

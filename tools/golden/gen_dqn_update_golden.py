#!/usr/bin/env python3
"""Record update-by-update reference data of Stable-Baselines3 2.9.2 DQN (CartPole-v1).

Writes ``tests/golden/sb3/dqn_update_<config>.json`` (``header.format`` =
``"sb3_dqn_update_golden/1"``), one file per entry of ``CONFIGS`` below, for the parity
tests of the Rust DQN. SB3's own ``DQN.learn()`` is driven unchanged; everything is
recorded through pass-through wrappers (see ``RECORDING`` and ``header.recording``).
Read ``tests/golden/README.md`` and each file's ``header.layout`` / ``header.notes``.

Re-running
----------
The reference stack is exactly: Python 3.11.7, stable-baselines3 2.9.2, gymnasium 1.4.0,
torch 2.15.0 (CPU), numpy 2.4.6 (on Linux x86_64)::

    python3.11 -m venv /opt/sb3venv
    /opt/sb3venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0 numpy==2.4.6

Then, from the repository root::

    /opt/sb3venv/bin/python tools/golden/gen_dqn_update_golden.py            # all configs
    /opt/sb3venv/bin/python tools/golden/gen_dqn_update_golden.py --check    # + consistency check
    /opt/sb3venv/bin/python tools/golden/gen_dqn_update_golden.py --only cartpole_nstep3 --out /tmp/x

The script runs on CPU with ``torch.set_num_threads(1)`` (set before anything else runs)
and is deterministic: re-running it rewrites the files byte for byte (the header holds no
timestamps or timings). ``--out DIR`` overrides the output folder (default: the
repository's ``tests/golden/sb3/``, found relative to this file). ``--check`` runs
``check_dqn_golden.py`` on the written files (it re-derives the TD targets, the Huber
loss, the replay-buffer samples, the epsilon schedule and the target updates from the
recorded data in plain numpy). All configs together take about five seconds on one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
from fractions import Fraction
from pathlib import Path

import torch

torch.set_num_threads(1)

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import stable_baselines3 as sb3  # noqa: E402
import stable_baselines3.dqn.dqn as dqn_module  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "sb3"
FORMAT = "sb3_dqn_update_golden/1"
ENV_ID = "CartPole-v1"


class LinearLR:
    """learning_rate = start * progress_remaining (rl-zoo's lin_<start>)."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        return self.start * progress_remaining

    def describe(self) -> str:
        return f"linear: {self.start!r} * progress_remaining"


# Every config: CartPole-v1 through make_vec_env. `max_episode_steps` None = the registered
# TimeLimit (500). `dqn` = the keyword arguments passed to DQN(...) besides policy/env/seed/device.
CONFIGS: dict[str, dict] = {
    # Short TimeLimit, 2 envs, ring buffer that wraps, hard target copies (tau=1), default clip 10.
    "cartpole_timelimit": dict(
        n_envs=2,
        seed=11,
        max_episode_steps=12,
        total_timesteps=200,
        net_arch=[16, 16],
        dqn=dict(
            learning_rate=1e-3,
            buffer_size=64,
            learning_starts=24,
            batch_size=16,
            tau=1.0,
            gamma=0.99,
            train_freq=2,
            gradient_steps=1,
            target_update_interval=20,
            exploration_fraction=0.5,
            exploration_initial_eps=1.0,
            exploration_final_eps=0.05,
            max_grad_norm=10,
        ),
    ),
    # gradient_steps=-1 (= train_freq * n_envs per train()), train_freq 3, Polyak tau=0.3,
    # target updates every 9 // 2 = 4 calls, linear lr, max_grad_norm 1.2 (about half the steps clip).
    "cartpole_multistep_polyak": dict(
        n_envs=2,
        seed=23,
        max_episode_steps=None,
        total_timesteps=120,
        net_arch=[32],
        dqn=dict(
            learning_rate=LinearLR(0.003),
            buffer_size=1000,
            learning_starts=30,
            batch_size=8,
            tau=0.3,
            gamma=0.99,
            train_freq=3,
            gradient_steps=-1,
            target_update_interval=9,
            exploration_fraction=0.5,
            exploration_initial_eps=1.0,
            exploration_final_eps=0.05,
            max_grad_norm=1.2,
        ),
    ),
    # n-step returns (NStepReplayBuffer, n_steps=3) with truncations, 2 envs, wrapping buffer.
    "cartpole_nstep3": dict(
        n_envs=2,
        seed=37,
        max_episode_steps=15,
        total_timesteps=200,
        net_arch=[16, 16],
        dqn=dict(
            learning_rate=1e-3,
            buffer_size=48,
            learning_starts=20,
            batch_size=16,
            tau=1.0,
            gamma=0.95,
            train_freq=4,
            gradient_steps=2,
            target_update_interval=16,
            exploration_fraction=0.6,
            exploration_initial_eps=1.0,
            exploration_final_eps=0.1,
            max_grad_norm=10,
            n_steps=3,
        ),
    ),
    # One env, train_freq in episodes, gradient_steps=-1 (= episode length), learning_starts=0
    # (the very first action is greedy: exploration_rate is 0.0 until the first _on_step),
    # Polyak tau=0.9 updated every 10 steps.
    "cartpole_episode_freq": dict(
        n_envs=1,
        seed=5,
        max_episode_steps=8,
        total_timesteps=60,
        net_arch=[8, 8],
        dqn=dict(
            learning_rate=5e-4,
            buffer_size=100,
            learning_starts=0,
            batch_size=4,
            tau=0.9,
            gamma=0.9,
            train_freq=(1, "episode"),
            gradient_steps=-1,
            target_update_interval=10,
            exploration_fraction=0.8,
            exploration_initial_eps=0.5,
            exploration_final_eps=0.1,
            max_grad_norm=10,
        ),
    ),
}

RECORDING = (
    "model.learn(total_timesteps, callback=StepRecorder(), log_interval=None) runs SB3's own "
    "OffPolicyAlgorithm.learn; nothing is re-implemented. Pass-through recorders, removed after learn(): "
    "a BaseCallback._on_step (runs right after env.step and num_timesteps += n_envs, before _store_transition "
    "and DQN._on_step) copies model._last_obs, actions, rewards, dones, infos and model.exploration_rate; "
    "instance wrappers around model.predict (DQN epsilon-greedy) and model.policy.predict (greedy path) tell "
    "warm-up / epsilon-random / greedy actions apart, and numpy.random.rand is wrapped to record the uniform "
    "draw DQN.predict compares with epsilon; forward hooks on q_net / q_net_target capture their outputs; "
    "wrappers around replay_buffer.add (position and the row as stored), replay_buffer.sample (numpy.random.randint "
    "is wrapped while it runs to capture batch_inds and env_indices, and the returned ReplayBufferSamples are "
    "copied), torch.nn.functional.smooth_l1_loss (gathered current Q, target Q, loss), "
    "torch.nn.utils.clip_grad_norm_ (pre-clip gradients and the returned total norm), an optimizer step "
    "post-hook (parameters after optimizer.step), stable_baselines3.dqn.dqn.polyak_update (target parameters "
    "after each target update), model._on_step (n_calls, progress and epsilon after the step) and model.train "
    "(logger values and Adam state after each train() call). log_interval=None only turns off dump_logs "
    "(which would clear the logger between a step and train())."
)


# --------------------------------------------------------------------------------------------
# JSON helpers


def f64list(a) -> list:
    """float32/float64/int/bool arrays -> nested python lists (float32 widened exactly)."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return a.tolist()
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64).tolist()
    return a.astype(np.float64).tolist()


def tensor_dict(named) -> dict:
    return {
        name: {"shape": list(t.shape), "values": f64list(t.detach().cpu().numpy().reshape(-1))}
        for name, t in named
    }


def space_json(space) -> dict:
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start), "dtype": str(space.dtype)}

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
    """Same layout as the shared golden files: objects indented by one space per level,
    lists without objects on one line without spaces."""
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


class Recorder:
    def __init__(self, model: DQN, cfg: dict):
        self.model = model
        self.cfg = cfg
        self.names = [n for n, _ in model.q_net.named_parameters()]
        self.qnet_param_ids = {id(p): n for n, p in model.q_net.named_parameters()}
        self.steps: list[dict] = []
        self.gradient_steps: list[dict] = []
        self.train_calls: list[dict] = []
        self.target_updates: list[dict] = []
        # per-action state
        self.pending = self._fresh_pending()
        self.in_dqn_predict = False
        self.in_greedy = False
        self.in_sample = False
        self.randint_calls: list[np.ndarray] = []
        self.cur_step: dict | None = None
        self.cur_grad: dict | None = None
        self.cur_train: dict | None = None
        self._undo: list = []

    @staticmethod
    def _fresh_pending() -> dict:
        return {"dqn_predict": False, "greedy": False, "draw": None, "greedy_q": None}

    # -- installation ------------------------------------------------------------------------
    def install(self) -> None:
        m, rec = self.model, self

        def patch(obj, name, new):
            had = name in vars(obj) if not isinstance(obj, type(np)) else True
            old = getattr(obj, name)
            setattr(obj, name, new)
            self._undo.append((obj, name, old, had))
            return old

        # numpy.random.rand: the epsilon draw of DQN.predict
        orig_rand = np.random.rand

        def rand(*args):
            v = orig_rand(*args)
            if rec.in_dqn_predict and not args:
                rec.pending["draw"] = float(v)
            return v

        patch(np.random, "rand", rand)

        # numpy.random.randint: batch_inds (sample) and env_indices (_get_samples)
        orig_randint = np.random.randint

        def randint(*args, **kwargs):
            v = orig_randint(*args, **kwargs)
            if rec.in_sample:
                rec.randint_calls.append(np.array(v, copy=True))
            return v

        patch(np.random, "randint", randint)

        orig_predict = m.predict

        def predict(observation, state=None, episode_start=None, deterministic=False):
            rec.pending["dqn_predict"] = True
            rec.in_dqn_predict = True
            try:
                return orig_predict(observation, state, episode_start, deterministic)
            finally:
                rec.in_dqn_predict = False

        patch(m, "predict", predict)

        orig_policy_predict = m.policy.predict

        def policy_predict(*args, **kwargs):
            rec.pending["greedy"] = True
            rec.in_greedy = True
            try:
                return orig_policy_predict(*args, **kwargs)
            finally:
                rec.in_greedy = False

        patch(m.policy, "predict", policy_predict)

        def qnet_hook(module, inputs, output):
            if rec.in_greedy:
                rec.pending["greedy_q"] = output.detach().clone()
            elif rec.cur_grad is not None:
                rec.cur_grad["_current_q_all"] = output.detach().clone()

        def qtarget_hook(module, inputs, output):
            if rec.cur_grad is not None:
                rec.cur_grad["_next_q_all"] = output.detach().clone()

        h1 = m.q_net.register_forward_hook(qnet_hook)
        h2 = m.q_net_target.register_forward_hook(qtarget_hook)
        self._undo.append(("hook", h1))
        self._undo.append(("hook", h2))

        rb = m.replay_buffer
        orig_add = rb.add

        def add(obs, next_obs, action, reward, done, infos):
            pos = rb.pos
            orig_add(obs, next_obs, action, reward, done, infos)
            rec.cur_step["stored"] = {
                "pos": int(pos),
                "obs": f64list(rb.observations[pos]),
                "next_obs": f64list(rb.next_observations[pos]),
                "action": f64list(rb.actions[pos][:, 0]),
                "reward": f64list(rb.rewards[pos]),
                "done": f64list(rb.dones[pos]),
                "timeout": f64list(rb.timeouts[pos]),
                "pos_after": int(rb.pos),
                "full_after": bool(rb.full),
            }

        patch(rb, "add", add)

        orig_sample = rb.sample

        def sample(batch_size, env=None):
            g = {
                "index": len(rec.gradient_steps),
                "train_call": rec.cur_train["index"],
                "step_in_call": rec.cur_train["_k"],
                "num_timesteps": int(m.num_timesteps),
                "buffer_pos": int(rb.pos),
                "buffer_full": bool(rb.full),
                "upper_bound": int(rb.buffer_size if rb.full else rb.pos),
            }
            rec.cur_train["_k"] += 1
            rec.cur_grad = g
            rec.randint_calls = []
            rec.in_sample = True
            try:
                data = orig_sample(batch_size, env=env)
            finally:
                rec.in_sample = False
            assert len(rec.randint_calls) == 2, rec.randint_calls
            g["batch_inds"] = f64list(rec.randint_calls[0])
            g["env_indices"] = f64list(rec.randint_calls[1])
            g["batch"] = {
                "observations": f64list(data.observations.numpy()),
                "actions": f64list(data.actions.numpy()[:, 0]),
                "next_observations": f64list(data.next_observations.numpy()),
                "dones": f64list(data.dones.numpy()[:, 0]),
                "rewards": f64list(data.rewards.numpy()[:, 0]),
                "discounts": None if data.discounts is None else f64list(data.discounts.numpy()[:, 0]),
            }
            rec.gradient_steps.append(g)
            return data

        patch(rb, "sample", sample)

        orig_huber = F.smooth_l1_loss

        def smooth_l1_loss(input, target, *args, **kwargs):
            out = orig_huber(input, target, *args, **kwargs)
            g = rec.cur_grad
            if g is not None:
                assert not args and not kwargs
                g["current_q_values"] = f64list(input.detach().numpy()[:, 0])
                g["target_q_values"] = f64list(target.detach().numpy()[:, 0])
                g["loss"] = float(out.item())
            return out

        patch(F, "smooth_l1_loss", smooth_l1_loss)

        orig_clip = torch.nn.utils.clip_grad_norm_

        def clip_grad_norm_(parameters, max_norm, *args, **kwargs):
            params = list(parameters)
            g = rec.cur_grad
            grads = {}
            for p in params:
                if p.grad is not None:
                    grads[rec.qnet_param_ids[id(p)]] = p.grad.detach().clone()
            total = orig_clip(params, max_norm, *args, **kwargs)
            if g is not None:
                g["_grads"] = grads
                g["grad_norm_before_clip"] = float(total.item())
                g["max_grad_norm"] = float(max_norm)
            return total

        patch(torch.nn.utils, "clip_grad_norm_", clip_grad_norm_)

        def post_step(optimizer, args, kwargs):
            g = rec.cur_grad
            g["learning_rate"] = float(optimizer.param_groups[0]["lr"])
            g["params_after"] = tensor_dict(m.q_net.named_parameters())
            rec.cur_grad = None

        h3 = m.policy.optimizer.register_step_post_hook(post_step)
        self._undo.append(("hook", h3))

        orig_polyak = dqn_module.polyak_update

        def polyak_update(params, target_params, tau):
            params, target_params = list(params), list(target_params)
            orig_polyak(params, target_params, tau)
            if len(params) == 0:  # the (empty) batch-norm running-stats copy
                return
            entry = {
                "index": len(rec.target_updates),
                "n_calls": int(m._n_calls),
                "num_timesteps": int(m.num_timesteps),
                "after_gradient_steps": len(rec.gradient_steps),
                "tau": float(tau),
                "target_params": tensor_dict(m.q_net_target.named_parameters()),
            }
            rec.target_updates.append(entry)
            rec.cur_step["target_update_index"] = entry["index"]

        patch(dqn_module, "polyak_update", polyak_update)

        orig_on_step = m._on_step

        def on_step():
            orig_on_step()
            s = rec.cur_step
            s["n_calls"] = int(m._n_calls)
            s["progress_remaining"] = float(m._current_progress_remaining)
            s["exploration_rate_after"] = float(m.exploration_rate)

        patch(m, "_on_step", on_step)

        orig_train = m.train

        def train(gradient_steps, batch_size=100):
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
            del t["_k"]
            assert len(rec.gradient_steps) - t["first_gradient_step"] == gradient_steps
            t["learning_rate"] = float(m.policy.optimizer.param_groups[0]["lr"])
            logged = m.logger.name_to_value
            t["logged"] = {
                "train/learning_rate": float(logged["train/learning_rate"]),
                "train/loss": float(logged["train/loss"]),
                "train/n_updates": int(logged["train/n_updates"]),
                "rollout/exploration_rate": float(logged["rollout/exploration_rate"]),
            }
            t["_optimizer_state"] = adam_state(m)
            rec.train_calls.append(t)
            rec.cur_train = None

        patch(m, "train", train)

    def uninstall(self) -> None:
        for item in reversed(self._undo):
            if item[0] == "hook":
                item[1].remove()
                continue
            obj, name, old, had = item
            if isinstance(obj, type(np)):
                setattr(obj, name, old)
            elif had:
                setattr(obj, name, old)
            else:
                delattr(obj, name)
        self._undo = []


def adam_state(m: DQN) -> dict:
    opt = m.policy.optimizer
    names = [n for n, _ in m.q_net.named_parameters()]
    params = list(m.q_net.parameters())
    st = [opt.state[p] for p in params]
    steps = {float(s["step"].item()) for s in st}
    assert len(steps) == 1
    return {
        "step": steps.pop(),
        "exp_avg": tensor_dict((n, s["exp_avg"]) for n, s in zip(names, st)),
        "exp_avg_sq": tensor_dict((n, s["exp_avg_sq"]) for n, s in zip(names, st)),
    }


class StepRecorder(BaseCallback):
    def __init__(self, rec: Recorder):
        super().__init__(verbose=0)
        self.rec = rec

    def _on_step(self) -> bool:
        rec, m, loc = self.rec, self.model, self.locals
        p = rec.pending
        n_envs = m.n_envs
        if not p["dqn_predict"]:
            source = "warmup_random"
        elif p["greedy"]:
            source = "greedy"
        else:
            source = "epsilon_random"
        infos = loc["infos"]
        dones = np.asarray(loc["dones"])
        term_obs = [
            f64list(infos[i]["terminal_observation"]) if dones[i] else None for i in range(n_envs)
        ]
        s = {
            "index": len(rec.steps),
            "num_timesteps": int(m.num_timesteps),
            "exploration_rate": float(m.exploration_rate),
            "action_source": source,
            "epsilon_draw": p["draw"],
            "greedy_q_values": None if p["greedy_q"] is None else f64list(p["greedy_q"].numpy()),
            "obs": f64list(m._last_obs),
            "actions": f64list(np.asarray(loc["actions"]).reshape(n_envs)),
            "rewards": f64list(loc["rewards"]),
            "dones": f64list(dones.astype(bool)),
            "truncated": [bool(infos[i].get("TimeLimit.truncated", False)) for i in range(n_envs)],
            "terminal_observation": term_obs,
            "new_obs": f64list(loc["new_obs"]),
        }
        assert np.asarray(loc["rewards"]).dtype == np.float32
        rec.steps.append(s)
        rec.cur_step = s
        rec.pending = rec._fresh_pending()
        return True


# --------------------------------------------------------------------------------------------
# float32 measurements (properties of this torch build; reported in header.float_observations)


def f32_round(fr: Fraction) -> np.float32:
    """Correctly rounded (nearest, ties to even) float32 of an exact rational."""
    x = np.float32(float(fr))
    cands = [np.nextafter(x, np.float32(-np.inf)), x, np.nextafter(x, np.float32(np.inf))]

    def key(c):
        return (abs(Fraction(float(c)) - fr), int(np.array(c, dtype=np.float32).view(np.uint32)) & 1)

    return min(cands, key=key)


def polyak_observations(initial_params, initial_target, gradient_steps, target_updates) -> dict:
    """For tau < 1: compare the recorded target params with two float32 models of
    target.mul_(1 - tau); torch.add(target, param, alpha=tau, out=target)."""
    n_sep = n_fma = n_total = 0
    prev_target = {k: np.array(v["values"], dtype=np.float32) for k, v in initial_target.items()}
    for tu in target_updates:
        g = tu["after_gradient_steps"]
        src = initial_params if g == 0 else gradient_steps[g - 1]["params_after"]
        after = {k: np.array(v["values"], dtype=np.float32) for k, v in tu["target_params"].items()}
        tau = tu["tau"]
        if tau != 1.0:
            one_m = np.float32(1 - tau)
            a = np.float32(tau)
            for k in after:
                p = np.array(src[k]["values"], dtype=np.float32)
                t1 = (prev_target[k] * one_m).astype(np.float32)
                sep = (t1 + (a * p).astype(np.float32)).astype(np.float32)
                fma = np.array(
                    [f32_round(Fraction(float(x)) + Fraction(float(a)) * Fraction(float(y))) for x, y in zip(t1, p)],
                    dtype=np.float32,
                )
                n_total += after[k].size
                n_sep += int((sep.view(np.uint32) == after[k].view(np.uint32)).sum())
                n_fma += int((fma.view(np.uint32) == after[k].view(np.uint32)).sum())
        prev_target = after
    return {
        "polyak_elements": n_total,
        "polyak_match_separate_roundings": n_sep,
        "polyak_match_fma": n_fma,
    }


# --------------------------------------------------------------------------------------------


def describe_lr(lr) -> object:
    return lr.describe() if isinstance(lr, LinearLR) else lr


def kwargs_repr(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if isinstance(v, LinearLR):
            parts.append(f"{k}=LinearLR({v.start!r})")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def layout() -> dict:
    return {
        "params (initial_params, initial_target_params, gradient_steps[].params_after, target_updates[].target_params, final.*)": "name -> {shape, values}; values = row-major (C order) flattening of the float32 torch tensor; names and order = model.q_net.state_dict() = q_net.parameters() = optimizer param order (header.param_order). In the policy state_dict the keys are 'q_net.' + name and 'q_net_target.' + name",
        "steps[]": "one entry per VecEnv.step() call of collect_rollouts, in order. All per-env fields are lists of length n_envs (env i = sub-env i)",
        "steps[].index / num_timesteps": "0-based call index / model.num_timesteps AFTER the step (+= n_envs per step)",
        "steps[].exploration_rate": "model.exploration_rate when the action was chosen (= exploration_rate_after of the previous step; 0.0 before the first step)",
        "steps[].action_source": "'warmup_random' (num_timesteps before the step < learning_starts: action_space.sample() per env, DQN.predict not called), 'epsilon_random' (DQN.predict drew np.random.rand() < exploration_rate: action_space.sample() per env) or 'greedy' (argmax of q_net(obs), batch n_envs). One decision for ALL envs of the step",
        "steps[].epsilon_draw": "the np.random.rand() value DQN.predict compared with exploration_rate (null for warm-up steps)",
        "steps[].greedy_q_values": "[n_envs][n_actions] q_net(obs) of the greedy forward (batch n_envs, no_grad), null when not greedy",
        "steps[].obs": "[n_envs][obs_dim] model._last_obs, the observation the action was taken in",
        "steps[].actions": "[n_envs] int action sent to env.step (what the test feeds; the torch/numpy/gym RNG draws are not reproducible outside Python)",
        "steps[].rewards": "[n_envs] float32 rewards returned by the VecEnv",
        "steps[].dones / truncated": "[n_envs] done = terminated or truncated; truncated = infos[i]['TimeLimit.truncated'] (= truncated and not terminated)",
        "steps[].terminal_observation": "[n_envs] infos[i]['terminal_observation'] (obs_dim floats) where done, else null",
        "steps[].new_obs": "[n_envs][obs_dim] obs returned by the VecEnv (already the reset obs where done) = next step's obs",
        "steps[].stored": "the replay-buffer row written by this step: pos (row index; the row holds all n_envs), obs, next_obs (= terminal_observation where done, else new_obs), action [n_envs], reward, done (float32 0/1), timeout (float32 0/1 = truncated), pos_after / full_after (buffer.pos and .full after the add)",
        "steps[].n_calls / progress_remaining / exploration_rate_after": "model._n_calls, _current_progress_remaining and exploration_rate after DQN._on_step of this step",
        "steps[].target_update_index": "present when DQN._on_step updated the target network at this step: index into target_updates",
        "train_calls[]": "one entry per DQN.train() call: index, num_timesteps and progress_remaining at the call, gradient_steps (as passed: header.hyperparameters_effective explains -1), batch_size, first_gradient_step (index into gradient_steps), learning_rate set by _update_learning_rate, logged (SB3 logger values after train(): train/learning_rate, train/loss = np.mean of this call's losses, train/n_updates, rollout/exploration_rate), optimizer_state_after (Adam {step, exp_avg, exp_avg_sq} after the call's last gradient step; step is a float like torch's state tensor)",
        "gradient_steps[]": "one entry per gradient step in execution order: index, train_call, step_in_call, num_timesteps, buffer_pos/buffer_full/upper_bound (buffer state at sampling; indices are drawn in [0, upper_bound)), learning_rate (param group lr at the step)",
        "gradient_steps[].batch_inds / env_indices": "[batch_size] row indices (np.random.randint(0, upper_bound, batch_size) in ReplayBuffer.sample) and env indices (np.random.randint(0, n_envs, batch_size) in _get_samples; all 0 when n_envs = 1, the draw still happens)",
        "gradient_steps[].batch": "ReplayBufferSamples as used: observations [B][obs_dim], actions [B] (int), next_observations [B][obs_dim], dones [B] (float32, = done * (1 - timeout) for 1-step; the n-step final done for NStepReplayBuffer), rewards [B] (float32; the n-step discounted sum for n_steps > 1), discounts [B] (float32 gamma^k per sample, n_steps > 1 only; null for 1-step where train() uses the python float gamma)",
        "gradient_steps[].next_q_values_all / next_q_values": "[B][n_actions] q_net_target(next_observations) and [B] its max over actions (no_grad)",
        "gradient_steps[].target_q_values": "[B] rewards + (1 - dones) * discounts * next_q_values",
        "gradient_steps[].current_q_values_all / current_q_values": "[B][n_actions] q_net(observations) (with grad) and [B] gathered at the batch actions",
        "gradient_steps[].loss": "F.smooth_l1_loss(current_q_values, target_q_values) (float32 .item())",
        "gradient_steps[].grad_norm_before_clip / max_grad_norm / clipped": "the total norm clip_grad_norm_ returned, its max_norm, and whether grad_norm_before_clip > max_grad_norm (the coefficient max_norm / (norm + 1e-6) is < 1 then)",
        "gradient_steps[].grad_norms_per_param_before_clip": "name -> vector_norm(grad, 2) of the pre-clip gradient (float32)",
        "gradient_steps[].grads_before_clip": "name -> {shape, values} full pre-clip gradient; only on the first gradient step and on the first clipped step",
        "gradient_steps[].params_after": "q_net parameters after optimizer.step()",
        "target_updates[]": "every target-network update in order: index, n_calls (model._n_calls at the update), num_timesteps, after_gradient_steps (number of gradient steps done before it: the source parameters are gradient_steps[after_gradient_steps-1].params_after, or initial_params when 0), tau, target_params (q_net_target after the update)",
        "final": "num_timesteps, n_calls, n_updates, episode_num at the end of learn(); params, target_params, optimizer_state (Adam)",
    }


NOTES = """Everything below is what SB3 2.9.2 + torch 2.15 (CPU, 1 thread) + numpy 2.4.6 computed; the semantics were read from the installed sources (dqn/dqn.py, dqn/policies.py, common/off_policy_algorithm.py, common/buffers.py, common/utils.py, common/torch_layers.py) and the recorded data was re-derived by tools/golden/check_dqn_golden.py (see header.float_observations).
ENVS: make_vec_env(env_id, n_envs, seed=S, env_kwargs) -> DummyVecEnv of Monitor(gym.make(env_id, render_mode='rgb_array', **env_kwargs)); env_kwargs={'max_episode_steps': N} makes gym.make's TimeLimit(N) replace the registered limit (500 for CartPole-v1). DQN(seed=S) calls set_random_seed(S) (random, np.random, torch.manual_seed), action_space.seed(S) and env.seed(S); learn() -> _setup_learn calls env.reset(), which resets sub-env i with seed S+i (header.env_construction.first_reset_seeds). DummyVecEnv autoresets in the same step: where done the returned obs is the reset obs and infos[i]['terminal_observation'] holds the final obs; done = terminated or truncated; infos[i]['TimeLimit.truncated'] = truncated and not terminated. Rewards come back as float32.
NETWORK: q_net = QNetwork: FlattenExtractor (identity for Box obs; normalize_images irrelevant for a non-image Box) then create_mlp(obs_dim, n_actions, net_arch, nn.ReLU) = [Linear, ReLU] per hidden layer, then Linear(last, n_actions) with no output activation. Linear: y = x W^T + b, W [out, in] row-major. PyTorch default init (kaiming_uniform_(a=sqrt(5)) for W, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for b) from torch.manual_seed(S): no orthogonal init for DQN. q_net_target is a second QNetwork built right after q_net (it consumes torch RNG) and then load_state_dict(q_net.state_dict()), so initial_target_params == initial_params. The optimizer covers q_net.parameters() only.
ACTION SELECTION (OffPolicyAlgorithm._sample_action, then DQN.predict): if num_timesteps (before the step) < learning_starts: action_space.sample() for each env (warm-up). Else DQN.predict(_last_obs, deterministic=False): ONE u = np.random.rand() for the whole VecEnv step; if u < exploration_rate every env gets action_space.sample(), else every env gets argmax_a q_net(obs) (policy.predict under no_grad, batch n_envs). exploration_rate is an attribute initialised to 0.0 in DQN.__init__ and only updated in _on_step AFTER each env step, so the first step's epsilon is 0.0 (matters only when learning_starts == 0: the very first action is greedy) and step k uses the epsilon computed after step k-1.
EPSILON SCHEDULE: after every env step: progress_remaining = 1.0 - float(num_timesteps) / float(total_timesteps) (float64; total_timesteps = header.total_timesteps as passed to learn); exploration_rate = LinearSchedule(initial, final, fraction)(progress_remaining) = final if (1 - progress_remaining) > fraction else initial + (1 - progress_remaining) * (final - initial) / fraction, float64, evaluated exactly in that order (note 1 - progress_remaining is not always bit-identical to num_timesteps/total_timesteps). logged rollout/exploration_rate = this value after the last step before train().
COLLECTION (collect_rollouts, policy in eval mode): repeat while num_collected_steps < train_freq.frequency (unit 'step': VecEnv steps, each = n_envs transitions) or num_collected_episodes < frequency (unit 'episode': n_envs must be 1; every done counts): action; env.step; num_timesteps += n_envs; callback; _store_transition; _update_current_progress_remaining; DQN._on_step (target update + epsilon). _store_transition: next_obs = copy of new_obs with row i replaced by infos[i]['terminal_observation'] where done; replay_buffer.add(_last_obs, next_obs, action, reward, done, infos); _last_obs = new_obs.
REPLAY BUFFER (ReplayBuffer, handle_timeout_termination=True, optimize_memory_usage=False): arrays [rows, n_envs, ...] with rows = max(buffer_size // n_envs, 1) (header.hyperparameters_effective.replay_buffer_rows); add writes row pos for all envs at once: observations, next_observations (float32), actions (int64, [n_envs, 1]), rewards (float32), dones (float32 of done: 1 for terminations AND truncations), timeouts (float32 of infos[i]['TimeLimit.truncated']); pos += 1; when pos == rows: full = True, pos = 0 (ring buffer; old rows are overwritten). sample(batch_size): batch_inds = np.random.randint(0, rows if full else pos, size=batch_size) (with replacement, numpy global legacy RNG), then in _get_samples env_indices = np.random.randint(0, n_envs, size=batch_size) (drawn even for n_envs = 1); the sample is (observations[b, e], actions[b, e], next_observations[b, e], dones[b, e] * (1 - timeouts[b, e]), rewards[b, e]) as float32/int64 tensors. So a truncated transition (timeout) has done 0 in the batch and is bootstrapped from next_observations = the terminal observation; a terminated one has done 1.
N-STEP (n_steps > 1; DQN(n_steps=n) with replay_buffer_class=None selects NStepReplayBuffer(n_steps=n, gamma=gamma); same storage and sample() indices as ReplayBuffer, different _get_samples): env_indices = np.random.randint(0, n_envs, size=batch_size); TEMPORARILY timeouts[pos-1] = timeouts[pos-1] OR NOT dones[pos-1] (row pos-1 = the newest row, for every env; pos-1 = -1 means the last row when pos = 0) so that no sequence runs past the newest transition; idx_j = (b + j) % rows for j = 0..n-1; rewards_seq, dones_seq, truncated_seq = rewards/dones/timeouts[idx_j, e]; done_or_truncated = dones_seq OR truncated_seq; done_idx = first j with done_or_truncated (n-1 if none); mask_j = j <= done_idx; discounts (header: batch.discounts) = gamma ** float32(sum_j mask_j) computed by numpy as float32 power (python-float gamma is a weak scalar under NEP 50: float32(gamma) ** k, numpy/libm powf); reward weights gamma ** arange(n, dtype=float32) (float32: [1, f32(gamma), f32(gamma)^2 via powf ...]); rewards (batch) = sum_j (rewards_seq_j * weight_j * mask_j) in float32 (products rounded to float32, then summed left to right for n < 8); last = (b + done_idx) % rows; next_observations = next_observations[last, e]; dones (batch) = dones[last, e] * (1 - timeouts[last, e]) (with the temporary timeout of row pos-1); the timeouts row is restored afterwards. observations / actions come from row b. A sequence stops at the first done OR truncation (inclusive), so a truncation inside the window bootstraps from that step's terminal observation with gamma^(k) where k = steps used, a termination gives done 1 (no bootstrap).
TRAIN (DQN.train(gradient_steps, batch_size), called by learn() after collect_rollouts when num_timesteps > 0 and num_timesteps > learning_starts (strict); gradient_steps = self.gradient_steps, or for gradient_steps = -1 the rollout's episode_timesteps = num_collected_steps * n_envs (so with n_envs = 2 and train_freq 3, 6 gradient steps); train is skipped when that is 0): policy.set_training_mode(True); _update_learning_rate sets every param group's lr = lr_schedule(progress_remaining at the call) (logged train/learning_rate). Per gradient step: replay_data = replay_buffer.sample(batch_size); discounts = replay_data.discounts if not None else gamma (python float); with no_grad: next_q = q_net_target(next_observations).max(dim=1).values.reshape(-1, 1); target_q = rewards + (1 - dones) * discounts * next_q (torch float32, left to right: ((1 - dones) * discounts) * next_q, then rewards + that; a python-float gamma is rounded to float32 by torch's CPU scalar path); current_q = gather(q_net(observations), 1, actions.long()); loss = F.smooth_l1_loss(current_q, target_q) (beta = 1, mean over the B samples): d = current_q - target_q, l = 0.5 * d^2 if |d| < 1 else |d| - 0.5, loss = mean(l); losses.append(loss.item()); optimizer.zero_grad(); loss.backward(); clip_grad_norm_(policy.parameters(), max_grad_norm); optimizer.step(). After the loop: _n_updates += gradient_steps; logged train/n_updates = _n_updates, train/loss = np.mean(losses) (float64 mean of the python floats).
GRADIENT CLIP (torch.nn.utils.clip_grad_norm_): policy.parameters() yields q_net's AND q_net_target's parameters, but the target's grads are None and are skipped, so the norm is over q_net's gradients only: total_norm = vector_norm(stack([vector_norm(g, 2) for g in grads]), 2) in param order; clip_coef = max_norm / (total_norm + 1e-6); clip_coef_clamped = min(clip_coef, 1.0); EVERY grad is multiplied by clip_coef_clamped (a multiply by 1.0 when not clipping). gradient_steps[].grad_norm_before_clip is the returned total_norm.
ADAM (DQNPolicy: optimizer_class torch.optim.Adam with optimizer_kwargs {} -> torch defaults betas (0.9, 0.999), eps=1e-8 (NOT the 1e-5 SB3 uses for ActorCriticPolicy), weight_decay 0, amsgrad False; single-tensor implementation on CPU; header.optimizer): state created at the first step: step = 0 (float32 tensor), exp_avg = exp_avg_sq = 0. Per step: step += 1; exp_avg = lerp(exp_avg, g, 1 - beta1); exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g; bias_correction1 = 1 - beta1^step; bias_correction2 = 1 - beta2^step; step_size = lr / bias_correction1; denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps; param -= step_size * exp_avg / denom (g = the clipped gradient; lr = the param group's lr at that step).
TARGET UPDATE (DQN._on_step, after EVERY env step, also before learning_starts and independently of train()): _n_calls += 1 (one per VecEnv.step, not per transition; _n_calls starts at 0 in DQN.__init__ and is not reset by learn); if _n_calls % max(target_update_interval // n_envs, 1) == 0: polyak_update(q_net.parameters(), q_net_target.parameters(), tau): under no_grad for each pair: target.mul_(1 - tau); torch.add(target, param, alpha=tau, out=target) (1 - tau is a python float64 then rounded to float32 by torch; alpha = float32(tau)). float32 rounding on this build (measured on every tau < 1 update: header.float_observations.polyak_*): t1 = f32(target * f32(1 - tau)), then target = ONE rounding of t1 + f32(tau) * param (a fused multiply-add: torch's vectorized add-with-alpha kernel), which differs from f32(t1 + f32(f32(tau) * param)) in 10-25% of the elements. With tau = 1 this is target * 0 + param = an exact copy. (A second polyak_update with tau = 1 copies batch-norm running stats: none in an MLP.) The source is q_net as it is at that env step, i.e. after the last completed train() (header.target_update_every_n_calls; target_updates[].after_gradient_steps). With tau < 1 an update before any gradient step (target == q_net) must leave the target unchanged: with the fused rounding it did for every element in these files, whereas separate roundings f32(f32(p * f32(1 - tau)) + f32(f32(tau) * p)) change some elements by 1 ulp (10 of 226 for tau = 0.3, 39 of 130 for tau = 0.9 on the initial parameters), so the FMA matters for bit-exact targets.
LOGGER: learn() was called with log_interval=None so dump_logs never runs (it only prints and would clear the logger); train_calls[].logged are logger.name_to_value right after each train(). time/* values are not recorded (not deterministic)."""


def run_config(name: str, cfg: dict) -> dict:
    torch.set_num_threads(1)
    n_envs, seed = cfg["n_envs"], cfg["seed"]
    env_kwargs = {} if cfg["max_episode_steps"] is None else {"max_episode_steps": cfg["max_episode_steps"]}
    vec_env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs or None)
    policy_kwargs = dict(net_arch=list(cfg["net_arch"]))
    dqn_kwargs = dict(cfg["dqn"])
    model = DQN(
        "MlpPolicy", vec_env, seed=seed, device="cpu", verbose=0, policy_kwargs=policy_kwargs, **dqn_kwargs
    )
    initial_params = tensor_dict(model.q_net.named_parameters())
    initial_target = tensor_dict(model.q_net_target.named_parameters())
    assert initial_params == initial_target
    rb = model.replay_buffer

    rec = Recorder(model, cfg)
    rec.install()
    try:
        model.learn(total_timesteps=cfg["total_timesteps"], callback=StepRecorder(rec), log_interval=None)
    finally:
        rec.uninstall()

    # ---- post-processing of the gradient steps
    first_clipped = None
    for g in rec.gradient_steps:
        nq_all = g.pop("_next_q_all")
        cq_all = g.pop("_current_q_all")
        grads = g.pop("_grads")
        g["next_q_values_all"] = f64list(nq_all.numpy())
        g["next_q_values"] = f64list(nq_all.max(dim=1).values.numpy())
        g["current_q_values_all"] = f64list(cq_all.numpy())
        g["clipped"] = bool(g["grad_norm_before_clip"] > g["max_grad_norm"])
        g["grad_norms_per_param_before_clip"] = {
            n: float(torch.linalg.vector_norm(grads[n], 2).item()) for n in rec.names
        }
        want_grads = g["index"] == 0
        if g["clipped"] and first_clipped is None:
            first_clipped = g["index"]
            want_grads = True
        if want_grads:
            g["grads_before_clip"] = tensor_dict((n, grads[n]) for n in rec.names)
        # stable key order
        order = [
            "index", "train_call", "step_in_call", "num_timesteps", "learning_rate", "buffer_pos",
            "buffer_full", "upper_bound", "batch_inds", "env_indices", "batch", "next_q_values_all",
            "next_q_values", "target_q_values", "current_q_values_all", "current_q_values", "loss",
            "grad_norm_before_clip", "max_grad_norm", "clipped", "grad_norms_per_param_before_clip",
            "grads_before_clip", "params_after",
        ]
        assert set(g) <= set(order), set(g) - set(order)
        for k in order:
            if k in g:
                g[k] = g.pop(k)

    for t in rec.train_calls:
        t["optimizer_state_after"] = t.pop("_optimizer_state")

    # ---- header
    tc = model.train_freq
    dqn_passed = {k: describe_lr(v) if k == "learning_rate" else (list(v) if isinstance(v, tuple) else v)
                  for k, v in dqn_kwargs.items()}
    opt_group = {k: v for k, v in model.policy.optimizer.param_groups[0].items() if k != "params"}
    opt_group["lr_initial"] = float(model.lr_schedule(1.0))
    opt_group["lr"] = describe_lr(dqn_kwargs["learning_rate"])
    opt_group["betas"] = list(opt_group["betas"])
    opt_group = {"class": "torch.optim.Adam", **opt_group}
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
            f"-1: as many as transitions collected in the rollout = num_collected_steps * n_envs"
            + (f" = {tc.frequency * n_envs} per train() call" if tc.unit.value == "step" else " (unit 'episode': the rollout's length)")
            if model.gradient_steps < 0 else "per train() call"
        ),
        "target_update_interval": model.target_update_interval,
        "target_update_every_n_calls": max(model.target_update_interval // n_envs, 1),
        "exploration_fraction": model.exploration_fraction,
        "exploration_initial_eps": model.exploration_initial_eps,
        "exploration_final_eps": model.exploration_final_eps,
        "max_grad_norm": model.max_grad_norm,
        "n_steps": model.n_steps,
    }
    if isinstance(rb, sb3.common.buffers.NStepReplayBuffer):
        hp_eff["n_step_buffer"] = {"n_steps": rb.n_steps, "gamma": rb.gamma}
    ms = cfg["max_episode_steps"]
    code_kwargs = "" if ms is None else f", env_kwargs={{'max_episode_steps': {ms}}}"
    steps = rec.steps
    n_trunc = sum(sum(s["truncated"]) for s in steps)
    n_done = sum(sum(s["dones"]) for s in steps)
    sources = [s["action_source"] for s in steps]
    grads = rec.gradient_steps
    # does any gradient step sample a truncated transition (1-step: timeout stored 1)?
    coverage = {
        "env_steps": len(steps),
        "transitions": len(steps) * n_envs,
        "episodes_done": n_done,
        "terminated": n_done - n_trunc,
        "truncated": n_trunc,
        "warmup_random_steps": sources.count("warmup_random"),
        "epsilon_random_steps": sources.count("epsilon_random"),
        "greedy_steps": sources.count("greedy"),
        "epsilon_first_last": [steps[0]["exploration_rate"], steps[-1]["exploration_rate"]],
        "replay_buffer_wrapped": any(s["stored"]["full_after"] for s in steps),
        "train_calls": len(rec.train_calls),
        "gradient_steps": len(grads),
        "target_updates": len(rec.target_updates),
        "target_updates_before_first_gradient_step": sum(1 for t in rec.target_updates if t["after_gradient_steps"] == 0),
        "clipped_gradient_steps": sum(1 for g in grads if g["clipped"]),
    }
    header = {
        "format": FORMAT,
        "config_name": name,
        "env_id": ENV_ID,
        "algo": "DQN",
        "policy": "MlpPolicy",
        "versions": {
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "made_with": "tools/golden/gen_dqn_update_golden.py (this repository)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "total_timesteps": cfg["total_timesteps"],
        "n_envs": n_envs,
        "seed": seed,
        "hyperparameters": dqn_passed,
        "hyperparameters_effective": hp_eff,
        "dqn_constructor": f"DQN('MlpPolicy', vec_env, seed={seed}, device='cpu', verbose=0, policy_kwargs={policy_kwargs!r}, {kwargs_repr(dqn_kwargs)})"
        + ("  # LinearLR(v)(progress_remaining) = v * progress_remaining" if isinstance(dqn_kwargs["learning_rate"], LinearLR) else ""),
        "env_construction": {
            "code": f"make_vec_env('{ENV_ID}', n_envs={n_envs}, seed={seed}{code_kwargs})",
            "effective_stack": f"DummyVecEnv([Monitor(gym.make('{ENV_ID}', render_mode='rgb_array'{'' if ms is None else f', max_episode_steps={ms}'})) for i in range({n_envs})])"
            + ("; the registered TimeLimit(500) applies" if ms is None else f"; gym.make's TimeLimit({ms}) replaces the registered limit"),
            "max_episode_steps": 500 if ms is None else ms,
            "first_reset_seeds": [seed + i for i in range(n_envs)],
            "later_resets": "unseeded (each sub-env's generator continues)",
        },
        "learn_loop": (
            f"model.learn(total_timesteps={cfg['total_timesteps']}, callback=StepRecorder(), log_interval=None): "
            "_setup_learn (num_timesteps = 0, env.reset()), then while num_timesteps < total_timesteps: "
            "collect_rollouts(train_freq) ; if num_timesteps > 0 and num_timesteps > learning_starts: "
            "train(gradient_steps, batch_size)"
        ),
        "recording": RECORDING,
        "observation_space": space_json(model.observation_space),
        "action_space": space_json(model.action_space),
        "policy_kwargs": {"net_arch": list(cfg["net_arch"])},
        "policy_kwargs_effective": {
            "net_arch": list(model.policy.net_arch),
            "activation_fn": "nn.ReLU",
            "features_extractor": "FlattenExtractor",
            "normalize_images": bool(model.policy.normalize_images),
            "optimizer_class": "torch.optim.Adam",
            "optimizer_kwargs": dict(model.policy.optimizer_kwargs),
            "q_net_modules": repr(model.q_net.q_net).replace("\n", " "),
        },
        "optimizer": opt_group,
        "param_order": rec.names,
        "n_params": int(sum(p.numel() for p in model.q_net.parameters())),
        "layout": layout(),
        "notes": NOTES,
        "coverage": coverage,
    }
    doc = {
        "header": header,
        "initial_params": initial_params,
        "initial_target_params": initial_target,
        "steps": steps,
        "train_calls": rec.train_calls,
        "gradient_steps": grads,
        "target_updates": rec.target_updates,
        "final": {
            "num_timesteps": int(model.num_timesteps),
            "n_calls": int(model._n_calls),
            "n_updates": int(model._n_updates),
            "episode_num": int(model._episode_num),
            "params": tensor_dict(model.q_net.named_parameters()),
            "target_params": tensor_dict(model.q_net_target.named_parameters()),
            "optimizer_state": adam_state(model),
        },
    }
    # float32 properties of this build, measured on the recorded data
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(HERE))
    import check_dqn_golden  # noqa: E402

    fo, cov_more = check_dqn_golden.float_observations(doc)
    coverage.update(cov_more)
    fo.update(polyak_observations(initial_params, initial_target, grads, rec.target_updates))
    fo["explanation"] = (
        "Bit-level properties of this build, measured on this file's data (check_dqn_golden.py): "
        "target_q_*: target_q_values recomputed in float32 as f32(r + f32(f32((1 - d) * f32(disc)) * next_q)) "
        "(disc = f32(gamma) or the recorded n-step discount) match the recorded bits; huber_loss_max_rel_err: "
        "|loss - mean_f64(huber(current - target))| / loss (torch's float32 reduction order differs from float64); "
        "nstep_*: n-step batch rewards / discounts / dones / next_obs re-derived with numpy from the replay buffer "
        "rebuilt out of steps[].stored (exact match counts); polyak_*: for tau < 1 the recorded target parameters "
        "vs f32(f32(t * f32(1 - tau)) + f32(f32(tau) * p)) (separate roundings) and vs a single rounding of "
        "f32(t * f32(1 - tau)) + f32(tau) * p (fused multiply-add, as torch's vectorized add-with-alpha kernel does)."
    )
    header["float_observations"] = fo
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--only", action="append", choices=sorted(CONFIGS), help="run only these configs")
    ap.add_argument("--check", action="store_true", help="run check_dqn_golden.py on the written files")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.only or list(CONFIGS):
        doc = run_config(name, copy.deepcopy(CONFIGS[name]))
        path = args.out / f"dqn_update_{name}.json"
        text = dumps(doc) + "\n"
        path.write_text(text)
        written.append(path)
        cov = doc["header"]["coverage"]
        print(f"{path} {len(text)} bytes: {json.dumps(cov)}")
    if args.check:
        sys.path.insert(0, str(HERE))
        import check_dqn_golden

        ok = check_dqn_golden.main([str(p) for p in written])
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

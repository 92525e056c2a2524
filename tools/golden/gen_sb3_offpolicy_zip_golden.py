#!/usr/bin/env python3
"""Record Stable-Baselines3 2.9.2 SAC, TD3 and DDPG model zips and what SB3 computes from them.

Writes, for every entry of ``CONFIGS`` below, ``tests/golden/sb3/<config>.zip`` (SB3's own
``model.save``, after a short training run so the weights are not the initialisation) and
``tests/golden/sb3/<config>_outputs.json`` (``header.format`` = ``"sb3_offpolicy_zip_outputs/1"``):
the zip's layout (members, the ``data`` fields an importer reads, every state-dict key with its
shape, the optimizer states) and, for fixed observations and (observation, scaled action) pairs,
the outputs of the model re-loaded from the zip: deterministic actions in env units, the actor's
raw outputs, SAC's squashed log-probabilities for recorded noise and for given actions, and
every critic and target-critic head's Q-value. They are the reference of the Rust SB3 importer for
off-policy models (issue 13). Read ``tests/golden/README.md`` and each file's ``header.layout`` /
``header.notes``.

Re-running
----------
The reference stack is exactly: Python 3.11.7, stable-baselines3 2.9.2, gymnasium 1.4.0,
torch 2.15.0 (CPU), numpy 2.4.6 (on Linux x86_64)::

    python3.11 -m venv /opt/sb3venv
    /opt/sb3venv/bin/pip install stable-baselines3==2.9.2 gymnasium==1.4.0 torch==2.15.0 numpy==2.4.6

Then, from the repository root::

    /opt/sb3venv/bin/python tools/golden/gen_sb3_offpolicy_zip_golden.py            # all configs
    /opt/sb3venv/bin/python tools/golden/gen_sb3_offpolicy_zip_golden.py --check    # + check script
    /opt/sb3venv/bin/python tools/golden/gen_sb3_offpolicy_zip_golden.py --only td3_pendulum --out /tmp/x

The script runs on CPU with ``torch.set_num_threads(1)`` (set before anything else runs) and is
deterministic: the trained tensors are bit-identical on every run and the ``*_outputs.json`` files
are rewritten byte for byte (they hold no timestamps, timings or memory addresses). The zips
themselves are not byte-identical across runs: SB3 writes ``start_time`` (nanoseconds) and
function reprs with memory addresses into their ``data`` member, and its ``system_info.txt``;
their tensor members are. ``--out DIR`` overrides the output folder (default: the repository's
``tests/golden/sb3/``, found relative to this file). ``--check`` runs
``check_sb3_offpolicy_zip_golden.py`` on the written files (SB3 reload + an independent
functional recomputation). All configs together take about half a minute on one core.
"""

from __future__ import annotations

import argparse
import copy
import io
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
import torch.distributions.normal as normal_module  # noqa: E402
from stable_baselines3 import DDPG, SAC, TD3  # noqa: E402
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "golden" / "sb3"
FORMAT = "sb3_offpolicy_zip_outputs/1"
ALGOS = {"SAC": SAC, "TD3": TD3, "DDPG": DDPG}
ACTIVATIONS = {"ReLU": nn.ReLU, "Tanh": nn.Tanh}

# Every config: algo(policy="MlpPolicy", env=env_id, seed=seed, device="cpu", policy_kwargs=...,
# action_noise=..., **kwargs).learn(total_timesteps), then model.save(<config>.zip).
# `policy_kwargs.activation_fn` is a name of ACTIVATIONS; `noise` is None, ("normal", sigma) or
# ("ou", sigma) with mean 0 (one per action dim). `obs_seeds` = reset seeds of the two rollouts
# the observations are sampled from; `extreme_obs` are appended as they are (some outside the
# observation space: SB3 does not clip observations).
CONFIGS: dict[str, dict] = {
    # SAC, SB3's default net_arch form (one list for actor and critics), small; learned alpha.
    "sac_pendulum": dict(
        algo="SAC",
        env_id="Pendulum-v1",
        seed=11,
        total_timesteps=600,
        policy_kwargs=dict(net_arch=[32, 32]),
        noise=None,
        kwargs=dict(learning_rate=1e-3, buffer_size=2000, learning_starts=100, batch_size=64, ent_coef="auto"),
        obs_seeds=(101, 102),
        extreme_obs=[
            [1.0, 0.0, 8.0],
            [-1.0, 0.0, -8.0],
            [100.0, -100.0, 800.0],
            [0.0, -1.0, 8.0],
            [3.0, -3.0, 40.0],
            [-100.0, 100.0, -800.0],
        ],
    ),
    # SAC, actor and critics with different net_arch (dict form), Tanh, three critics, a fixed
    # entropy coefficient (saved as `ent_coef_tensor`, no ent_coef optimizer).
    "sac_pendulum_split_arch": dict(
        algo="SAC",
        env_id="Pendulum-v1",
        seed=12,
        total_timesteps=500,
        policy_kwargs=dict(net_arch=dict(pi=[24], qf=[40, 32]), activation_fn="Tanh", n_critics=3),
        noise=None,
        kwargs=dict(learning_rate=1e-3, buffer_size=2000, learning_starts=100, batch_size=64, ent_coef=0.05),
        obs_seeds=(201, 202),
        extreme_obs=[
            [1.0, 0.0, 8.0],
            [-1.0, 0.0, -8.0],
            [100.0, -100.0, 800.0],
            [0.0, -1.0, 8.0],
            [3.0, -3.0, 40.0],
            [-100.0, 100.0, -800.0],
        ],
    ),
    # SAC with gSDE (rl-zoo's MountainCarContinuous setting has use_sde=True): the actor's mean
    # layer is mu.0 (clip_mean's Hardtanh), log_std a [latent, act] parameter; fixed alpha.
    "sac_mountaincar_gsde": dict(
        algo="SAC",
        env_id="MountainCarContinuous-v0",
        seed=15,
        total_timesteps=600,
        policy_kwargs=dict(net_arch=[32, 32], log_std_init=-2.0),
        noise=None,
        kwargs=dict(learning_rate=1e-3, buffer_size=2000, learning_starts=100, batch_size=64, ent_coef=0.1,
                    use_sde=True, sde_sample_freq=8),
        obs_seeds=(501, 502),
        extreme_obs=[
            [-1.2, -0.07],
            [0.6, 0.07],
            [-1.2, 0.07],
            [0.45, 0.0],
            [5.0, 1.0],
            [-100.0, -10.0],
        ],
    ),
    # TD3, twin critics, [32, 32] (SB3's default is [400, 300]: too big for a test file),
    # Gaussian action noise.
    "td3_pendulum": dict(
        algo="TD3",
        env_id="Pendulum-v1",
        seed=13,
        total_timesteps=600,
        policy_kwargs=dict(net_arch=[32, 32]),
        noise=("normal", 0.1),
        kwargs=dict(learning_rate=1e-3, buffer_size=2000, learning_starts=100, batch_size=64),
        obs_seeds=(301, 302),
        extreme_obs=[
            [1.0, 0.0, 8.0],
            [-1.0, 0.0, -8.0],
            [100.0, -100.0, 800.0],
            [0.0, -1.0, 8.0],
            [3.0, -3.0, 40.0],
            [-100.0, 100.0, -800.0],
        ],
    ),
    # DDPG (one critic), MountainCarContinuous-v0, different actor/critic net_arch,
    # Ornstein-Uhlenbeck action noise.
    "ddpg_mountaincar": dict(
        algo="DDPG",
        env_id="MountainCarContinuous-v0",
        seed=14,
        total_timesteps=600,
        policy_kwargs=dict(net_arch=dict(pi=[32, 24], qf=[40])),
        noise=("ou", 0.5),
        kwargs=dict(learning_rate=1e-3, buffer_size=2000, learning_starts=100, batch_size=64),
        obs_seeds=(401, 402),
        extreme_obs=[
            [-1.2, -0.07],
            [0.6, 0.07],
            [-1.2, 0.07],
            [0.45, 0.0],
            [5.0, 1.0],
            [-100.0, -10.0],
        ],
    ),
}

N_ROLLOUT_OBS = 13  # per rollout; 2 rollouts + 6 extremes = 32 observations
ROLLOUT_STEPS = 200


# --------------------------------------------------------------------------------------------
# JSON helpers (same conventions as the other recorders: float32 widened exactly to float64)


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


def enc_bound(v) -> object:
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def space_json(space) -> dict:
    return {
        "type": "Box",
        "shape": list(space.shape),
        "dtype": str(space.dtype),
        "low": [enc_bound(v) for v in space.low.reshape(-1)],
        "high": [enc_bound(v) for v in space.high.reshape(-1)],
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


def tensor_summary(key: str, t: torch.Tensor) -> dict:
    """key, shape, dtype, float64 sum and the first 4 values (row-major) of a tensor."""
    flat = tnp(t).reshape(-1)
    return {
        "key": key,
        "shape": list(t.shape),
        "dtype": str(t.dtype),
        "sum": float(flat.astype(np.float64).sum()),
        "first_values": f64list(flat[:4]),
    }


# --------------------------------------------------------------------------------------------
# Zip layout


def make_noise(spec, act_dim: int):
    if spec is None:
        return None, "None"
    if spec[0] == "normal":
        return (NormalActionNoise(mean=np.zeros(act_dim), sigma=spec[1] * np.ones(act_dim)),
                f"NormalActionNoise(mean=np.zeros({act_dim}), sigma={spec[1]!r} * np.ones({act_dim}))")
    return (OrnsteinUhlenbeckActionNoise(mean=np.zeros(act_dim), sigma=spec[1] * np.ones(act_dim)),
            f"OrnsteinUhlenbeckActionNoise(mean=np.zeros({act_dim}), sigma={spec[1]!r} * np.ones({act_dim}))")


def class_from_init(init: object) -> object:
    """'<function SACPolicy.__init__ at 0x...>' -> 'SACPolicy' (None when not that form)."""
    if isinstance(init, str) and init.startswith("<function ") and ".__init__" in init:
        return init[len("<function "):].split(".__init__")[0]
    return None


def readable(v) -> object:
    """A `data` field as an importer can read it: SB3's cloudpickled objects keep readable keys
    beside `:serialized:` (a base64 pickle). Dropped here: `:serialized:`, the dunder entries of
    pickled classes other than `__module__`, and every string holding a memory address
    (function and object reprs); a pickled class's name is kept as `class_from___init__`, parsed
    from its `__init__` repr."""
    if isinstance(v, dict):
        out = {k: readable(x) for k, x in v.items()
               if k != ":serialized:" and not (k.startswith("__") and k != "__module__")
               and not (isinstance(x, str) and " at 0x" in x)}
        if class_from_init(v.get("__init__")) is not None:
            out["class_from___init__"] = class_from_init(v["__init__"])
        return out
    return v


# `data` fields that describe the policy and the algorithm (the rest is run bookkeeping:
# start_time, _last_obs, ep_info_buffer, ...).
DATA_KEYS = [
    "policy_kwargs", "use_sde", "sde_sample_freq", "use_sde_at_warmup", "observation_space", "action_space",
    "n_envs", "num_timesteps", "_total_timesteps", "_n_updates", "seed", "learning_rate", "lr_schedule", "gamma",
    "tau", "buffer_size", "batch_size", "learning_starts", "train_freq", "gradient_steps", "action_noise",
    "optimize_memory_usage", "replay_buffer_class", "replay_buffer_kwargs", "n_steps",
    # SAC
    "ent_coef", "target_entropy", "target_update_interval",
    # TD3 / DDPG
    "policy_delay", "target_policy_noise", "target_noise_clip",
]
SPACE_DROP = {"_np_random"}  # the action space's Generator repr: bookkeeping


def data_fields(data: dict) -> dict:
    out = {"policy_class": readable(data["policy_class"])}
    for k in DATA_KEYS:
        if k not in data:
            continue
        v = readable(data[k])
        if k in ("observation_space", "action_space") and isinstance(v, dict):
            v = {a: b for a, b in v.items() if a not in SPACE_DROP}
        out[k] = v
    return out


def pth_listing(z: zipfile.ZipFile, member: str, model) -> object:
    """What a `.pth` member holds: a state dict (list of tensor summaries), a dict of tensors
    (pytorch_variables.pth) or an optimizer state dict (param_groups + per-parameter state,
    each parameter index named by the policy state-dict key it belongs to)."""
    obj = torch.load(io.BytesIO(z.read(member)), map_location="cpu", weights_only=False)
    if member in ("policy.pth", "pytorch_variables.pth"):
        return [tensor_summary(k, v) for k, v in obj.items()]
    # Optimizer: name each parameter index from the live (re-loaded) model's optimizer.
    owner = {"actor.optimizer.pth": model.actor.optimizer, "critic.optimizer.pth": model.critic.optimizer,
             "ent_coef_optimizer.pth": getattr(model, "ent_coef_optimizer", None)}[member]
    names = {id(p): "policy." + k for k, p in model.policy.named_parameters()}
    if member == "ent_coef_optimizer.pth":
        names = {id(model.log_ent_coef): "pytorch_variables.log_ent_coef"}
    live = [p for g in owner.param_groups for p in g["params"]]
    groups = []
    for g in obj["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    state = []
    for idx in sorted(obj["state"]):
        s = obj["state"][idx]
        state.append({
            "index": int(idx),
            "param": names[id(live[idx])],
            "step": float(s["step"]),
            "exp_avg": tensor_summary("exp_avg", s["exp_avg"]),
            "exp_avg_sq": tensor_summary("exp_avg_sq", s["exp_avg_sq"]),
        })
    return {"param_groups": groups, "state": state}


# --------------------------------------------------------------------------------------------
# Outputs


def sample_observations(model, cfg: dict, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """N_ROLLOUT_OBS observations from a rollout of the loaded model's deterministic policy and
    as many from a uniform-random-action rollout, then the config's extreme observations."""
    env = gym.make(cfg["env_id"])
    low, high = env.action_space.low, env.action_space.high
    rows, sources = [], []
    for kind, seed in zip(("policy_rollout", "random_rollout"), cfg["obs_seeds"]):
        obs, _ = env.reset(seed=seed)
        seen = []
        for _ in range(ROLLOUT_STEPS):
            seen.append(obs)
            if kind == "policy_rollout":
                act, _ = model.predict(obs, deterministic=True)
            else:
                act = rng.uniform(low, high).astype(np.float32)
            obs, _, term, trunc, _ = env.step(act)
            if term or trunc:
                obs, _ = env.reset()
        for i in sorted(rng.choice(len(seen), size=N_ROLLOUT_OBS, replace=False)):
            rows.append(seen[i])
            sources.append(kind)
    for o in cfg["extreme_obs"]:
        rows.append(np.asarray(o, dtype=np.float32))
        sources.append("extreme")
    env.close()
    return np.stack(rows).astype(np.float32), sources


def capture_eps():
    """Patches torch's Normal standard-normal draw so the eps of Normal.rsample is recorded."""
    box = {}
    orig = normal_module._standard_normal

    def standard_normal(*args, **kwargs):
        v = orig(*args, **kwargs)
        box["eps"] = v.detach().clone()
        return v

    normal_module._standard_normal = standard_normal
    return box, lambda: setattr(normal_module, "_standard_normal", orig)


def q_action_pairs(model, obs_t: torch.Tensor, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """One scaled action per observation: the actor's deterministic action for the first 10,
    then -1, 0, 1 for the next 3 (the bounds of the scaled space), the rest uniform in [-1, 1]."""
    n = obs_t.shape[0]
    act_dim = model.action_space.shape[0]
    with torch.no_grad():
        det = tnp(model.actor(obs_t, deterministic=True) if isinstance(model, SAC) else model.actor(obs_t))
    acts, src = [], []
    for i in range(n):
        if i < 10:
            acts.append(det[i])
            src.append("actor_deterministic")
        elif i < 13:
            acts.append(np.full(act_dim, (-1.0, 0.0, 1.0)[i - 10], dtype=np.float32))
            src.append("constant")
        else:
            acts.append(rng.uniform(-1.0, 1.0, size=act_dim).astype(np.float32))
            src.append("uniform")
    return np.stack(acts).astype(np.float32), src


def compute_outputs(model, obs: np.ndarray, rng: np.random.Generator, seed: int) -> tuple[dict, dict]:
    """Every output, from the loaded model under no_grad (float32, CPU)."""
    is_sac = isinstance(model, SAC)
    obs_t = torch.as_tensor(obs)
    out: dict = {}
    cov: dict = {}
    det_env, _ = model.predict(obs, deterministic=True)
    out["deterministic_action"] = f64list(det_env)
    cov["deterministic_actions_at_bounds"] = int(np.sum((det_env <= model.action_space.low) | (det_env >= model.action_space.high)))
    with torch.no_grad():
        if is_sac and model.use_sde:
            actor = model.actor
            mean, log_std, kw = actor.get_action_dist_params(obs_t)
            out["actor_mean"] = f64list(tnp(mean))
            out["actor_latent_sde"] = f64list(tnp(kw["latent_sde"]))
            out["actor_std_matrix"] = f64list(tnp(actor.get_std()))
            out["actor_deterministic_scaled_action"] = f64list(tnp(actor(obs_t, deterministic=True)))
            cov["means_clipped_by_clip_mean"] = int((mean.abs() >= actor.clip_mean).sum())
            # Exploration matrices for N rows (SB3's reset_noise(N)), then a sample: with N rows
            # each row uses its own matrix (bmm); its log-probability through the atanh inverse.
            box, restore = capture_eps()
            draws = []
            orig = normal_module._standard_normal

            def rec_draw(*args, **kwargs):
                v = orig(*args, **kwargs)
                draws.append(v.detach().clone())
                return v

            normal_module._standard_normal = rec_draw
            try:
                torch.manual_seed(seed)
                actor.reset_noise(obs_t.shape[0])
            finally:
                restore()
            assert len(draws) == 2
            dist = actor.action_dist
            out["sample_eps_single"] = f64list(tnp(draws[0]))
            out["sample_eps_per_env"] = f64list(tnp(draws[1]))
            out["exploration_mat"] = f64list(tnp(dist.exploration_mat))
            out["exploration_matrices"] = f64list(tnp(dist.exploration_matrices))
            actions, log_prob = actor.action_log_prob(obs_t)
            out["sample_actions"] = f64list(tnp(actions))
            out["sample_log_prob"] = f64list(tnp(log_prob))
            one = actor(obs_t[:1], deterministic=False)
            out["sample_action_row0_single_matrix"] = f64list(tnp(one))
        elif is_sac:
            actor = model.actor
            latent = actor.latent_pi(actor.extract_features(obs_t, actor.features_extractor))
            raw_log_std = actor.log_std(latent)
            mean, log_std, _ = actor.get_action_dist_params(obs_t)
            out["actor_mean"] = f64list(tnp(mean))
            out["actor_log_std_unclamped"] = f64list(tnp(raw_log_std))
            out["actor_log_std"] = f64list(tnp(log_std))
            out["actor_deterministic_scaled_action"] = f64list(tnp(actor(obs_t, deterministic=True)))
            cov["log_std_clamped_low"] = int((raw_log_std < -20).sum())
            cov["log_std_clamped_high"] = int((raw_log_std > 2).sum())
            # Squashed log-prob of a sample: SB3's own action_log_prob, eps recorded.
            box, restore = capture_eps()
            try:
                torch.manual_seed(seed)
                actions, log_prob = actor.action_log_prob(obs_t)
            finally:
                restore()
            out["sample_eps"] = f64list(tnp(box["eps"]))
            out["sample_gaussian_actions"] = f64list(tnp(actor.action_dist.gaussian_actions))
            out["sample_actions"] = f64list(tnp(actions))
            out["sample_log_prob"] = f64list(tnp(log_prob))
        else:
            out["actor_output"] = f64list(tnp(model.actor(obs_t)))
            out["actor_target_output"] = f64list(tnp(model.actor_target(obs_t)))
        q_act, q_src = q_action_pairs(model, obs_t, rng)
        q_act_t = torch.as_tensor(q_act)
        out["q_action_sources"] = q_src
        out["q_actions"] = f64list(q_act)
        out["critic_q"] = [f64list(tnp(q)[:, 0]) for q in model.critic(obs_t, q_act_t)]
        out["critic_target_q"] = [f64list(tnp(q)[:, 0]) for q in model.critic_target(obs_t, q_act_t)]
        out["critic_q1_forward"] = f64list(tnp(model.critic.q1_forward(obs_t, q_act_t))[:, 0])
        if is_sac:
            # Squashed log-prob of given scaled actions (no gaussian_actions: the atanh inverse).
            actor = model.actor
            mean, log_std, kw = actor.get_action_dist_params(obs_t)
            dist = actor.action_dist.proba_distribution(mean, log_std, **kw)
            out["log_prob_of_q_actions"] = f64list(tnp(dist.log_prob(q_act_t)))
    return out, cov


# --------------------------------------------------------------------------------------------
# One config


def run_config(name: str, cfg: dict, out_dir: Path) -> dict:
    algo_name = cfg["algo"]
    algo = ALGOS[algo_name]
    seed = cfg["seed"]
    pk = copy.deepcopy(cfg["policy_kwargs"])
    pk_repr = dict(pk)
    if "activation_fn" in pk:
        pk["activation_fn"] = ACTIVATIONS[pk["activation_fn"]]
        pk_repr["activation_fn"] = "nn." + cfg["policy_kwargs"]["activation_fn"]
    env_probe = gym.make(cfg["env_id"])
    act_dim = env_probe.action_space.shape[0]
    env_probe.close()
    noise, noise_code = make_noise(cfg["noise"], act_dim)
    model = algo("MlpPolicy", cfg["env_id"], seed=seed, device="cpu", verbose=0, policy_kwargs=pk,
                 action_noise=noise, **cfg["kwargs"])
    model.learn(total_timesteps=cfg["total_timesteps"])
    zip_path = out_dir / f"{name}.zip"
    model.save(zip_path)
    trained = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
    del model

    model = algo.load(zip_path, device="cpu")
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, trained[k]), f"{name}: {k} differs after reload"
    model.policy.set_training_mode(False)

    z = zipfile.ZipFile(zip_path)
    members = [{"name": i.filename, "size": i.file_size,
                "compress_type": "stored" if i.compress_type == zipfile.ZIP_STORED else "deflated"}
               for i in z.infolist()]
    data = json.loads(z.read("data"))
    state = {m: pth_listing(z, m, model) for m in z.namelist() if m.endswith(".pth")}

    rng = np.random.default_rng(seed)
    obs, sources = sample_observations(model, cfg, rng)
    outputs, cov = compute_outputs(model, obs, rng, seed)

    is_sac = algo_name == "SAC"
    pol = model.policy
    act_name = type(pol.actor.activation_fn()).__name__ if hasattr(pol.actor, "activation_fn") else None
    networks = {
        "actor": {
            "net_arch": list(pol.actor.net_arch),
            "activation_fn": act_name,
            "module": repr(pol.actor),
            "param_order": [k for k, _ in pol.actor.named_parameters()],
        },
    }
    if not is_sac:
        networks["actor_target"] = dict(networks["actor"], module=repr(pol.actor_target),
                                        param_order=[k for k, _ in pol.actor_target.named_parameters()])
    for net in ("critic", "critic_target"):
        c = getattr(pol, net)
        networks[net] = {
            "net_arch": list(pol.critic_kwargs["net_arch"]),
            "activation_fn": type(pol.critic_kwargs["activation_fn"]()).__name__,
            "n_critics": c.n_critics,
            "share_features_extractor": c.share_features_extractor,
            "module": repr(c),
            "param_order": [k for k, _ in c.named_parameters()],
        }
    if is_sac:
        ent = {"learned": model.ent_coef_optimizer is not None,
               "ent_coef": float(torch.exp(model.log_ent_coef.detach())[0]) if model.ent_coef_optimizer is not None
               else float(model.ent_coef_tensor),
               "log_ent_coef": float(model.log_ent_coef.detach()[0]) if model.ent_coef_optimizer is not None else None,
               "target_entropy": float(model.target_entropy)}
    else:
        ent = None
    obs_space = model.observation_space
    act_space = model.action_space
    coverage = dict(cov)
    coverage["observations"] = len(obs)
    coverage["observations_outside_space"] = int(np.sum(np.any((obs < obs_space.low) | (obs > obs_space.high), axis=1)))
    coverage["q_action_sources"] = {s: outputs["q_action_sources"].count(s) for s in sorted(set(outputs["q_action_sources"]))}
    header = {
        "format": FORMAT,
        "config_name": name,
        "model_file": zip_path.name,
        "algo": algo_name,
        "env_id": cfg["env_id"],
        "policy": "MlpPolicy",
        "policy_class": f"{type(pol).__module__}.{type(pol).__name__}",
        "versions": {
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "made_with": "tools/golden/gen_sb3_offpolicy_zip_golden.py (this repository)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "train": {
            "constructor": f"{algo_name}('MlpPolicy', {cfg['env_id']!r}, seed={seed}, device='cpu', verbose=0, "
            f"policy_kwargs={pk_repr!r}, action_noise={noise_code}, "
            + ", ".join(f"{k}={v!r}" for k, v in cfg["kwargs"].items()) + ")",
            "seed": seed,
            "learn": f"model.learn(total_timesteps={cfg['total_timesteps']})",
            "num_timesteps_done": int(model.num_timesteps),
            "n_updates": int(model._n_updates),
        },
        "observation_space": space_json(obs_space),
        "action_space": space_json(act_space),
        "use_sde": bool(model.use_sde),
        "squash_output": bool(pol.squash_output),
        "n_critics": pol.critic.n_critics,
        "share_features_extractor": pol.share_features_extractor,
        "networks": networks,
        "entropy_coefficient": ent,
        "log_std_clamp": [-20.0, 2.0] if is_sac and not model.use_sde else None,
        **({"sde": {"log_std_init": float(pol.actor.log_std_init), "use_expln": bool(pol.actor.use_expln),
                    "clip_mean": float(pol.actor.clip_mean), "full_std": bool(pol.actor.full_std),
                    "learn_features": bool(pol.actor.action_dist.learn_features)}}
           if is_sac and model.use_sde else {}),
        "squash_epsilon": model.actor.action_dist.epsilon if is_sac else None,
        "zip_members": members,
        "data_fields": data_fields(data),
        "state_dicts": state,
        "layout": layout(algo_name),
        "notes": notes(algo_name, bool(model.use_sde)),
        "observation_sampling": f"{N_ROLLOUT_OBS} observations sampled (rng = np.random.default_rng({seed}), "
        f"choice without replacement, kept in time order) from a {ROLLOUT_STEPS}-step rollout of the loaded "
        f"model's deterministic policy (gym.make({cfg['env_id']!r}), reset(seed={cfg['obs_seeds'][0]})), "
        f"{N_ROLLOUT_OBS} from a {ROLLOUT_STEPS}-step rollout with rng.uniform(low, high) actions "
        f"(reset(seed={cfg['obs_seeds'][1]})), then {len(cfg['extreme_obs'])} hand-picked extreme observations "
        "(bounds, and far outside the observation space: SB3 does not clip observations)",
        "coverage": coverage,
    }
    return {
        "header": header,
        "observation_sources": sources,
        "observations": f64list(obs),
        "outputs": outputs,
    }


def layout(algo: str) -> dict:
    sac = algo == "SAC"
    d = {
        "observations": "[N][obs_dim] float32 (widened exactly): the inputs of every output; observation_sources[i] says where row i came from",
        "outputs.deterministic_action": "[N][act_dim] float32, env units: model.predict(observations, deterministic=True)[0] (actor's deterministic output in [-1, 1], then unscale_action; squash_output=True so no clipping)",
        "outputs.q_actions / q_action_sources": "[N][act_dim] float32 scaled actions in [-1, 1] paired with observations[i] for the Q-values; source per row: 'actor_deterministic' (the actor's deterministic scaled action), 'constant' (-1, 0, 1 in all dims), 'uniform' (rng.uniform(-1, 1))",
        "outputs.critic_q / critic_target_q": "[n_critics][N]: head i of critic / critic_target on (observations, q_actions): Q_i(s, a)",
        "outputs.critic_q1_forward": "[N]: critic.q1_forward(observations, q_actions) (= head 0; TD3's and DDPG's actor loss uses it)",
        "header.state_dicts": "per .pth member of the zip: policy.pth and pytorch_variables.pth: [{key, shape, dtype, sum (float64 sum of the float32 values), first_values (first 4, row-major)}] in the file's order; *.optimizer.pth / ent_coef_optimizer.pth: {param_groups (as saved; 'params' = parameter indices), state: [{index, param (the policy state-dict key 'policy.<key>' or 'pytorch_variables.log_ent_coef' of that index), step, exp_avg and exp_avg_sq summaries}]}",
        "header.data_fields": "the `data` JSON member's fields that describe the model, as an importer can read them: SB3's cloudpickled objects keep readable keys beside ':serialized:' (dropped here, as are the dunder entries of pickled classes except __module__ and every string holding a memory address); a pickled class's name is given as class_from___init__, parsed from its __init__ repr (e.g. policy_class: __module__ stable_baselines3.sac.policies, class_from___init__ SACPolicy)",
        "header.networks": "per network: net_arch (hidden sizes), activation_fn, the torch module repr, param_order (named_parameters(); state-dict key = '<network>.' + name)",
        "header.zip_members": "the zip's members in order with their uncompressed sizes (data's size varies between runs: start_time and memory addresses)",
    }
    if sac:
        d.update({
            "outputs.actor_mean": "[N][act_dim] mu(latent_pi(obs)), before tanh",
            "outputs.actor_log_std_unclamped / actor_log_std": "[N][act_dim] log_std(latent_pi(obs)) before and after clamp(-20, 2)",
            "outputs.actor_deterministic_scaled_action": "[N][act_dim] actor(obs, deterministic=True) = tanh(actor_mean)",
            "outputs.sample_eps / sample_gaussian_actions / sample_actions / sample_log_prob": "SB3's actor.action_log_prob(observations) after torch.manual_seed(header.train.seed): eps [N][act_dim] = the standard normal Normal.rsample drew (feed it), gaussian_actions u = mean + eps * std, actions = tanh(u) (scaled), log_prob [N] (log_prob(actions, gaussian_actions=u): no atanh)",
            "outputs.log_prob_of_q_actions": "[N] SquashedDiagGaussianDistribution.log_prob(q_actions) with gaussian_actions=None, i.e. through the atanh inverse with clamping (see notes)",
        })
    else:
        d.update({
            "outputs.actor_output / actor_target_output": "[N][act_dim] actor(obs) and actor_target(obs): tanh of the last Linear, in [-1, 1]",
        })
    return d


COMMON_NOTES = """Everything was computed by the model re-loaded from the zip (ALGO.load(zip, device='cpu')), in eval mode, under torch.no_grad, float32 on CPU with one torch thread. Semantics read from the installed SB3 2.9.2 sources (sac/policies.py, td3/policies.py, common/policies.py, common/distributions.py, common/torch_layers.py, common/base_class.py, sac/sac.py, td3/td3.py, ddpg/ddpg.py); tools/golden/check_sb3_offpolicy_zip_golden.py recomputes every output from the zip's tensors with its own functional code.
ZIP (BaseAlgorithm.save): members data (JSON), pytorch_variables.pth, policy.pth, actor.optimizer.pth, critic.optimizer.pth (+ ent_coef_optimizer.pth for SAC with a learned alpha), _stable_baselines3_version, system_info.txt; all stored (no compression). The replay buffer is not in the zip (save_replay_buffer writes it separately). Every .pth is a torch.save zip archive. policy.pth = policy.state_dict(): keys '<network>.<param>' for SAC: actor, critic, critic_target; TD3/DDPG: actor, actor_target, critic, critic_target (header.state_dicts['policy.pth'] lists them in order). pytorch_variables.pth = {'log_ent_coef': [1]} (SAC, learned alpha; alpha = exp(log_ent_coef)), {'ent_coef_tensor': []} (SAC, fixed alpha: a 0-dim float32 tensor) or {} (TD3/DDPG). Optimizer files are torch Adam state_dicts: param_groups [{lr, betas, eps 1e-8, weight_decay 0, amsgrad False, ..., params: [0..n-1]}] and state {index: {step (float32 0-dim), exp_avg, exp_avg_sq}}; actor.optimizer's indices follow actor.parameters() (header.networks.actor.param_order) and critic.optimizer's critic.parameters() (with share_features_extractor=False, the default of both policies; FlattenExtractor has no parameters either way).
DATA: policy_kwargs holds only what was passed (plus DDPG's n_critics=1, which DDPG.__init__ adds). Defaults of these policies when a key is absent: net_arch [256, 256] (SAC) / [400, 300] (TD3, DDPG) for actor and critics, activation_fn ReLU (NOT Tanh as for A2C/PPO's ActorCriticPolicy), n_critics 2, share_features_extractor False, use_sde False, log_std_init -3 (gSDE only), clip_mean 2.0 (gSDE only), features_extractor_class FlattenExtractor, normalize_images True (Box obs: no effect). net_arch is a list (same for actor and critics) or dict(pi=[...], qf=[...]). activation_fn, when passed, is a class repr string "<class 'torch.nn.modules.activation.Tanh'>" beside the pickle. observation_space / action_space: Box fields dtype, _shape, low / high (numpy's printed form, 8 significant decimals at most), bounded_below / bounded_above. policy_class.__module__ = stable_baselines3.sac.policies (SACPolicy) or stable_baselines3.td3.policies (TD3Policy, also DDPG's).
NETWORKS: FlattenExtractor = identity on the flat Box obs. Linear: y = x W^T + b, W [out, in]. create_mlp(in, out, net_arch, act) = Linear(in, h0), act, Linear(h0, h1), act, ..., [Linear(h_last, out)] so Linear layers sit at the even indices 0, 2, 4, ... of the Sequential. ContinuousCritic: n_critics heads qf{i} = create_mlp(obs_dim + act_dim, 1, qf net_arch, act), each on cat([obs, action], dim=1) (obs first, action SCALED to [-1, 1]); forward returns one [B, 1] tensor per head; q1_forward = head 0. critic_target has the same structure.
ACTION SCALING (common/policies.py, float32 numpy): unscale_action(s) = low + (0.5 * (s + 1.0) * (high - low)); scale_action(a) = 2.0 * ((a - low) / (high - low)) - 1.0. predict() of these policies (squash_output=True) unscales the actor's [-1, 1] output and does not clip."""

SAC_NOTES = """SAC ACTOR (sac/policies.Actor, use_sde=False): latent_pi = create_mlp(obs_dim, -1, pi net_arch, act) (hidden layers and activations only: latent_pi.0, latent_pi.2, ...; with an empty net_arch latent_pi is empty and the heads read the observation); mu = Linear(last, act_dim); log_std = Linear(last, act_dim) (key 'actor.log_std.weight' / '.bias': a Linear head, not a free parameter as in A2C/PPO); mean = mu(latent); log_std = clamp(log_std(latent), -20, 2). Deterministic action (scaled) = tanh(mean). SquashedDiagGaussianDistribution(epsilon=1e-6): std = ones_like(mean) * exp(log_std); Normal(mean, std). Sample: eps ~ N(0, 1) [B, act_dim] (Normal.rsample: loc + eps * scale), u = mean + eps * std, action = tanh(u). log_prob(action, u) = sum over action dims of Normal.log_prob(u) = -((u - mean) ** 2) / (2 * std ** 2) - log(std) - log(sqrt(2 * pi)) (torch evaluates u - mean, not eps * std), then minus sum over dims of log(1 - action ** 2 + 1e-6). log_prob(action) without u: u = atanh(clamp(action, -1 + eps32, 1 - eps32)) with eps32 = torch.finfo(float32).eps = 1.1920928955078125e-07 and atanh(x) = 0.5 * (log1p(x) - log1p(-x)); the correction still uses the unclamped action (so log(1e-6) per dim at exactly +-1). The entropy coefficient lives outside the policy: pytorch_variables.pth (header.entropy_coefficient)."""

TD3_NOTES = """TD3 / DDPG ACTOR (td3/policies.Actor): mu = create_mlp(obs_dim, act_dim, pi net_arch, act, squash_output=True) = Linear, act, ..., Linear, Tanh (keys actor.mu.0, actor.mu.2, ..., the last Linear at index 2 * len(net_arch)); output in [-1, 1]; actor_target has the same structure. DDPG = TD3Policy with n_critics=1 (so only qf0) and policy_delay 1, target_policy_noise 0.1, target_noise_clip 0.0 (training only)."""


SAC_SDE_NOTES = """SAC WITH gSDE (use_sde=True; header.sde): mu = nn.Sequential(Linear(last, act_dim), Hardtanh(-clip_mean, clip_mean)) when clip_mean > 0 (keys actor.mu.0.weight / .bias), else Linear (actor.mu.weight); actor.log_std is a parameter [latent, act_dim] (no log_std Linear head, no clamp). StateDependentNoiseDistribution(full_std=True, use_expln, learn_features=True, squash_output=True, epsilon=1e-6): latent_sde = latent_pi(obs); std matrix = get_std(log_std) (exp, or expln); scale = sqrt(mm(latent_sde ** 2, std ** 2) + 1e-6). Deterministic action = tanh(mean). outputs.actor_latent_sde [N][latent], actor_std_matrix [latent][act_dim]. Sample: after torch.manual_seed(header.train.seed), actor.reset_noise(N) draws exploration_mat = eps_single * std ([latent, act], outputs.sample_eps_single / exploration_mat) and exploration_matrices = eps_per_env * std ([N, latent, act]); actor.action_log_prob(observations) then uses row i's own matrix (N rows = N matrices: bmm), actions = tanh(mean + latent_sde @ M_i) (outputs.sample_actions) and log_prob(actions) = Normal(mean, scale).log_prob(atanh(clamp(actions, -1 + eps32, 1 - eps32))) summed, minus sum log(1 - tanh(that) ** 2 + 1e-6) (outputs.sample_log_prob); actor(observations[:1]) (one row) uses exploration_mat (outputs.sample_action_row0_single_matrix). log_prob_of_q_actions: the same log_prob of q_actions. The exploration matrices are not in the zip."""


def notes(algo: str, sde: bool = False) -> str:
    return COMMON_NOTES + "\n" + (SAC_NOTES if algo == "SAC" else TD3_NOTES) + ("\n" + SAC_SDE_NOTES if sde else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--only", action="append", choices=sorted(CONFIGS), help="run only these configs")
    ap.add_argument("--check", action="store_true", help="run check_sb3_offpolicy_zip_golden.py on the written files")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.only or list(CONFIGS):
        doc = run_config(name, copy.deepcopy(CONFIGS[name]), args.out)
        path = args.out / f"{name}_outputs.json"
        text = dumps(doc) + "\n"
        path.write_text(text)
        written.append(path)
        zsize = (args.out / doc["header"]["model_file"]).stat().st_size
        print(f"{path} {len(text)} bytes, zip {zsize} bytes: {json.dumps(doc['header']['coverage'])}")
    if args.check:
        sys.path.insert(0, str(HERE))
        import check_sb3_offpolicy_zip_golden

        ok = check_sb3_offpolicy_zip_golden.main([str(p) for p in written])
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

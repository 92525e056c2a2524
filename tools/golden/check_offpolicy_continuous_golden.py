#!/usr/bin/env python3
"""Independent replay of the SB3 SAC / TD3 / DDPG update golden files (numpy + plain torch tensors).

Usage (from the repository root; needs numpy and torch, not stable-baselines3)::

    /opt/sb3venv/bin/python tools/golden/check_offpolicy_continuous_golden.py            # every such file
    /opt/sb3venv/bin/python tools/golden/check_offpolicy_continuous_golden.py FILE.json ...

Every file in ``tests/golden/sb3/`` whose ``header.format`` is ``"sb3_sac_update_golden/1"``,
``"sb3_td3_update_golden/1"`` or ``"sb3_ddpg_update_golden/1"`` is re-derived from its own content
and from the formulas of its ``header.notes`` only (no SB3 code runs here):

- collection: every stored replay row against its env step (terminal observation as next_obs,
  truncations as timeouts), the action pipeline ``buffer_action = clip(scale(unscaled) + noise, -1, 1)``
  and ``env_action = unscale(buffer_action)`` in numpy float32 (bit for bit), the action noise
  from its recorded normal draws (Normal: ``f32(draw)``; Ornstein-Uhlenbeck: the float64 recursion,
  reset at every episode end), and the policy's output on each observation recomputed from the
  parameters of that moment (SAC: ``tanh(mean + eps * exp(log_std))`` with the recorded eps);
- every sampled batch re-gathered from the replay buffer rebuilt out of ``steps[].stored`` at the
  recorded ``batch_inds`` / ``env_indices`` (bit for bit);
- every gradient step replayed in float32 with this file's own functional networks (``F.linear``,
  ReLU, tanh), losses, autograd gradients, torch-formula Adam and Polyak updates, fed only the
  recorded batch and noise (SAC's two eps draws, TD3's target noise) and CHAINED from its own
  parameters and Adam moments (never reset to the recording), like the Rust parity tests: SAC's
  log-probabilities, alpha, alpha's loss, targets, Q-values, losses; TD3's smoothed next actions,
  targets, Q-values, losses, the delay; the parameters of every network after every step; the
  final Adam moments; the logged means and the learning-rate schedule.

Errors are ``|got - want| / max(1, |want|)`` (the parity tests' measure); a value over 1e-5 is a
failure. Prints one report per file and exits 1 on a failure.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

FORMATS = ("sb3_sac_update_golden/1", "sb3_td3_update_golden/1", "sb3_ddpg_update_golden/1")
TOL = 1e-5
F32 = np.float32


def arr32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def t32(x) -> torch.Tensor:
    return torch.from_numpy(arr32(x))


def bits_equal(a, b) -> bool:
    a, b = arr32(a), arr32(b)
    return a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())


class Err:
    """Max relative error |got - want| / max(1, |want|) and bit-match counts."""

    def __init__(self):
        self.max = 0.0
        self.n = 0
        self.bits = 0

    def add(self, got, want) -> float:
        g = np.asarray(got.detach().numpy() if isinstance(got, torch.Tensor) else got, dtype=np.float64).reshape(-1)
        w = np.asarray(want, dtype=np.float64).reshape(-1)
        assert g.shape == w.shape, (g.shape, w.shape)
        e = float(np.max(np.abs(g - w) / np.maximum(1.0, np.abs(w)))) if g.size else 0.0
        self.max = max(self.max, e)
        self.n += g.size
        self.bits += int((g.astype(np.float32).view(np.uint32) == w.astype(np.float32).view(np.uint32)).sum())
        return e

    def report(self) -> dict:
        return {"max_rel_err": self.max, "values": self.n, "bit_exact": self.bits}


def lr_schedule(desc):
    if isinstance(desc, (int, float)):
        return lambda p: float(desc)
    assert desc.startswith("linear: ") and desc.endswith(" * progress_remaining"), desc
    v = float(desc[len("linear: "):-len(" * progress_remaining")])
    return lambda p: v * p


# --------------------------------------------------------------------------------------------
# functional networks


def load_params(d: dict) -> dict:
    """network -> name -> float32 leaf tensor (requires_grad)."""
    out = {}
    for net, params in d.items():
        if net == "log_ent_coef":
            out[net] = torch.tensor(arr32(params)).requires_grad_(True)
            continue
        out[net] = {n: t32(v["values"]).reshape(v["shape"]).requires_grad_(True) for n, v in params.items()}
    return out


def layer_indices(params: dict, prefix: str) -> list[int]:
    idx = sorted({int(n.split(".")[-2]) for n in params if n.startswith(prefix + ".")})
    return idx


def mlp(params: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Linear layers prefix.{i} with ReLU between them (no activation after the last)."""
    idx = layer_indices(params, prefix)
    for k, i in enumerate(idx):
        x = torch.nn.functional.linear(x, params[f"{prefix}.{i}.weight"], params[f"{prefix}.{i}.bias"])
        if k + 1 < len(idx):
            x = torch.relu(x)
    return x


def critic_heads(params: dict, obs, actions) -> list[torch.Tensor]:
    x = torch.cat([obs, actions], dim=1)
    heads = sorted({n.split(".")[0] for n in params})
    return [mlp(params, h, x) for h in heads]


def sac_dist(params: dict, obs):
    idx = layer_indices(params, "latent_pi")
    x = obs
    for i in idx:
        x = torch.relu(torch.nn.functional.linear(x, params[f"latent_pi.{i}.weight"], params[f"latent_pi.{i}.bias"]))
    mean = torch.nn.functional.linear(x, params["mu.weight"], params["mu.bias"])
    log_std = torch.clamp(torch.nn.functional.linear(x, params["log_std.weight"], params["log_std.bias"]), -20.0, 2.0)
    return mean, log_std


def sac_sample(params: dict, obs, eps):
    """(mean, log_std, action, log_prob) of the squashed Gaussian with the given eps."""
    mean, log_std = sac_dist(params, obs)
    std = torch.ones_like(mean) * log_std.exp()
    u = mean + eps * std
    a = torch.tanh(u)
    var = std ** 2
    lp = (-((u - mean) ** 2) / (2 * var) - std.log() - math.log(math.sqrt(2 * math.pi))).sum(dim=1)
    lp = lp - torch.sum(torch.log(1 - a ** 2 + 1e-6), dim=1)
    return mean, log_std, a, lp


def sde_settings(h: dict) -> dict | None:
    """gSDE settings of a SAC file (header.policy_kwargs_effective), None without gSDE."""
    kw = h["policy_kwargs_effective"]
    if not kw.get("use_sde"):
        return None
    return {"use_expln": kw["use_expln"], "clip_mean": kw["clip_mean"], "eps": kw["sde_epsilon"]}


def sde_std(log_std, sde: dict):
    if not sde["use_expln"]:
        return torch.exp(log_std)
    below = torch.exp(log_std) * (log_std <= 0)
    safe = log_std * (log_std > 0) + sde["eps"]
    above = (torch.log1p(safe) + 1.0) * (log_std > 0)
    return below + above


def sde_dist(params: dict, obs, sde: dict):
    """(mean, latent_sde, std matrix, scale) of SAC's gSDE actor (header.notes)."""
    idx = layer_indices(params, "latent_pi")
    x = obs
    for i in idx:
        x = torch.relu(torch.nn.functional.linear(x, params[f"latent_pi.{i}.weight"], params[f"latent_pi.{i}.bias"]))
    mu = "mu.0" if sde["clip_mean"] > 0 else "mu"
    mean = torch.nn.functional.linear(x, params[f"{mu}.weight"], params[f"{mu}.bias"])
    if sde["clip_mean"] > 0:
        mean = torch.nn.functional.hardtanh(mean, -sde["clip_mean"], sde["clip_mean"])
    std = sde_std(params["log_std"], sde)
    scale = torch.sqrt(torch.mm(x ** 2, std ** 2) + sde["eps"])
    return mean, x, std, scale


def sde_log_prob(mean, scale, a):
    eps = torch.finfo(a.dtype).eps
    y = a.clamp(min=-1.0 + eps, max=1.0 - eps)
    u = 0.5 * (y.log1p() - (-y).log1p())
    lp = (-((u - mean) ** 2) / (2 * scale ** 2) - scale.log() - math.log(math.sqrt(2 * math.pi))).sum(dim=1)
    return lp - torch.sum(torch.log(1.0 - torch.tanh(u) ** 2 + 1e-6), dim=1)


def sde_sample(params: dict, obs, eps_single, sde: dict):
    """(mean, action, log_prob) with the exploration matrix eps_single * std (training)."""
    mean, latent, std, scale = sde_dist(params, obs, sde)
    mat = eps_single * std
    a = torch.tanh(mean + torch.mm(latent, mat))
    return mean, a, sde_log_prob(mean, scale, a)


def td3_actor(params: dict, obs):
    return torch.tanh(mlp(params, "mu", obs))


def mse(a, b):
    return ((a - b) ** 2).mean()


class Adam:
    """torch's single-tensor Adam (header.notes), on a list of leaf tensors."""

    def __init__(self, params: list[torch.Tensor], betas, eps):
        self.params = params
        self.b1, self.b2 = betas
        self.eps = eps
        self.step_t = torch.tensor(0.0)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        self.step_t += 1
        step = self.step_t.item()
        bc1 = 1 - self.b1 ** step
        bc2 = 1 - self.b2 ** step
        step_size = lr / bc1
        bc2_sqrt = math.sqrt(bc2)
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.lerp_(g, 1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)


def polyak(src: dict, dst: dict, tau: float) -> None:
    with torch.no_grad():
        for n in src:
            dst[n].mul_(1 - tau)
            torch.add(dst[n], src[n], alpha=tau, out=dst[n])


# --------------------------------------------------------------------------------------------


class Buffer:
    def __init__(self, rows: int, n_envs: int, obs_dim: int, act_dim: int):
        self.rows, self.n_envs = rows, n_envs
        self.obs = np.zeros((rows, n_envs, obs_dim), np.float32)
        self.next_obs = np.zeros((rows, n_envs, obs_dim), np.float32)
        self.actions = np.zeros((rows, n_envs, act_dim), np.float32)
        self.rewards = np.zeros((rows, n_envs), np.float32)
        self.dones = np.zeros((rows, n_envs), np.float32)
        self.timeouts = np.zeros((rows, n_envs), np.float32)
        self.pos, self.full = 0, False

    def add(self, st: dict) -> None:
        assert st["pos"] == self.pos, (st["pos"], self.pos)
        p = self.pos
        self.obs[p] = arr32(st["obs"])
        self.next_obs[p] = arr32(st["next_obs"])
        self.actions[p] = arr32(st["action"])
        self.rewards[p] = arr32(st["reward"])
        self.dones[p] = arr32(st["done"])
        self.timeouts[p] = arr32(st["timeout"])
        self.pos += 1
        if self.pos == self.rows:
            self.full, self.pos = True, 0
        assert (st["pos_after"], st["full_after"]) == (self.pos, self.full)

    def sample(self, b, e) -> dict:
        return {
            "observations": self.obs[b, e],
            "actions": self.actions[b, e],
            "next_observations": self.next_obs[b, e],
            "dones": (self.dones[b, e] * (F32(1) - self.timeouts[b, e])).astype(np.float32),
            "rewards": self.rewards[b, e],
        }


def params_at_step(doc: dict, num_timesteps: int) -> dict:
    """Recorded parameters in effect when the env step ending at num_timesteps chose its action."""
    cur = doc["initial_params"]
    for g in doc["gradient_steps"]:
        if g["num_timesteps"] < num_timesteps:
            cur = g["params_after"]
    return cur


def check_collection(doc: dict, meas: dict, fail) -> None:
    h = doc["header"]
    hp = h["hyperparameters_effective"]
    algo = h["algo"]
    n_envs = h["n_envs"]
    low = arr32(h["action_space"]["low"])
    high = arr32(h["action_space"]["high"])
    noise = hp["action_noise"]
    ou_state = None
    if noise is not None and noise["class"] == "OrnsteinUhlenbeckActionNoise":
        ou_state = [np.zeros(len(noise["mean"]), np.float64) for _ in range(n_envs)]
    sde = sde_settings(h) if algo == "SAC" else None
    resets = doc.get("sde_resets", [])
    pol_err = Err()
    sac_tanh_bits = 0
    sac_tanh_n = 0
    pipeline_ok = 0
    for i, s in enumerate(doc["steps"]):
        if s["num_timesteps"] != (i + 1) * n_envs:
            fail(f"step {i}: num_timesteps")
        if i > 0 and not bits_equal(s["obs"], doc["steps"][i - 1]["new_obs"]):
            fail(f"step {i}: obs != previous new_obs")
        before = s["num_timesteps"] - n_envs
        warm = before < hp["learning_starts"] and not (sde is not None and hp["use_sde_at_warmup"])
        want_src = "warmup_random" if warm else "policy"
        if s["action_source"] != want_src:
            fail(f"step {i}: action_source {s['action_source']}")
        unscaled = arr32(s["unscaled_action"])
        if s["action_source"] == "policy":
            pol = s["policy"]
            out = arr32(pol["actor_output"])
            if not bits_equal(unscaled, low + (F32(0.5) * (out + F32(1.0)) * (high - low))):
                fail(f"step {i}: unscaled action != unscale(actor_output)")
            params = load_params(params_at_step(doc, s["num_timesteps"]))
            obs = t32(s["obs"])
            with torch.no_grad():
                if sde is not None:
                    cur = [r for r in resets if r["before_step"] <= i][-1]
                    mean, latent, _, _ = sde_dist(params["actor"], obs, sde)
                    if n_envs == 1:
                        sde_noise = torch.mm(latent, t32(cur["exploration_mat"]))
                    else:
                        sde_noise = torch.bmm(latent.unsqueeze(1), t32(cur["exploration_matrices"])).squeeze(1)
                    pol_err.add(mean, pol["mean"])
                    pol_err.add(torch.tanh(mean + sde_noise), pol["actor_output"])
                elif algo == "SAC":
                    mean, log_std, a, _ = sac_sample(params["actor"], obs, t32(pol["eps"]))
                    pol_err.add(mean, pol["mean"])
                    pol_err.add(log_std, pol["log_std"])
                    pol_err.add(a, pol["actor_output"])
                    # from the recorded mean/log_std/eps
                    m, ls, ep = t32(pol["mean"]), t32(pol["log_std"]), t32(pol["eps"])
                    a2 = torch.tanh(m + ep * (torch.ones_like(m) * ls.exp())).numpy()
                    sac_tanh_n += a2.size
                    sac_tanh_bits += int((a2.view(np.uint32) == out.view(np.uint32)).sum())
                else:
                    pol_err.add(td3_actor(params["actor"], obs), pol["actor_output"])
        scaled = (F32(2.0) * ((unscaled - low) / (high - low)) - F32(1.0)).astype(np.float32)
        if noise is not None:
            nz = arr32(s["action_noise"])
            draws = s["action_noise_draws"]
            if len(draws) != n_envs:
                fail(f"step {i}: {len(draws)} noise draws for {n_envs} envs")
            for e in range(n_envs):
                d = np.asarray(draws[e], np.float64)
                if noise["class"] == "NormalActionNoise":
                    want = d.astype(np.float32)
                else:
                    th, dt = noise["theta"], noise["dt"]
                    mu = np.asarray(noise["mean"], np.float64)
                    sig = np.asarray(noise["sigma"], np.float64)
                    x = ou_state[e] + th * (mu - ou_state[e]) * dt + sig * np.sqrt(dt) * d
                    ou_state[e] = x
                    want = x.astype(np.float32)
                if not bits_equal(nz[e], want):
                    fail(f"step {i} env {e}: action noise")
            scaled = np.clip(scaled + nz, -1, 1).astype(np.float32)
        elif s["action_noise"] is not None:
            fail(f"step {i}: action noise without a noise config")
        ok = bits_equal(s["buffer_action"], scaled)
        env_a = (low + (F32(0.5) * (scaled + F32(1.0)) * (high - low))).astype(np.float32)
        ok &= bits_equal(s["env_action"], env_a)
        pipeline_ok += int(ok)
        if not ok:
            fail(f"step {i}: action pipeline (scale / noise / clip / unscale)")
        st = s["stored"]
        for e in range(n_envs):
            want_next = s["terminal_observation"][e] if s["dones"][e] else s["new_obs"][e]
            if not bits_equal(st["next_obs"][e], want_next):
                fail(f"step {i} env {e}: stored next_obs")
            if s["dones"][e] and not s["truncated"][e]:
                fail(f"step {i} env {e}: a Pendulum termination?")
            if s["dones"][e] and ou_state is not None:
                ou_state[e] = np.zeros_like(ou_state[e])
        if not (bits_equal(st["obs"], s["obs"]) and bits_equal(st["action"], s["buffer_action"])
                and bits_equal(st["reward"], s["rewards"])
                and st["done"] == [float(d) for d in s["dones"]]
                and st["timeout"] == [float(t) for t in s["truncated"]]):
            fail(f"step {i}: stored row differs from the step")
    meas["collection_policy_output"] = pol_err.report()
    meas["collection_action_pipeline_bit_exact_steps"] = pipeline_ok
    if sde is not None:
        std_ok = 0
        for k, r in enumerate(resets):
            params = load_params(params_at_step(doc, r["num_timesteps"] + n_envs))
            with torch.no_grad():
                std = sde_std(params["actor"]["log_std"], sde)
                ok = bits_equal((t32(r["eps_single"]) * std).numpy(), r["exploration_mat"])
                ok &= bits_equal((t32(r["eps_per_env"]) * std).numpy(), r["exploration_matrices"])
            std_ok += int(ok)
            if not ok:
                fail(f"sde reset {k}: matrices != eps * std")
        meas["collection_sde_resets_matrices_bit_exact"] = [std_ok, len(resets)]
    elif algo == "SAC":
        meas["collection_tanh_from_recorded_mean_log_std_eps_bits"] = [sac_tanh_bits, sac_tanh_n]
    if pol_err.max > TOL:
        fail(f"collection policy output error {pol_err.max}")


def analyse(doc: dict) -> tuple[dict, list[str]]:
    """Returns (measurements, failures)."""
    h = doc["header"]
    assert h["format"] in FORMATS, h["format"]
    algo = h["algo"]
    sac = algo == "SAC"
    hp = h["hyperparameters_effective"]
    n_envs, total = h["n_envs"], h["total_timesteps"]
    obs_dim = h["observation_space"]["shape"][0]
    act_dim = h["action_space"]["shape"][0]
    gamma = hp["gamma"]
    tau = hp["tau"]
    fails: list[str] = []
    meas: dict = {}

    def fail(msg):
        if len(fails) < 30:
            fails.append(msg)

    check_collection(doc, meas, fail)

    # ---- train calls: schedule, number of gradient steps
    sched = lr_schedule(h["hyperparameters"]["learning_rate"])
    for t in doc["train_calls"]:
        if not t["num_timesteps"] > hp["learning_starts"]:
            fail(f"train {t['index']}: before learning_starts")
        prog = 1.0 - float(t["num_timesteps"]) / float(total)
        if t["progress_remaining"] != prog or t["learning_rate"] != sched(prog):
            fail(f"train {t['index']}: learning rate {t['learning_rate']} != {sched(prog)}")
        want = hp["gradient_steps"] if hp["gradient_steps"] >= 0 else hp["train_freq"]["frequency"] * n_envs
        if t["gradient_steps"] != want:
            fail(f"train {t['index']}: gradient_steps {t['gradient_steps']} != {want}")

    # ---- replay: own parameters and optimizers, chained
    P = load_params(doc["initial_params"])
    ob = h["optimizers"]
    opt = {
        "actor": Adam(list(P["actor"].values()), ob["actor"]["betas"], ob["actor"]["eps"]),
        "critic": Adam(list(P["critic"].values()), ob["critic"]["betas"], ob["critic"]["eps"]),
    }
    learned = sac and hp["ent_coef_learned"]
    if learned:
        opt["ent_coef"] = Adam([P["log_ent_coef"]], ob["ent_coef"]["betas"], ob["ent_coef"]["eps"])
    fixed_alpha = None if (not sac or learned) else F32(hp["ent_coef"])
    sde = sde_settings(h) if sac else None
    target_entropy = hp.get("target_entropy")

    E = {k: Err() for k in ("batch", "pi", "next_pi", "target_actions", "next_q", "target_q", "current_q",
                            "critic_loss", "actor_loss", "ent_coef", "ent_coef_loss", "q_pi", "actor_pi",
                            "params", "adam", "logged", "grad_norm_step0", "grads_step0")}
    buf = Buffer(hp["replay_buffer_rows"], n_envs, obs_dim, act_dim)
    steps = doc["steps"]
    applied = 0
    per_call_losses: dict = {}
    n_sampled_trunc = 0
    delay_ok = True
    for g in doc["gradient_steps"]:
        while applied < len(steps) and steps[applied]["num_timesteps"] <= g["num_timesteps"]:
            buf.add(steps[applied]["stored"])
            applied += 1
        if (g["buffer_pos"], g["buffer_full"]) != (buf.pos, buf.full):
            fail(f"gradient step {g['index']}: buffer position")
        b = np.asarray(g["batch_inds"], np.int64)
        e = np.asarray(g["env_indices"], np.int64)
        ub = buf.rows if buf.full else buf.pos
        if g["upper_bound"] != ub or b.min() < 0 or b.max() >= ub or e.min() < 0 or e.max() >= n_envs:
            fail(f"gradient step {g['index']}: indices out of range")
        n_sampled_trunc += int(buf.timeouts[b, e].sum())
        want = buf.sample(b, e)
        for k, v in want.items():
            if not bits_equal(g["batch"][k], v):
                fail(f"gradient step {g['index']}: batch {k} differs from the rebuilt buffer")
        E["batch"].add(arr32(g["batch"]["rewards"]), want["rewards"])
        lr = g["learning_rate"]
        call = doc["train_calls"][g["train_call"]]
        if lr != call["learning_rate"]:
            fail(f"gradient step {g['index']}: learning rate")
        obs = torch.from_numpy(want["observations"])
        act = torch.from_numpy(want["actions"])
        nobs = torch.from_numpy(want["next_observations"])
        r = torch.from_numpy(want["rewards"]).reshape(-1, 1)
        d = torch.from_numpy(want["dones"]).reshape(-1, 1)
        losses = per_call_losses.setdefault(g["train_call"], {"critic": [], "actor": [], "ent_coef": [], "ent_coef_loss": []})
        opt_rec = {o["optimizer"]: o for o in g["optimizer_steps"]}

        def grad_check(key, grads, names):
            if key not in opt_rec:
                fail(f"gradient step {g['index']}: no recorded {key} optimizer step")
                return
            o = opt_rec[key]
            if o["lr"] != lr:
                fail(f"gradient step {g['index']}: {key} lr")
            if g["index"] == 0:
                norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x, 2) for x in grads]), 2)
                E["grad_norm_step0"].add(norm.reshape(1), [o["grad_norm"]])
                for n, x in zip(names, grads):
                    E["grads_step0"].add(x, o["grads"][n]["values"])

        if sde is not None:
            eps_sde = t32(g["sde"]["eps_single"])
            with torch.no_grad():
                mat = eps_sde * sde_std(P["actor"]["log_std"], sde)
            E["pi"].add(mat, g["sde"]["exploration_mat"])
            mean, a_pi, lp = sde_sample(P["actor"], obs, eps_sde, sde)
            E["pi"].add(mean, g["pi"]["mean"])
        if sac and sde is None:
            mean, log_std, a_pi, lp = sac_sample(P["actor"], obs, t32(g["pi"]["eps"]))
            E["pi"].add(mean, g["pi"]["mean"])
            E["pi"].add(log_std, g["pi"]["log_std"])
        if sac:
            E["pi"].add(a_pi, g["pi"]["actions"])
            E["pi"].add(lp, g["pi"]["log_prob"])
            lp = lp.reshape(-1, 1)
            if learned:
                alpha = torch.exp(P["log_ent_coef"].detach())
                ent_loss = -(P["log_ent_coef"] * (lp + target_entropy).detach()).mean()
                E["ent_coef_loss"].add(ent_loss.reshape(1), [g["ent_coef_loss"]])
                (gr,) = torch.autograd.grad(ent_loss, [P["log_ent_coef"]])
                grad_check("ent_coef", [gr], ["log_ent_coef"])
                opt["ent_coef"].step([gr], lr)
                losses["ent_coef_loss"].append(float(ent_loss.item()))
            else:
                alpha = torch.tensor(fixed_alpha)
            E["ent_coef"].add(alpha.reshape(1), [g["ent_coef"]])
            losses["ent_coef"].append(float(alpha.reshape(-1)[0].item()))
            with torch.no_grad():
                if sde is not None:
                    nm, na, nlp = sde_sample(P["actor"], nobs, eps_sde, sde)
                else:
                    nm, nls, na, nlp = sac_sample(P["actor"], nobs, t32(g["next_pi"]["eps"]))
                    E["next_pi"].add(nls, g["next_pi"]["log_std"])
                E["next_pi"].add(nm, g["next_pi"]["mean"])
                E["next_pi"].add(na, g["next_pi"]["actions"])
                E["next_pi"].add(nlp, g["next_pi"]["log_prob"])
                nq_heads = critic_heads(P["critic_target"], nobs, na)
                nq = torch.min(torch.cat(nq_heads, dim=1), dim=1, keepdim=True).values
                nq = nq - alpha * nlp.reshape(-1, 1)
                tq = r + (1 - d) * gamma * nq
            E["target_actions"].add(na, g["target_next_actions"])
        else:
            with torch.no_grad():
                raw = t32(g["target_noise_raw"])
                clip = hp["target_noise_clip"]
                noise = raw.clamp(-clip, clip)
                if not bits_equal(noise.numpy(), g["target_noise_clipped"]):
                    fail(f"gradient step {g['index']}: clipped target noise")
                mu_t = td3_actor(P["actor_target"], nobs)
                E["target_actions"].add(mu_t, g["actor_target_next"])
                na = (mu_t + noise).clamp(-1, 1)
                E["target_actions"].add(na, g["target_next_actions"])
                nq_heads = critic_heads(P["critic_target"], nobs, na)
                nq = torch.min(torch.cat(nq_heads, dim=1), dim=1, keepdim=True).values
                tq = r + (1 - d) * gamma * nq
            if g["n_updates"] != g["index"] + 1:
                fail(f"gradient step {g['index']}: n_updates {g['n_updates']}")
        for hq, rq in zip(nq_heads, g["next_q_values_per_critic"]):
            E["next_q"].add(hq[:, 0], rq)
        E["target_q"].add(tq[:, 0], g["target_q_values"])
        cq = critic_heads(P["critic"], obs, act)
        if len(cq) != len(g["current_q_values"]):
            fail(f"gradient step {g['index']}: number of critics")
        for hq, rq in zip(cq, g["current_q_values"]):
            E["current_q"].add(hq[:, 0], rq)
        closs = 0
        for hq in cq:
            closs = closs + mse(hq, tq)
        if sac:
            closs = 0.5 * closs
        E["critic_loss"].add(closs.reshape(1), [g["critic_loss"]])
        losses["critic"].append(float(closs.item()))
        cnames = list(P["critic"])
        cgr = torch.autograd.grad(closs, [P["critic"][n] for n in cnames])
        grad_check("critic", cgr, cnames)
        opt["critic"].step(list(cgr), lr)
        anames = list(P["actor"])
        if sac:
            qpi = critic_heads(P["critic"], obs, a_pi)
            for hq, rq in zip(qpi, g["q_values_pi"]):
                E["q_pi"].add(hq[:, 0], rq)
            min_q = torch.min(torch.cat(qpi, dim=1), dim=1, keepdim=True).values
            aloss = (alpha * lp - min_q).mean()
            E["actor_loss"].add(aloss.reshape(1), [g["actor_loss"]])
            losses["actor"].append(float(aloss.item()))
            agr = torch.autograd.grad(aloss, [P["actor"][n] for n in anames])
            grad_check("actor", agr, anames)
            opt["actor"].step(list(agr), lr)
            want_tu = g["step_in_call"] % hp["target_update_interval"] == 0
            if want_tu != g["target_update"]:
                fail(f"gradient step {g['index']}: target update flag")
            if want_tu:
                polyak(P["critic"], P["critic_target"], tau)
        else:
            want_au = g["n_updates"] % hp["policy_delay"] == 0
            if want_au != g["actor_update"] or want_au != g["target_update"]:
                delay_ok = False
                fail(f"gradient step {g['index']}: policy delay flags")
            if want_au:
                a_pi = td3_actor(P["actor"], obs)
                E["actor_pi"].add(a_pi, g["actor_actions_pi"])
                q1 = critic_heads(P["critic"], obs.detach(), a_pi)[0]
                aloss = -q1.mean()
                E["actor_loss"].add(aloss.reshape(1), [g["actor_loss"]])
                losses["actor"].append(float(aloss.item()))
                agr = torch.autograd.grad(aloss, [P["actor"][n] for n in anames])
                grad_check("actor", agr, anames)
                opt["actor"].step(list(agr), lr)
                polyak(P["critic"], P["critic_target"], tau)
                polyak(P["actor"], P["actor_target"], tau)
        # parameters after the step
        for net, params in g["params_after"].items():
            if net == "log_ent_coef":
                E["params"].add(P["log_ent_coef"], params)
                continue
            for n, v in params.items():
                E["params"].add(P[net][n], v["values"])
        if sac:
            E["ent_coef"].add([float(torch.exp(P["log_ent_coef"]).item()) if learned else float(fixed_alpha)], [g["ent_coef_after"]])

    # ---- logged values
    n_upd = 0
    last_actor = None
    for t in doc["train_calls"]:
        lg = t["logged"]
        ls = per_call_losses.get(t["index"])
        if ls is None:
            fail(f"train {t['index']}: no gradient steps")
            continue
        n_upd += t["gradient_steps"]
        if lg["train/n_updates"] != n_upd:
            fail(f"train {t['index']}: logged n_updates")
        E["logged"].add([lg["train/critic_loss"]], [float(np.mean(ls["critic"]))])
        if ls["actor"]:
            last_actor = float(np.mean(ls["actor"]))
        if last_actor is not None:
            E["logged"].add([lg["train/actor_loss"]], [last_actor])
        if sac:
            E["logged"].add([lg["train/ent_coef"]], [float(np.mean(ls["ent_coef"]))])
            if learned:
                E["logged"].add([lg["train/ent_coef_loss"]], [float(np.mean(ls["ent_coef_loss"]))])
        if lg["train/learning_rate"] != t["learning_rate"]:
            fail(f"train {t['index']}: logged learning rate")
    if doc["final"]["n_updates"] != n_upd:
        fail("final n_updates")

    # ---- final params and Adam state
    for net, params in doc["final"]["params"].items():
        if net == "log_ent_coef":
            E["params"].add(P["log_ent_coef"], params)
            continue
        for n, v in params.items():
            E["params"].add(P[net][n], v["values"])
    for key, st in doc["final"]["optimizer_state"].items():
        o = opt[key]
        if st["step"] != float(o.step_t.item()):
            fail(f"final {key} Adam step count {st['step']} != {o.step_t.item()}")
        names = ["log_ent_coef"] if key == "ent_coef" else list(P[key])
        for n, m, v in zip(names, o.m, o.v):
            E["adam"].add(m, st["exp_avg"][n]["values"])
            E["adam"].add(v, st["exp_avg_sq"][n]["values"])

    for k, v in E.items():
        if v.n:
            meas[k] = v.report()
            if v.max > TOL:
                fail(f"{k}: max relative error {v.max} > {TOL}")
    meas["gradient_steps"] = len(doc["gradient_steps"])
    meas["sampled_truncations"] = n_sampled_trunc
    if not sac:
        meas["policy_delay_flags_ok"] = delay_ok
    meas.update(polyak_observations(doc))
    return meas, fails


def polyak_observations(doc: dict) -> dict:
    """For each target update, recorded target after vs two float32 models from the recorded
    target before and source parameters: separate roundings, and one rounding of
    t1 + f32(tau) * p (FMA, emulated in float64)."""
    tau = doc["header"]["hyperparameters_effective"]["tau"]
    one_m, a = F32(1 - tau), F32(tau)
    prev = doc["initial_params"]
    n = n_sep = n_fma = 0
    pairs = [("critic", "critic_target"), ("actor", "actor_target")]
    for g in doc["gradient_steps"]:
        cur = g["params_after"]
        if g["target_update"]:
            for src, dst in pairs:
                if dst not in cur:
                    continue
                for k in cur[dst]:
                    t = arr32(prev[dst][k]["values"])
                    p = arr32(cur[src][k]["values"])
                    after = arr32(cur[dst][k]["values"])
                    t1 = (t * one_m).astype(np.float32)
                    sep = (t1 + (a * p).astype(np.float32)).astype(np.float32)
                    fma = (t1.astype(np.float64) + np.float64(a) * p.astype(np.float64)).astype(np.float32)
                    n += after.size
                    n_sep += int((sep.view(np.uint32) == after.view(np.uint32)).sum())
                    n_fma += int((fma.view(np.uint32) == after.view(np.uint32)).sum())
        prev = cur
    return {"polyak_elements": n, "polyak_match_separate_roundings": n_sep, "polyak_match_fma_f64_emulated": n_fma}


def float_observations(meas: dict) -> dict:
    """What the generator copies into header.float_observations."""
    keep = ("target_q", "critic_loss", "actor_loss", "params", "pi", "next_pi", "ent_coef_loss",
            "polyak_elements", "polyak_match_separate_roundings", "polyak_match_fma_f64_emulated",
            "collection_tanh_from_recorded_mean_log_std_eps_bits")
    out = {k: meas[k] for k in keep if k in meas}
    out["explanation"] = (
        "Measured by tools/golden/check_offpolicy_continuous_golden.py: an independent float32 torch replay "
        "(own functional networks, losses, autograd gradients, torch-formula Adam and Polyak) chained from "
        "its own parameters over the whole file, fed the recorded batches and noise. Each entry: max "
        "|got - want| / max(1, |want|), number of values compared, how many were bit-identical. polyak_*: for "
        "every target update, recorded target after vs f32(f32(t * f32(1 - tau)) + f32(f32(tau) * p)) "
        "(separate roundings) and vs one rounding of f32(t * f32(1 - tau)) + f32(tau) * p (FMA). "
        "collection_tanh_*: [bit-identical, total] of tanh(mean + eps * exp(log_std)) from the recorded "
        "collection mean/log_std/eps."
    )
    return out


def main(paths: list[str] | None = None) -> bool:
    if not paths:
        root = Path(os.environ.get("RL_GOLDEN_DIR") or Path(__file__).resolve().parents[2] / "tests" / "golden") / "sb3"
        paths = []
        for p in sorted(glob.glob(str(root / "*.json"))):
            with open(p) as f:
                d = json.load(f)
            if isinstance(d, dict) and isinstance(d.get("header"), dict) and d["header"].get("format") in FORMATS:
                paths.append(p)
        if not paths:
            print(f"no {' / '.join(FORMATS)} files in {root}")
            return False
    all_ok = True
    for p in paths:
        with open(p) as f:
            doc = json.load(f)
        meas, fails = analyse(doc)
        size = os.path.getsize(p)
        print(f"== {p} ({size} bytes): {'OK' if not fails else 'FAILED'}")
        print("   " + json.dumps(meas))
        for m in fails:
            print("   FAIL: " + m)
        all_ok &= not fails
    return all_ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) else 1)

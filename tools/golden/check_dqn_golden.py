#!/usr/bin/env python3
"""Internal-consistency check of the SB3 DQN update golden files (plain numpy, no torch).

Usage (any Python 3 with numpy; from the repository root)::

    /opt/sb3venv/bin/python tools/golden/check_dqn_golden.py                 # every sb3_dqn_update_golden file
    /opt/sb3venv/bin/python tools/golden/check_dqn_golden.py FILE.json ...

Every file in ``tests/golden/sb3/`` whose ``header.format`` is ``"sb3_dqn_update_golden/1"`` is
reloaded and re-derived from its own content:

- the replay buffer is rebuilt from ``steps[].stored`` and every sampled batch is recomputed from
  ``batch_inds`` / ``env_indices`` (1-step: ``done * (1 - timeout)``; n-step: an independent loop
  implementation of NStepReplayBuffer._get_samples), compared bit for bit;
- ``target_q = r + (1 - done) * disc * max_a Q_target(s', a)`` in float32 from the recorded batch and
  target-net outputs (bit matches and max error), ``current_q = gather(Q(s), a)``;
- the Huber loss from the recorded current/target Q values (float64 mean; relative error);
- ``train/loss`` = mean of the losses, ``n_updates``, the learning rate schedule, the number of
  gradient steps per ``train()`` (also for ``gradient_steps=-1``), the clip flag;
- the epsilon schedule (bit exact), the action-source decisions (warm-up / ``u < epsilon``), what
  ``_store_transition`` stored (terminal observation as next_obs, timeouts), the ring-buffer positions;
- target-update counting (``_n_calls % max(target_update_interval // n_envs, 1) == 0``) and, for
  ``tau = 1``, target parameters == q_net parameters at that time;
- the first Adam step (float64 re-computation from the recorded pre-clip gradient).

Prints one report per file (max errors; float32 rounding is expected where noted) and exits 1 on a
failure.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

FORMAT = "sb3_dqn_update_golden/1"
F32 = np.float32


def arr32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def bits_equal(a, b) -> bool:
    a, b = arr32(a), arr32(b)
    return a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())


def lr_schedule(desc):
    if isinstance(desc, (int, float)):
        return lambda p: float(desc)
    assert desc.startswith("linear: ") and desc.endswith(" * progress_remaining"), desc
    v = float(desc[len("linear: "):-len(" * progress_remaining")])
    return lambda p: v * p


def epsilon(hp, progress_remaining: float) -> float:
    start, end, frac = hp["exploration_initial_eps"], hp["exploration_final_eps"], hp["exploration_fraction"]
    if (1 - progress_remaining) > frac:
        return end
    return start + (1 - progress_remaining) * (end - start) / frac


class Buffer:
    """Replay buffer rebuilt from steps[].stored."""

    def __init__(self, rows: int, n_envs: int, obs_dim: int):
        self.rows, self.n_envs = rows, n_envs
        self.obs = np.zeros((rows, n_envs, obs_dim), np.float32)
        self.next_obs = np.zeros((rows, n_envs, obs_dim), np.float32)
        self.actions = np.zeros((rows, n_envs), np.int64)
        self.rewards = np.zeros((rows, n_envs), np.float32)
        self.dones = np.zeros((rows, n_envs), np.float32)
        self.timeouts = np.zeros((rows, n_envs), np.float32)
        self.pos, self.full = 0, False

    def add(self, st: dict) -> None:
        assert st["pos"] == self.pos, (st["pos"], self.pos)
        p = self.pos
        self.obs[p] = arr32(st["obs"])
        self.next_obs[p] = arr32(st["next_obs"])
        self.actions[p] = np.asarray(st["action"], np.int64)
        self.rewards[p] = arr32(st["reward"])
        self.dones[p] = arr32(st["done"])
        self.timeouts[p] = arr32(st["timeout"])
        self.pos += 1
        if self.pos == self.rows:
            self.full, self.pos = True, 0
        assert (st["pos_after"], st["full_after"]) == (self.pos, self.full)

    def sample_1step(self, b, e) -> dict:
        return {
            "observations": self.obs[b, e],
            "actions": self.actions[b, e],
            "next_observations": self.next_obs[b, e],
            "dones": (self.dones[b, e] * (F32(1) - self.timeouts[b, e])).astype(np.float32),
            "rewards": self.rewards[b, e],
            "discounts": None,
        }

    def sample_nstep(self, b, e, n: int, gamma: float) -> dict:
        """Loop re-implementation of NStepReplayBuffer._get_samples (see header.notes)."""
        to = self.timeouts.copy()
        last = (self.pos - 1) % self.rows
        to[last] = np.logical_or(self.timeouts[last], np.logical_not(self.dones[last]))
        g32 = F32(gamma)
        weights = [np.power(g32, F32(j)) for j in range(n)]
        out = {k: [] for k in ("observations", "actions", "next_observations", "dones", "rewards", "discounts", "_truncated", "_length", "_cut_by_head", "_wraps")}
        for bi, ei in zip(b, e):
            length, cut = n, False
            for j in range(n):
                idx = (bi + j) % self.rows
                if self.dones[idx, ei] or to[idx, ei]:
                    length = j + 1
                    cut = not (self.dones[idx, ei] or self.timeouts[idx, ei])
                    break
            acc = F32(0)
            for j in range(length):
                acc = F32(acc + F32(self.rewards[(bi + j) % self.rows, ei] * weights[j]))
            li = (bi + length - 1) % self.rows
            out["observations"].append(self.obs[bi, ei])
            out["actions"].append(self.actions[bi, ei])
            out["next_observations"].append(self.next_obs[li, ei])
            out["dones"].append(F32(self.dones[li, ei] * (F32(1) - F32(to[li, ei]))))
            out["rewards"].append(acc)
            out["discounts"].append(np.power(g32, F32(length)))
            out["_truncated"].append(bool(self.timeouts[li, ei]))
            out["_length"].append(length)
            out["_cut_by_head"].append(cut)
            out["_wraps"].append(bi + length - 1 >= self.rows)
        return {k: np.asarray(v) for k, v in out.items()}


def huber_mean(cur, tgt) -> float:
    d = np.asarray(cur, np.float64) - np.asarray(tgt, np.float64)
    a = np.abs(d)
    return float(np.mean(np.where(a < 1.0, 0.5 * d * d, a - 0.5)))


def analyse(doc: dict) -> tuple[dict, list[str]]:
    """Returns (measurements, failures)."""
    h = doc["header"]
    assert h["format"] == FORMAT
    hp = h["hyperparameters_effective"]
    n_envs, total = h["n_envs"], h["total_timesteps"]
    obs_dim = h["observation_space"]["shape"][0]
    n_step = hp["n_steps"]
    gamma = hp["gamma"]
    fails: list[str] = []
    meas: dict = {}

    def fail(msg):
        if len(fails) < 30:
            fails.append(msg)

    # ---- steps: epsilon, action sources, stored rows, target-update counting
    every = hp["target_update_every_n_calls"]
    eps_prev = 0.0
    for i, s in enumerate(doc["steps"]):
        if s["num_timesteps"] != (i + 1) * n_envs:
            fail(f"step {i}: num_timesteps")
        if s["exploration_rate"] != eps_prev:
            fail(f"step {i}: exploration_rate used != previous exploration_rate_after")
        prog = 1.0 - float(s["num_timesteps"]) / float(total)
        if s["progress_remaining"] != prog:
            fail(f"step {i}: progress_remaining")
        if s["exploration_rate_after"] != epsilon(hp, prog):
            fail(f"step {i}: exploration_rate_after {s['exploration_rate_after']} != {epsilon(hp, prog)}")
        eps_prev = s["exploration_rate_after"]
        before = s["num_timesteps"] - n_envs
        if before < hp["learning_starts"]:
            ok = s["action_source"] == "warmup_random" and s["epsilon_draw"] is None
        else:
            want = "epsilon_random" if s["epsilon_draw"] < s["exploration_rate"] else "greedy"
            ok = s["action_source"] == want
        if not ok:
            fail(f"step {i}: action_source {s['action_source']}")
        if s["action_source"] == "greedy":
            q = np.asarray(s["greedy_q_values"])
            if list(np.argmax(q, axis=1)) != s["actions"]:
                fail(f"step {i}: greedy action != argmax q")
        st = s["stored"]
        for e in range(n_envs):
            want_next = s["terminal_observation"][e] if s["dones"][e] else s["new_obs"][e]
            if not bits_equal(st["next_obs"][e], want_next):
                fail(f"step {i} env {e}: stored next_obs")
            if s["dones"][e] != (s["terminal_observation"][e] is not None):
                fail(f"step {i} env {e}: terminal_observation presence")
        if not (bits_equal(st["obs"], s["obs"]) and st["action"] == s["actions"]
                and bits_equal(st["reward"], s["rewards"])
                and st["done"] == [float(d) for d in s["dones"]]
                and st["timeout"] == [float(t) for t in s["truncated"]]):
            fail(f"step {i}: stored row differs from the step")
        if i > 0 and not bits_equal(s["obs"], doc["steps"][i - 1]["new_obs"]):
            fail(f"step {i}: obs != previous new_obs")
        if s["n_calls"] != i + 1:
            fail(f"step {i}: n_calls")
        if (s["n_calls"] % every == 0) != ("target_update_index" in s):
            fail(f"step {i}: target update counting")

    # ---- target updates
    params_at = [doc["initial_params"]] + [g["params_after"] for g in doc["gradient_steps"]]
    tu_exact = 0
    for tu in doc["target_updates"]:
        s = doc["steps"][tu["n_calls"] - 1]
        if s.get("target_update_index") != tu["index"] or s["num_timesteps"] != tu["num_timesteps"]:
            fail(f"target update {tu['index']}: step link")
        if tu["tau"] != hp["tau"]:
            fail(f"target update {tu['index']}: tau")
        # gradient steps at the same num_timesteps run AFTER the collection that made the update
        done_before = sum(1 for g in doc["gradient_steps"] if g["num_timesteps"] < tu["num_timesteps"])
        if tu["after_gradient_steps"] != done_before:
            fail(f"target update {tu['index']}: after_gradient_steps {tu['after_gradient_steps']} != {done_before}")
        if tu["tau"] == 1.0:
            src = params_at[tu["after_gradient_steps"]]
            if all(bits_equal(src[k]["values"], tu["target_params"][k]["values"]) for k in src):
                tu_exact += 1
            else:
                fail(f"target update {tu['index']}: tau=1 copy differs")
    meas["tau1_target_copies_exact"] = tu_exact

    # ---- train calls
    sched = lr_schedule(h["hyperparameters"]["learning_rate"])
    n_updates = 0
    for t in doc["train_calls"]:
        if not t["num_timesteps"] > hp["learning_starts"]:
            fail(f"train {t['index']}: before learning_starts")
        prog = 1.0 - float(t["num_timesteps"]) / float(total)
        if t["progress_remaining"] != prog or t["learning_rate"] != sched(prog):
            fail(f"train {t['index']}: learning rate {t['learning_rate']} != {sched(prog)}")
        # the rollout that preceded this call: unit 'step' = frequency VecEnv steps; unit 'episode' =
        # the steps since the end of the frequency-th previous episode end
        if hp["train_freq"]["unit"] == "step":
            rollout_len = hp["train_freq"]["frequency"] * n_envs
        else:
            ends = [s["num_timesteps"] for s in doc["steps"] if any(s["dones"]) and s["num_timesteps"] < t["num_timesteps"]]
            k = hp["train_freq"]["frequency"]
            start = ends[-k] if len(ends) >= k else 0
            rollout_len = t["num_timesteps"] - start
        want = hp["gradient_steps"] if hp["gradient_steps"] >= 0 else rollout_len
        if t["gradient_steps"] != want:
            fail(f"train {t['index']}: gradient_steps {t['gradient_steps']} != {want}")
        gs = doc["gradient_steps"][t["first_gradient_step"]: t["first_gradient_step"] + t["gradient_steps"]]
        n_updates += t["gradient_steps"]
        lg = t["logged"]
        if lg["train/loss"] != float(np.mean([g["loss"] for g in gs])):
            fail(f"train {t['index']}: logged loss")
        if lg["train/n_updates"] != n_updates or lg["train/learning_rate"] != t["learning_rate"]:
            fail(f"train {t['index']}: logged n_updates/lr")
        last_step = [s for s in doc["steps"] if s["num_timesteps"] == t["num_timesteps"]][0]
        if lg["rollout/exploration_rate"] != last_step["exploration_rate_after"]:
            fail(f"train {t['index']}: logged exploration_rate")
        for g in gs:
            if g["train_call"] != t["index"] or g["learning_rate"] != t["learning_rate"] or g["num_timesteps"] != t["num_timesteps"]:
                fail(f"gradient step {g['index']}: train link")
    if doc["final"]["n_updates"] != n_updates:
        fail("final n_updates")

    # ---- gradient steps: buffer samples, targets, loss
    buf = Buffer(hp["replay_buffer_rows"], n_envs, obs_dim)
    steps = doc["steps"]
    applied = 0
    batch_fields = ("observations", "actions", "next_observations", "dones", "rewards", "discounts")
    batch_match = {k: 0 for k in batch_fields}
    n_samples = 0
    tq_match = tq_total = 0
    tq_max_abs = 0.0
    huber_max_rel = 0.0
    gather_ok = 0
    clip_ok = True
    g32 = F32(gamma)
    n_sampled_trunc = n_sampled_term = 0
    nstep_lengths: dict = {}
    nstep_cut = nstep_wraps = nstep_pos0 = 0
    for g in doc["gradient_steps"]:
        while applied < len(steps) and steps[applied]["num_timesteps"] <= g["num_timesteps"]:
            buf.add(steps[applied]["stored"])
            applied += 1
        if (g["buffer_pos"], g["buffer_full"]) != (buf.pos, buf.full):
            fail(f"gradient step {g['index']}: buffer position")
        ub = buf.rows if buf.full else buf.pos
        b = np.asarray(g["batch_inds"], np.int64)
        e = np.asarray(g["env_indices"], np.int64)
        if g["upper_bound"] != ub or b.min() < 0 or b.max() >= ub or e.min() < 0 or e.max() >= n_envs:
            fail(f"gradient step {g['index']}: indices out of range")
        want = buf.sample_1step(b, e) if n_step == 1 else buf.sample_nstep(b, e, n_step, gamma)
        if n_step == 1:
            n_sampled_trunc += int(buf.timeouts[b, e].sum())
            n_sampled_term += int((buf.dones[b, e] * (1 - buf.timeouts[b, e])).sum())
        else:
            n_sampled_trunc += int(sum(want["_truncated"]))
            n_sampled_term += int(want["dones"].sum())
            for L in want["_length"]:
                nstep_lengths[int(L)] = nstep_lengths.get(int(L), 0) + 1
            nstep_cut += int(sum(want["_cut_by_head"]))
            nstep_wraps += int(sum(want["_wraps"]))
            nstep_pos0 += int(buf.pos == 0)
        B = len(b)
        n_samples += B
        for k in batch_fields:
            got = g["batch"][k]
            if want[k] is None:
                if got is None:
                    batch_match[k] += B
                continue
            if k == "actions":
                eq = np.asarray(got) == want[k]
            else:
                gw = arr32(got).reshape(B, -1)
                ww = np.asarray(want[k], np.float32).reshape(B, -1)
                eq = (gw.view(np.uint32) == ww.view(np.uint32)).all(axis=1)
            batch_match[k] += int(eq.sum())
        # targets
        nq_all = arr32(g["next_q_values_all"])
        nq = nq_all.max(axis=1)
        if not bits_equal(nq, g["next_q_values"]):
            fail(f"gradient step {g['index']}: next_q max")
        r = arr32(g["batch"]["rewards"])
        d = arr32(g["batch"]["dones"])
        disc = np.full(B, g32, np.float32) if g["batch"]["discounts"] is None else arr32(g["batch"]["discounts"])
        # every operation rounded to float32 (numpy float32 scalars, no FMA)
        tq = np.asarray([F32(ri + F32(F32(F32(1) - di) * ci) * ni) for ri, di, ci, ni in zip(r, d, disc, nq)], np.float32)
        rec_tq = arr32(g["target_q_values"])
        tq_total += B
        tq_match += int((tq.view(np.uint32) == rec_tq.view(np.uint32)).sum())
        ref64 = r.astype(np.float64) + (1.0 - d.astype(np.float64)) * disc.astype(np.float64) * nq.astype(np.float64)
        tq_max_abs = max(tq_max_abs, float(np.max(np.abs(ref64 - rec_tq.astype(np.float64)))))
        # current q
        cq_all = arr32(g["current_q_values_all"])
        acts = np.asarray(g["batch"]["actions"], np.int64)
        if bits_equal(cq_all[np.arange(B), acts], g["current_q_values"]):
            gather_ok += 1
        else:
            fail(f"gradient step {g['index']}: gathered current q")
        # loss
        hl = huber_mean(arr32(g["current_q_values"]), rec_tq)
        huber_max_rel = max(huber_max_rel, abs(hl - g["loss"]) / max(abs(g["loss"]), 1e-30))
        if g["clipped"] != (g["grad_norm_before_clip"] > g["max_grad_norm"]) or g["max_grad_norm"] != hp["max_grad_norm"]:
            clip_ok = False
        pn = np.asarray(list(g["grad_norms_per_param_before_clip"].values()), np.float64)
        if abs(math.sqrt(float(np.sum(pn * pn))) - g["grad_norm_before_clip"]) > 1e-5 * g["grad_norm_before_clip"] + 1e-12:
            fail(f"gradient step {g['index']}: total norm vs per-param norms")
    if not clip_ok:
        fail("clipped flag / max_grad_norm")
    meas["gradient_steps"] = len(doc["gradient_steps"])
    meas["sampled_timeouts"] = n_sampled_trunc
    meas["sampled_terminations"] = n_sampled_term
    meas["batch_samples"] = n_samples
    if n_step > 1:
        meas["nstep_window_lengths"] = {str(k): nstep_lengths[k] for k in sorted(nstep_lengths)}
        meas["nstep_windows_cut_by_newest_row"] = nstep_cut
        meas["nstep_windows_wrapping_ring"] = nstep_wraps
        meas["nstep_gradient_steps_with_pos_0"] = nstep_pos0
    meas["batch_fields_bit_exact"] = batch_match
    meas["target_q_bits_match"] = tq_match
    meas["target_q_values"] = tq_total
    meas["target_q_max_abs_err_vs_f64"] = tq_max_abs
    meas["huber_loss_max_rel_err"] = huber_max_rel
    meas["current_q_gather_exact_steps"] = gather_ok
    for k in batch_fields:
        if batch_match[k] != n_samples:
            fail(f"batch field {k}: {batch_match[k]}/{n_samples} bit exact")

    # ---- the first Adam step, float64 from the recorded pre-clip gradient
    if doc["gradient_steps"]:
        g0 = doc["gradient_steps"][0]
        opt = h["optimizer"]
        b1, b2 = opt["betas"]
        eps = opt["eps"]
        lr = g0["learning_rate"]
        norm = g0["grad_norm_before_clip"]
        coef = min(g0["max_grad_norm"] / (norm + 1e-6), 1.0)
        err = 0.0
        for k, v in g0["grads_before_clip"].items():
            gr = np.asarray(v["values"], np.float64) * coef
            m = (1 - b1) * gr
            vv = (1 - b2) * gr * gr
            upd = (lr / (1 - b1)) * m / (np.sqrt(vv) / math.sqrt(1 - b2) + eps)
            p0 = np.asarray(doc["initial_params"][k]["values"], np.float64)
            p1 = np.asarray(g0["params_after"][k]["values"], np.float64)
            err = max(err, float(np.max(np.abs((p0 - upd) - p1))))
        meas["first_adam_step_max_abs_err"] = err
        if err > 1e-6:
            fail(f"first Adam step error {err}")
    return meas, fails


def float_observations(doc: dict) -> tuple[dict, dict]:
    """(float observations, coverage additions) for the generator's header; raises on an inconsistency."""
    meas, fails = analyse(doc)
    if fails:
        raise AssertionError("inconsistent recording:\n" + "\n".join(fails))
    keep = ("target_q_bits_match", "target_q_values", "target_q_max_abs_err_vs_f64", "huber_loss_max_rel_err")
    out = {k: meas[k] for k in keep}
    cov = {
        "sampled_timeouts": meas["sampled_timeouts"],
        "sampled_terminations": meas["sampled_terminations"],
    }
    if doc["header"]["hyperparameters_effective"]["n_steps"] > 1:
        bm = meas["batch_fields_bit_exact"]
        out["nstep_samples"] = meas["batch_samples"]
        out["nstep_rewards_bits_match"] = bm["rewards"]
        out["nstep_discounts_bits_match"] = bm["discounts"]
        out["nstep_dones_match"] = bm["dones"]
        out["nstep_next_observations_match"] = bm["next_observations"]
        for k in ("nstep_window_lengths", "nstep_windows_cut_by_newest_row", "nstep_windows_wrapping_ring",
                  "nstep_gradient_steps_with_pos_0"):
            cov[k] = meas[k]
    return out, cov


def main(paths: list[str] | None = None) -> bool:
    if not paths:
        root = Path(__file__).resolve().parents[2] / "tests" / "golden" / "sb3"
        paths = []
        for p in sorted(glob.glob(str(root / "*.json"))):
            with open(p) as f:
                d = json.load(f)
            if isinstance(d, dict) and isinstance(d.get("header"), dict) and d["header"].get("format") == FORMAT:
                paths.append(p)
        if not paths:
            print(f"no {FORMAT} files in {root}")
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

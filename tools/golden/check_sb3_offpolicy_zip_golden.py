#!/usr/bin/env python3
"""Check the SB3 SAC / TD3 / DDPG zip goldens (``*_outputs.json`` with ``header.format`` =
``"sb3_offpolicy_zip_outputs/1"`` and the zips they name) for self-consistency.

For every file:

1. **SB3 reload**: ``ALGO.load(zip)`` and every output recomputed by SB3 itself from the recorded
   inputs (observations, Q-value actions, the seed of the log-prob sample); these must match
   bit for bit on the reference stack (the report says how many values differ at all, and fails
   beyond 1e-6 * max(1, |value|) in case a different torch build is used).
2. **Independent recomputation**: the tensors of ``policy.pth`` (and ``pytorch_variables.pth``)
   read straight from the zip, networks rebuilt functionally from the state-dict keys and the
   header's activation (``F.linear`` + ReLU / Tanh), the formulas of ``header.notes`` written out
   (unscale_action in float32 numpy, tanh squashing, clamped log_std, the squashed Gaussian
   log-prob with and without the atanh inverse, each Q head on ``cat([obs, action])``): every
   output must match within 1e-5 * max(1, |value|).
3. **Layout**: zip members, every state-dict key / shape / dtype / sum / first values, the
   optimizer param groups and states (each state's shapes equal those of the parameter it is
   named after), ``data_fields`` against the zip's ``data`` member, the spaces, n_critics and the
   entropy coefficient.

Usage (from the repository root; needs the reference stack of
``gen_sb3_offpolicy_zip_golden.py``)::

    /opt/sb3venv/bin/python tools/golden/check_sb3_offpolicy_zip_golden.py [FILE...]

Without arguments it checks every such file in ``$RL_GOLDEN_DIR/sb3/`` (when set) or the
repository's ``tests/golden/sb3/``, and fails when there is none. Exits 1 on any inconsistency.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import zipfile
from pathlib import Path

import torch

torch.set_num_threads(1)

import numpy as np  # noqa: E402
import torch.distributions.normal as normal_module  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from stable_baselines3 import DDPG, SAC, TD3  # noqa: E402

FORMAT = "sb3_offpolicy_zip_outputs/1"
ALGOS = {"SAC": SAC, "TD3": TD3, "DDPG": DDPG}
SB3_TOL = 1e-6
OWN_TOL = 1e-5
HERE = Path(__file__).resolve().parent


class Report:
    def __init__(self, name: str):
        self.name = name
        self.errors: list[str] = []
        self.lines: list[str] = []

    def fail(self, msg: str) -> None:
        self.errors.append(msg)

    def close(self, key: str, ours, theirs, tol: float, kind: str) -> None:
        a = np.asarray(ours, dtype=np.float64).reshape(-1)
        b = np.asarray(theirs, dtype=np.float64).reshape(-1)
        if a.shape != b.shape:
            self.fail(f"{kind} {key}: {a.size} values, file has {b.size}")
            return
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            self.fail(f"{kind} {key}: non-finite values")
            return
        err = np.abs(a - b)
        scaled = err / np.maximum(1.0, np.abs(b))
        worst = float(scaled.max()) if scaled.size else 0.0
        ndiff = int(np.sum(a != b))
        self.lines.append(f"  {kind:<4} {key:<36} n={a.size:<4} max|err|={float(err.max()) if err.size else 0.0:.2e} "
                          f"scaled={worst:.2e} differing={ndiff}")
        if worst > tol:
            i = int(scaled.argmax())
            self.fail(f"{kind} {key}[{i}]: {a[i]!r} vs file {b[i]!r} (scaled error {worst:.3e} > {tol:g})")

    def equal(self, what: str, ours, theirs) -> None:
        if ours != theirs:
            self.fail(f"{what}: {ours!r} != file {theirs!r}")


def golden_files(args: list[str]) -> list[Path]:
    if args:
        return [Path(a) for a in args]
    root = Path(os.environ["RL_GOLDEN_DIR"]) if os.environ.get("RL_GOLDEN_DIR") else HERE.parents[1] / "tests" / "golden"
    out = []
    for p in sorted((root / "sb3").glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(d, dict) and isinstance(d.get("header"), dict) and d["header"].get("format") == FORMAT:
            out.append(p)
    return out


# --------------------------------------------------------------------------------------------
# 1. SB3 reload


def check_sb3(doc: dict, zip_path: Path, rep: Report) -> None:
    h = doc["header"]
    model = ALGOS[h["algo"]].load(zip_path, device="cpu")
    model.policy.set_training_mode(False)
    out = doc["outputs"]
    obs = np.asarray(doc["observations"], dtype=np.float32)
    obs_t = torch.as_tensor(obs)
    q_act_t = torch.as_tensor(np.asarray(out["q_actions"], dtype=np.float32))
    det, _ = model.predict(obs, deterministic=True)
    rep.close("deterministic_action", det, out["deterministic_action"], SB3_TOL, "sb3")
    with torch.no_grad():
        if h["algo"] == "SAC" and h["use_sde"]:
            actor = model.actor
            mean, log_std, kw = actor.get_action_dist_params(obs_t)
            rep.close("actor_mean", mean, out["actor_mean"], SB3_TOL, "sb3")
            rep.close("actor_latent_sde", kw["latent_sde"], out["actor_latent_sde"], SB3_TOL, "sb3")
            rep.close("actor_std_matrix", actor.get_std(), out["actor_std_matrix"], SB3_TOL, "sb3")
            rep.close("actor_deterministic_scaled_action", actor(obs_t, deterministic=True),
                      out["actor_deterministic_scaled_action"], SB3_TOL, "sb3")
            drawn = []
            orig = normal_module._standard_normal
            normal_module._standard_normal = lambda *a, **k: drawn.append(orig(*a, **k)) or drawn[-1]
            try:
                torch.manual_seed(h["train"]["seed"])
                actor.reset_noise(obs_t.shape[0])
                actions, log_prob = actor.action_log_prob(obs_t)
            finally:
                normal_module._standard_normal = orig
            rep.equal("number of standard-normal draws", len(drawn), 2)
            rep.close("sample_eps_single", drawn[0], out["sample_eps_single"], SB3_TOL, "sb3")
            rep.close("sample_eps_per_env", drawn[1], out["sample_eps_per_env"], SB3_TOL, "sb3")
            rep.close("sample_actions", actions, out["sample_actions"], SB3_TOL, "sb3")
            rep.close("sample_log_prob", log_prob, out["sample_log_prob"], SB3_TOL, "sb3")
            rep.close("sample_action_row0_single_matrix", actor(obs_t[:1], deterministic=False),
                      out["sample_action_row0_single_matrix"], SB3_TOL, "sb3")
            dist = actor.action_dist.proba_distribution(mean, log_std, **kw)
            rep.close("log_prob_of_q_actions", dist.log_prob(q_act_t), out["log_prob_of_q_actions"], SB3_TOL, "sb3")
        elif h["algo"] == "SAC":
            actor = model.actor
            mean, log_std, _ = actor.get_action_dist_params(obs_t)
            latent = actor.latent_pi(actor.extract_features(obs_t, actor.features_extractor))
            rep.close("actor_mean", mean, out["actor_mean"], SB3_TOL, "sb3")
            rep.close("actor_log_std", log_std, out["actor_log_std"], SB3_TOL, "sb3")
            rep.close("actor_log_std_unclamped", actor.log_std(latent), out["actor_log_std_unclamped"], SB3_TOL, "sb3")
            rep.close("actor_deterministic_scaled_action", actor(obs_t, deterministic=True),
                      out["actor_deterministic_scaled_action"], SB3_TOL, "sb3")
            drawn = []
            orig = normal_module._standard_normal
            normal_module._standard_normal = lambda *a, **k: drawn.append(orig(*a, **k)) or drawn[-1]
            try:
                torch.manual_seed(h["train"]["seed"])
                actions, log_prob = actor.action_log_prob(obs_t)
            finally:
                normal_module._standard_normal = orig
            rep.equal("number of standard-normal draws", len(drawn), 1)
            rep.close("sample_eps", drawn[0], out["sample_eps"], SB3_TOL, "sb3")
            rep.close("sample_gaussian_actions", actor.action_dist.gaussian_actions, out["sample_gaussian_actions"], SB3_TOL, "sb3")
            rep.close("sample_actions", actions, out["sample_actions"], SB3_TOL, "sb3")
            rep.close("sample_log_prob", log_prob, out["sample_log_prob"], SB3_TOL, "sb3")
            dist = actor.action_dist.proba_distribution(mean, log_std)
            rep.close("log_prob_of_q_actions", dist.log_prob(q_act_t), out["log_prob_of_q_actions"], SB3_TOL, "sb3")
        else:
            rep.close("actor_output", model.actor(obs_t), out["actor_output"], SB3_TOL, "sb3")
            rep.close("actor_target_output", model.actor_target(obs_t), out["actor_target_output"], SB3_TOL, "sb3")
        rep.close("critic_q", torch.cat(model.critic(obs_t, q_act_t), dim=1).T, out["critic_q"], SB3_TOL, "sb3")
        rep.close("critic_target_q", torch.cat(model.critic_target(obs_t, q_act_t), dim=1).T, out["critic_target_q"], SB3_TOL, "sb3")
        rep.close("critic_q1_forward", model.critic.q1_forward(obs_t, q_act_t), out["critic_q1_forward"], SB3_TOL, "sb3")


# --------------------------------------------------------------------------------------------
# 2. Independent functional recomputation


def mlp(sd: dict, prefix: str, x: torch.Tensor, act, final_act=None) -> torch.Tensor:
    """Linear layers '<prefix>.<2k>.weight/bias' in index order, `act` between them."""
    idx = sorted({int(k[len(prefix) + 1:].split(".")[0]) for k in sd if k.startswith(prefix + ".")})
    if idx != list(range(0, 2 * len(idx), 2)):
        raise ValueError(f"{prefix}: Linear layers at {idx}, expected even indices from 0")
    for j, i in enumerate(idx):
        x = F.linear(x, sd[f"{prefix}.{i}.weight"], sd[f"{prefix}.{i}.bias"])
        if j + 1 < len(idx):
            x = act(x)
    return final_act(x) if final_act else x


def hidden(sd: dict, prefix: str, x: torch.Tensor, act) -> torch.Tensor:
    """SAC's latent_pi: every Linear followed by the activation."""
    idx = sorted({int(k[len(prefix) + 1:].split(".")[0]) for k in sd if k.startswith(prefix + ".")})
    for i in idx:
        x = act(F.linear(x, sd[f"{prefix}.{i}.weight"], sd[f"{prefix}.{i}.bias"]))
    return x


def normal_log_prob(u, mean, log_std):
    std = torch.ones_like(mean) * log_std.exp()
    return (-((u - mean) ** 2) / (2 * std**2) - std.log() - math.log(math.sqrt(2 * math.pi))).sum(dim=1)


def check_own(doc: dict, z: zipfile.ZipFile, rep: Report) -> None:
    h = doc["header"]
    out = doc["outputs"]
    sd = torch.load(io.BytesIO(z.read("policy.pth")), map_location="cpu", weights_only=True)
    obs_np = np.asarray(doc["observations"], dtype=np.float32)
    obs = torch.as_tensor(obs_np)
    q_act = torch.as_tensor(np.asarray(out["q_actions"], dtype=np.float32))
    acts = {"ReLU": torch.relu, "Tanh": torch.tanh}
    a_act = acts[h["networks"]["actor"]["activation_fn"]]
    c_act = acts[h["networks"]["critic"]["activation_fn"]]
    sub = lambda p: {k[len(p) + 1:]: v for k, v in sd.items() if k.startswith(p + ".")}  # noqa: E731
    with torch.no_grad():
        if h["algo"] == "SAC" and h["use_sde"]:
            a = sub("actor")
            sde = h["sde"]
            latent = hidden(a, "latent_pi", obs, a_act)
            mu = "mu.0" if sde["clip_mean"] > 0 else "mu"
            mean = F.linear(latent, a[f"{mu}.weight"], a[f"{mu}.bias"])
            if sde["clip_mean"] > 0:
                mean = mean.clamp(-sde["clip_mean"], sde["clip_mean"])
            ls = a["log_std"]
            if sde["use_expln"]:
                std = torch.exp(ls) * (ls <= 0) + (torch.log1p(ls * (ls > 0) + 1e-6) + 1.0) * (ls > 0)
            else:
                std = torch.exp(ls)
            scale = torch.sqrt(torch.mm(latent**2, std**2) + 1e-6)
            scaled = torch.tanh(mean)
            rep.close("actor_mean", mean, out["actor_mean"], OWN_TOL, "own")
            rep.close("actor_latent_sde", latent, out["actor_latent_sde"], OWN_TOL, "own")
            rep.close("actor_std_matrix", std, out["actor_std_matrix"], OWN_TOL, "own")
            rep.close("actor_deterministic_scaled_action", scaled, out["actor_deterministic_scaled_action"], OWN_TOL, "own")
            e1 = torch.as_tensor(np.asarray(out["sample_eps_single"], dtype=np.float32))
            e2 = torch.as_tensor(np.asarray(out["sample_eps_per_env"], dtype=np.float32))
            rep.close("exploration_mat", e1 * std, out["exploration_mat"], OWN_TOL, "own")
            rep.close("exploration_matrices", e2 * std, out["exploration_matrices"], OWN_TOL, "own")
            noise = torch.bmm(latent.unsqueeze(1), e2 * std).squeeze(1)
            action = torch.tanh(mean + noise)
            e32 = float(np.finfo(np.float32).eps)

            def sde_lp(act):
                c = act.clamp(-1 + e32, 1 - e32)
                u = 0.5 * (torch.log1p(c) - torch.log1p(-c))
                g = (-((u - mean) ** 2) / (2 * scale**2) - scale.log() - math.log(math.sqrt(2 * math.pi))).sum(dim=1)
                return g - torch.log(1.0 - torch.tanh(u) ** 2 + 1e-6).sum(dim=1)

            rep.close("sample_actions", action, out["sample_actions"], OWN_TOL, "own")
            rep.close("sample_log_prob", sde_lp(action), out["sample_log_prob"], OWN_TOL, "own")
            row0 = torch.tanh(mean[:1] + torch.mm(latent[:1], e1 * std))
            rep.close("sample_action_row0_single_matrix", row0, out["sample_action_row0_single_matrix"], OWN_TOL, "own")
            rep.close("log_prob_of_q_actions", sde_lp(q_act), out["log_prob_of_q_actions"], OWN_TOL, "own")
        elif h["algo"] == "SAC":
            a = sub("actor")
            latent = hidden(a, "latent_pi", obs, a_act)
            mean = F.linear(latent, a["mu.weight"], a["mu.bias"])
            raw = F.linear(latent, a["log_std.weight"], a["log_std.bias"])
            lo, hi = h["log_std_clamp"]
            log_std = raw.clamp(lo, hi)
            scaled = torch.tanh(mean)
            rep.close("actor_mean", mean, out["actor_mean"], OWN_TOL, "own")
            rep.close("actor_log_std_unclamped", raw, out["actor_log_std_unclamped"], OWN_TOL, "own")
            rep.close("actor_log_std", log_std, out["actor_log_std"], OWN_TOL, "own")
            rep.close("actor_deterministic_scaled_action", scaled, out["actor_deterministic_scaled_action"], OWN_TOL, "own")
            eps = torch.as_tensor(np.asarray(out["sample_eps"], dtype=np.float32))
            u = mean + eps * log_std.exp()
            action = torch.tanh(u)
            sq = h["squash_epsilon"]
            lp = normal_log_prob(u, mean, log_std) - torch.log(1 - action**2 + sq).sum(dim=1)
            rep.close("sample_gaussian_actions", u, out["sample_gaussian_actions"], OWN_TOL, "own")
            rep.close("sample_actions", action, out["sample_actions"], OWN_TOL, "own")
            rep.close("sample_log_prob", lp, out["sample_log_prob"], OWN_TOL, "own")
            e32 = float(np.finfo(np.float32).eps)
            c = q_act.clamp(-1 + e32, 1 - e32)
            u2 = 0.5 * (torch.log1p(c) - torch.log1p(-c))
            lp2 = normal_log_prob(u2, mean, log_std) - torch.log(1 - q_act**2 + sq).sum(dim=1)
            rep.close("log_prob_of_q_actions", lp2, out["log_prob_of_q_actions"], OWN_TOL, "own")
        else:
            scaled = mlp(sub("actor"), "mu", obs, a_act, torch.tanh)
            rep.close("actor_output", scaled, out["actor_output"], OWN_TOL, "own")
            rep.close("actor_target_output", mlp(sub("actor_target"), "mu", obs, a_act, torch.tanh),
                      out["actor_target_output"], OWN_TOL, "own")
        low = np.asarray(h["action_space"]["low"], dtype=np.float32)
        high = np.asarray(h["action_space"]["high"], dtype=np.float32)
        s = scaled.numpy()
        det = low + (0.5 * (s + 1.0) * (high - low))
        rep.close("deterministic_action", det, out["deterministic_action"], OWN_TOL, "own")
        x = torch.cat([obs, q_act], dim=1)
        n = h["n_critics"]
        for net in ("critic", "critic_target"):
            c = sub(net)
            heads = sorted({k.split(".")[0] for k in c})
            rep.equal(f"{net} heads", heads, [f"qf{i}" for i in range(n)])
            q = torch.stack([mlp(c, f"qf{i}", x, c_act)[:, 0] for i in range(n)])
            rep.close(f"{net}_q", q, out[f"{net}_q"], OWN_TOL, "own")
            if net == "critic":
                rep.close("critic_q1_forward", q[0], out["critic_q1_forward"], OWN_TOL, "own")


# --------------------------------------------------------------------------------------------
# 3. Layout


def summary_ok(rep: Report, what: str, t: torch.Tensor, rec: dict) -> None:
    flat = t.detach().numpy().reshape(-1)
    rep.equal(f"{what} shape", list(t.shape), rec["shape"])
    rep.equal(f"{what} dtype", str(t.dtype), rec["dtype"])
    rep.equal(f"{what} sum", float(flat.astype(np.float64).sum()), rec["sum"])
    rep.equal(f"{what} first_values", flat[:4].astype(np.float64).tolist(), rec["first_values"])


def check_layout(doc: dict, z: zipfile.ZipFile, rep: Report) -> None:
    h = doc["header"]
    names = [i.filename for i in z.infolist()]
    rep.equal("zip members", names, [m["name"] for m in h["zip_members"]])
    for i in z.infolist():
        if i.compress_type != zipfile.ZIP_STORED:
            rep.fail(f"member {i.filename} is compressed")
    sizes = {i.filename: i.file_size for i in z.infolist()}
    for m in h["zip_members"]:
        if m["name"].endswith(".pth"):
            rep.equal(f"{m['name']} size", sizes.get(m["name"]), m["size"])
    pth = [n for n in names if n.endswith(".pth")]
    rep.equal("state_dicts members", sorted(pth), sorted(h["state_dicts"]))
    sd = torch.load(io.BytesIO(z.read("policy.pth")), map_location="cpu", weights_only=True)
    rep.equal("policy.pth keys", list(sd), [r["key"] for r in h["state_dicts"]["policy.pth"]])
    for r in h["state_dicts"]["policy.pth"]:
        if r["key"] in sd:
            summary_ok(rep, r["key"], sd[r["key"]], r)
    # Network param orders name exactly the policy.pth keys.
    from_nets = [f"{net}.{p}" for net, spec in h["networks"].items() for p in spec["param_order"]]
    rep.equal("networks' params = policy.pth keys", sorted(from_nets), sorted(sd))
    shapes = {f"policy.{k}": list(v.shape) for k, v in sd.items()}
    if "pytorch_variables.pth" in h["state_dicts"]:
        pv = torch.load(io.BytesIO(z.read("pytorch_variables.pth")), map_location="cpu", weights_only=True)
        rep.equal("pytorch_variables keys", list(pv), [r["key"] for r in h["state_dicts"]["pytorch_variables.pth"]])
        for r in h["state_dicts"]["pytorch_variables.pth"]:
            if r["key"] in pv:
                summary_ok(rep, r["key"], pv[r["key"]], r)
                shapes[f"pytorch_variables.{r['key']}"] = list(pv[r["key"]].shape)
        ent = h["entropy_coefficient"]
        if ent is not None:
            if ent["learned"]:
                rep.equal("ent_coef = exp(log_ent_coef)", float(torch.exp(pv["log_ent_coef"].detach())[0]), ent["ent_coef"])
            else:
                rep.equal("ent_coef_tensor", float(pv["ent_coef_tensor"]), ent["ent_coef"])
    for m in pth:
        if m in ("policy.pth", "pytorch_variables.pth"):
            continue
        o = torch.load(io.BytesIO(z.read(m)), map_location="cpu", weights_only=False)
        rec = h["state_dicts"][m]
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in o["param_groups"]]
        rep.equal(f"{m} param_groups", groups, rec["param_groups"])
        rep.equal(f"{m} state indices", sorted(o["state"]), [s["index"] for s in rec["state"]])
        for s in rec["state"]:
            st = o["state"].get(s["index"])
            if st is None:
                continue
            rep.equal(f"{m}[{s['index']}] step", float(st["step"]), s["step"])
            summary_ok(rep, f"{m}[{s['index']}] exp_avg", st["exp_avg"], s["exp_avg"])
            summary_ok(rep, f"{m}[{s['index']}] exp_avg_sq", st["exp_avg_sq"], s["exp_avg_sq"])
            rep.equal(f"{m}[{s['index']}] shape of {s['param']}", list(st["exp_avg"].shape), shapes.get(s["param"]))
    data = json.loads(z.read("data"))
    df = h["data_fields"]

    def readable(v):
        if isinstance(v, dict):
            out = {k: readable(x) for k, x in v.items()
                   if k != ":serialized:" and not (k.startswith("__") and k != "__module__")
                   and not (isinstance(x, str) and " at 0x" in x)}
            init = v.get("__init__")
            if isinstance(init, str) and init.startswith("<function ") and ".__init__" in init:
                out["class_from___init__"] = init[len("<function "):].split(".__init__")[0]
            return out
        return v

    for k, v in df.items():
        dv = readable(data.get(k))
        if k in ("observation_space", "action_space") and isinstance(dv, dict):
            dv.pop("_np_random", None)
        rep.equal(f"data[{k!r}]", dv, v)
    rep.equal("policy_class", (df["policy_class"]["__module__"] + "." + df["policy_class"]["class_from___init__"]),
              h["policy_class"])
    rep.equal("use_sde", bool(data["use_sde"]), h["use_sde"])
    pk = data.get("policy_kwargs") or {}
    rep.equal("n_critics (policy_kwargs or default 2)", pk.get("n_critics", 2), h["n_critics"])
    rep.equal("share_features_extractor (policy_kwargs or default False)", pk.get("share_features_extractor", False),
              h["share_features_extractor"])
    for space in ("observation_space", "action_space"):
        shape = data[space]["_shape"]
        rep.equal(f"{space} shape", shape, h[space]["shape"])
        for bound in ("low", "high"):
            printed = np.array(data[space][bound].strip("[]").split(), dtype=np.float32)
            rep.equal(f"{space} {bound} (printed)", printed.astype(np.float64).tolist(), h[space][bound])


def main(args: list[str]) -> bool:
    files = golden_files(args)
    if not files:
        print("no sb3_offpolicy_zip_outputs files found")
        return False
    ok = True
    for p in files:
        doc = json.loads(Path(p).read_text())
        rep = Report(Path(p).name)
        h = doc["header"]
        if h.get("format") != FORMAT:
            rep.fail(f"format {h.get('format')!r}")
        else:
            zip_path = Path(p).with_name(h["model_file"])
            with zipfile.ZipFile(zip_path) as z:
                check_layout(doc, z, rep)
                check_own(doc, z, rep)
            check_sb3(doc, zip_path, rep)
        status = "OK" if not rep.errors else f"FAILED ({len(rep.errors)})"
        print(f"{rep.name}: {h.get('algo')} {h.get('env_id')} zip {h.get('model_file')}: {status}")
        for line in rep.lines:
            print(line)
        for e in rep.errors:
            print("  ERROR " + e)
        ok = ok and not rep.errors
    print("all consistent" if ok else "INCONSISTENT")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) else 1)

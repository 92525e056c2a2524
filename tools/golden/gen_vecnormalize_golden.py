"""Records SB3 2.9.2 `VecNormalize` over `DummyVecEnv` (Gymnasium 1.4) for the Rust parity test
`crates/rl-env/tests/vec_normalize.rs`.

Re-run (deterministic; overwrites the files):
    /opt/sb3venv/bin/python tools/golden/gen_vecnormalize_golden.py [out_dir]
out_dir defaults to tests/golden/vec_normalize. Actions come from seeded NumPy generators; every
sub-env i is reset with seed `seed + i` (venv.seed(seed); venv.reset()).
"""

import json
import os
import sys

import gymnasium
import numpy as np
import stable_baselines3
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

RUNS = [
    dict(name="cartpole4_default", env_id="CartPole-v1", n_envs=4, max_episode_steps=30, n_steps=150, seed=3, cfg={}, freeze_at=None),
    dict(name="cartpole9_tl15", env_id="CartPole-v1", n_envs=9, max_episode_steps=15, n_steps=60, seed=11, cfg={}, freeze_at=None),
    dict(name="pendulum3_default", env_id="Pendulum-v1", n_envs=3, max_episode_steps=40, n_steps=120, seed=5, cfg={}, freeze_at=None),
    dict(name="mountaincarcont2_no_norm_reward", env_id="MountainCarContinuous-v0", n_envs=2, max_episode_steps=50, n_steps=110, seed=7, cfg=dict(norm_reward=False), freeze_at=None),
    dict(name="cartpole3_clip_gamma_frozen", env_id="CartPole-v1", n_envs=3, max_episode_steps=25, n_steps=120, seed=1, cfg=dict(clip_obs=1.5, clip_reward=0.5, gamma=0.9, epsilon=1e-6), freeze_at=60),
    dict(name="pendulum1_no_norm_obs", env_id="Pendulum-v1", n_envs=1, max_episode_steps=30, n_steps=70, seed=9, cfg=dict(norm_obs=False, gamma=0.95), freeze_at=None),
]

NOTES = (
    "Per step t (1-based), SB3 VecNormalize.step_wait: obs_rms.update(obs) when training and norm_obs "
    "(batch mean/var by np.mean/np.var over axis 0 of the float32 [n_envs, obs_dim] batch, i.e. float32 "
    "arithmetic; then delta=batch_mean-mean (f64), mean+=delta*n/(count+n), "
    "var=(var*count + f32(batch_var*n) + delta^2*count*n/(count+n))/(count+n), count+=n; count starts at 1e-4); "
    "obs=f32(clip((obs-mean)/sqrt(var+epsilon), +-clip_obs)); when training: returns=returns*gamma+reward "
    "(reward float32) and ret_rms.update(returns) (float64); reward=f32(clip(reward/sqrt(ret_var+epsilon), "
    "+-clip_reward)) when norm_reward; terminal_observation normalized with the stats after this update; "
    "returns[done]=0 afterwards. Statistics recorded after the step. reset: returns=0, obs_rms.update(obs) when "
    "training and norm_obs, obs normalized. 'training' is the flag during that step (freeze_at: set to False "
    "before step freeze_at). Floats are JSON numbers (float64 repr; float32 values widened exactly)."
)


def f(a):
    return np.asarray(a, dtype=np.float64).tolist()


def run(spec):
    venv = DummyVecEnv([lambda: gymnasium.make(spec["env_id"], max_episode_steps=spec["max_episode_steps"])] * spec["n_envs"])
    vn = VecNormalize(venv, **spec["cfg"])
    act_space = venv.action_space
    rng = np.random.default_rng(1000 + spec["seed"])
    vn.seed(spec["seed"])
    obs = vn.reset()

    def stats():
        d = dict(
            ret_mean=float(vn.ret_rms.mean), ret_var=float(vn.ret_rms.var), ret_count=float(vn.ret_rms.count),
            returns=f(vn.returns),
        )
        if vn.norm_obs:
            d.update(obs_mean=f(vn.obs_rms.mean), obs_var=f(vn.obs_rms.var), obs_count=float(vn.obs_rms.count))
        return d

    initial = dict(obs=f(obs), orig_obs=f(vn.get_original_obs()), **stats())
    steps = []
    for t in range(1, spec["n_steps"] + 1):
        if spec["freeze_at"] is not None and t == spec["freeze_at"]:
            vn.training = False
        if isinstance(act_space, gymnasium.spaces.Discrete):
            actions = rng.integers(0, act_space.n, size=spec["n_envs"])
            alist = actions.tolist()
        else:
            actions = rng.uniform(act_space.low, act_space.high, size=(spec["n_envs"],) + act_space.shape).astype(np.float32)
            alist = f(actions)
        obs, rew, done, infos = vn.step(actions)
        steps.append(dict(
            t=t, training=bool(vn.training), action=alist, obs=f(obs), reward=f(rew),
            orig_obs=f(vn.get_original_obs()), orig_reward=f(vn.get_original_reward()),
            done=[bool(x) for x in done],
            terminal_obs=[f(i["terminal_observation"]) if "terminal_observation" in i else None for i in infos],
            **stats(),
        ))
    cfg = dict(training=True, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.99, epsilon=1e-8)
    cfg.update(spec["cfg"])
    header = dict(
        format="vec_normalize_trace/1", env_id=spec["env_id"], n_envs=spec["n_envs"],
        max_episode_steps=spec["max_episode_steps"], n_steps=spec["n_steps"], seed=spec["seed"],
        freeze_at=spec["freeze_at"], config=cfg,
        action_kind="discrete" if isinstance(act_space, gymnasium.spaces.Discrete) else "continuous",
        actions=f"np.random.default_rng({1000 + spec['seed']}); integers(0, n, n_envs) or uniform(low, high).astype(float32) per step",
        what="VecNormalize(DummyVecEnv([lambda: gymnasium.make(env_id, max_episode_steps=...)] * n_envs), **config)",
        layout="initial: obs/orig_obs/stats after reset; steps[t-1]: action, obs (normalized), reward (normalized), orig_obs, orig_reward, done, terminal_obs (normalized, null if not done), obs_mean/obs_var/obs_count (absent when norm_obs is off), ret_mean/ret_var/ret_count, returns",
        stable_baselines3_version=stable_baselines3.__version__, gymnasium_version=gymnasium.__version__,
        numpy_version=np.__version__, notes=NOTES,
    )
    return dict(header=header, initial=initial, steps=steps)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../tests/golden/vec_normalize")
    os.makedirs(out, exist_ok=True)
    for spec in RUNS:
        path = os.path.join(out, spec["name"] + ".json")
        with open(path, "w") as fh:
            json.dump(run(spec), fh, separators=(",", ":"))
        print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()

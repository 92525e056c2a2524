//! Callbacks driven step by step with a fake `Algorithm`: stop conditions trigger at the right
//! step, checkpoints land at the right paths, evaluations are recorded.

mod fakes;

use fakes::{temp_dir, FakeAlgo, FixedPolicy, ScriptedEnv};
use rl_algos::callbacks::{EvalChild, EvalSummary};
use rl_algos::{
    Callback, CallbackList, CheckpointCallback, EvalCallback, Locals, Logger, ProgressBarCallback,
    StopTrainingOnMaxEpisodes, StopTrainingOnNoModelImprovement, StopTrainingOnRewardThreshold,
};
use rl_env::{EpisodeStats, Info, Space};
use std::cell::Cell;
use std::rc::Rc;

fn locals<'a>(
    algo: &'a FakeAlgo,
    step: u64,
    rewards: &'a [f64],
    dones: &'a [bool],
    infos: &'a [Info],
) -> Locals<'a> {
    algo.steps.set(step);
    Locals {
        algo,
        num_timesteps: step,
        total_timesteps: 100,
        iteration: 0,
        rewards,
        dones,
        infos,
    }
}

/// Calls `on_step` for steps `1..=max` with the given per-step rewards/dones (one env) and
/// returns the step at which the callback asked to stop.
fn first_stop(
    cb: &mut dyn Callback,
    algo: &FakeAlgo,
    max: u64,
    step_data: impl Fn(u64) -> (f64, bool, Info),
) -> Option<u64> {
    let mut logger = Logger::new(false);
    cb.on_training_start(&locals(algo, 0, &[], &[], &[]), &mut logger)
        .unwrap();
    for t in 1..=max {
        let (r, d, info) = step_data(t);
        let (rewards, dones, infos) = ([r], [d], [info]);
        if !cb
            .on_step(&locals(algo, t, &rewards, &dones, &infos), &mut logger)
            .unwrap()
        {
            return Some(t);
        }
    }
    None
}

fn algo() -> FakeAlgo {
    FakeAlgo::new(FixedPolicy::Logits(vec![0.0, 4.0]))
}

#[test]
fn max_episodes_stops_on_the_step_ending_the_last_episode() {
    let a = algo();
    // One env, episodes of 3 steps: the 4th episode ends at step 12.
    let mut cb = StopTrainingOnMaxEpisodes::new(4).unwrap();
    let stop = first_stop(&mut cb, &a, 100, |t| (1.0, t % 3 == 0, Info::default()));
    assert_eq!(stop, Some(12));
    assert_eq!(cb.n_episodes(), 4);
    // Two envs: max_episodes counts per env (SB3), 2 * 2 = 4 episodes in all.
    let mut cb = StopTrainingOnMaxEpisodes::new(2).unwrap();
    let mut logger = Logger::new(false);
    let mut stopped_at = None;
    for t in 1..=10u64 {
        let dones = [t % 2 == 0, t % 3 == 0];
        let infos = [Info::default(), Info::default()];
        if !cb
            .on_step(&locals(&a, t, &[1.0, 1.0], &dones, &infos), &mut logger)
            .unwrap()
        {
            stopped_at = Some(t);
            break;
        }
    }
    // Episodes end at t=2 (env0), 3 (env1), 4 (env0), 6 (env0 and env1) -> 5 >= 4 at t=6.
    assert_eq!(stopped_at, Some(6));
    assert!(StopTrainingOnMaxEpisodes::new(0).is_err());
}

#[test]
fn reward_threshold_standalone_uses_a_full_window() {
    let a = algo();
    // Episode k (1-based) lasts k steps with reward 1: returns 1, 2, 3, ...; window 3, threshold
    // 4 -> first mean >= 4 is (3 + 4 + 5) / 3 = 4, at the end of episode 5 (step 15).
    let mut cb = StopTrainingOnRewardThreshold::new(4.0)
        .with_window(3)
        .unwrap();
    let ends: Vec<u64> = (1..=10u64)
        .scan(0, |acc, k| {
            *acc += k;
            Some(*acc)
        })
        .collect();
    let stop = first_stop(&mut cb, &a, 100, |t| {
        (1.0, ends.contains(&t), Info::default())
    });
    assert_eq!(stop, Some(15));
    assert_eq!(cb.rolling_mean(), Some(4.0));
    // A single lucky episode does not stop it before the window is full.
    let mut cb = StopTrainingOnRewardThreshold::new(1.0)
        .with_window(3)
        .unwrap();
    let stop = first_stop(&mut cb, &a, 100, |t| (5.0, t % 2 == 0, Info::default()));
    assert_eq!(stop, Some(6));
}

#[test]
fn reward_threshold_prefers_episode_statistics() {
    let a = algo();
    let mut cb = StopTrainingOnRewardThreshold::new(100.0)
        .with_window(1)
        .unwrap();
    let stop = first_stop(&mut cb, &a, 20, |t| {
        let mut info = Info::default();
        if t == 7 {
            info.episode = Some(EpisodeStats {
                r#return: 150.0,
                length: 7,
                time_s: 0.0,
            });
        }
        (0.0, t % 7 == 0, info)
    });
    assert_eq!(stop, Some(7));
}

#[test]
fn checkpoints_every_save_freq_calls() {
    let dir = temp_dir("ckpt-cb");
    let a = algo();
    let mut cb = CheckpointCallback::new(3, dir.join("sub"))
        .unwrap()
        .with_prefix("m");
    assert_eq!(
        first_stop(&mut cb, &a, 10, |_| (0.0, false, Info::default())),
        None
    );
    let want: Vec<_> = [3, 6, 9]
        .iter()
        .map(|s| dir.join("sub").join(format!("m_{s}_steps")))
        .collect();
    assert_eq!(cb.saved(), want.as_slice());
    assert_eq!(*a.saved.borrow(), want);
    assert!(want.iter().all(|p| p.exists()));
    assert!(CheckpointCallback::new(0, &dir).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An `EvalChild` that counts its calls.
struct Count(Rc<Cell<u32>>);

impl EvalChild for Count {
    fn on_eval(
        &mut self,
        _: &EvalSummary<'_>,
        _: &Locals<'_>,
        _: &mut Logger,
    ) -> rl_algos::Result<bool> {
        self.0.set(self.0.get() + 1);
        Ok(true)
    }
}

#[test]
fn eval_callback_records_history_logs_and_best_model() {
    let dir = temp_dir("eval-cb");
    let a = algo();
    // The fixed policy always plays 5-step episodes paying 1: mean 5, std 0.
    let env = ScriptedEnv::new(vec![5], Space::discrete(2));
    let new_best = Rc::new(Cell::new(0));
    let after = Rc::new(Cell::new(0));
    let mut cb = EvalCallback::new(env, 4)
        .unwrap()
        .with_n_eval_episodes(3)
        .unwrap()
        .with_verbose(false)
        .with_best_model_save_path(dir.join("best"))
        .with_log_path(dir.join("curve.csv"))
        .with_callback_on_new_best(Count(new_best.clone()))
        .with_callback_after_eval(Count(after.clone()));
    let json = dir.join("log.json");
    let mut logger = Logger::new(false).with_json(&json).unwrap();
    cb.on_training_start(&locals(&a, 0, &[], &[], &[]), &mut logger)
        .unwrap();
    for t in 1..=10 {
        let infos = [Info::default()];
        assert!(cb
            .on_step(&locals(&a, t, &[0.0], &[false], &infos), &mut logger)
            .unwrap());
    }
    let steps: Vec<u64> = cb.history().iter().map(|r| r.timesteps).collect();
    assert_eq!(steps, vec![4, 8]);
    assert_eq!(cb.best_mean_reward(), 5.0);
    assert_eq!(cb.last_mean_reward(), 5.0);
    // Only the first evaluation is a new best (equal is not better).
    assert_eq!((new_best.get(), after.get()), (1, 2));
    assert_eq!(*a.saved.borrow(), vec![dir.join("best").join("best_model")]);
    let csv = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    assert_eq!(
        csv,
        "timesteps,mean_reward,std_reward,mean_ep_length\n4,5,0,5\n8,5,0,5\n"
    );
    assert_eq!(csv, cb.learning_curve_csv());
    // The logger was dumped at each evaluation with SB3's keys.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["eval/mean_reward"], 5.0);
    assert_eq!(lines[1]["eval/mean_ep_length"], 5.0);
    assert_eq!(lines[1]["time/total_timesteps"], 8);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_callback_with_reward_threshold_child_stops_training() {
    let a = algo();
    let stop_at = |threshold: f64| {
        let env = ScriptedEnv::new(vec![6], Space::discrete(2));
        let mut cb = EvalCallback::new(env, 5)
            .unwrap()
            .with_verbose(false)
            .with_callback_on_new_best(StopTrainingOnRewardThreshold::new(threshold));
        first_stop(&mut cb, &a, 30, |_| (0.0, false, Info::default()))
    };
    assert_eq!(stop_at(6.0), Some(5));
    assert_eq!(stop_at(6.5), None);
}

#[test]
fn no_model_improvement_stops_after_patience() {
    let a = algo();
    let env = ScriptedEnv::new(vec![3], Space::discrete(2));
    // Constant evaluations: eval 1 (within min_evals) only sets the reference best; evals 2 and
    // 3 do not improve on it, and with patience 1 the second of them (step 6) stops.
    let mut cb = EvalCallback::new(env, 2)
        .unwrap()
        .with_verbose(false)
        .with_callback_after_eval(StopTrainingOnNoModelImprovement::new(1, 1));
    assert_eq!(
        first_stop(&mut cb, &a, 40, |_| (0.0, false, Info::default())),
        Some(6)
    );
}

/// Stops at a given step; counts calls of every hook.
struct StopAt {
    at: u64,
    calls: Rc<Cell<u32>>,
}

impl Callback for StopAt {
    fn on_step(&mut self, locals: &Locals<'_>, _: &mut Logger) -> rl_algos::Result<bool> {
        self.calls.set(self.calls.get() + 1);
        Ok(locals.num_timesteps < self.at)
    }
}

#[test]
fn callback_list_calls_everyone_and_stops_if_any_stops() {
    let a = algo();
    let (c1, c2) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let mut progress = ProgressBarCallback::hidden();
    let mut list = CallbackList::new()
        .with(StopAt {
            at: 3,
            calls: c1.clone(),
        })
        .with(StopAt {
            at: 100,
            calls: c2.clone(),
        })
        .with(&mut progress)
        .with(());
    assert_eq!(list.len(), 4);
    let stop = first_stop(&mut list, &a, 10, |_| (0.0, false, Info::default()));
    assert_eq!(stop, Some(3));
    assert_eq!((c1.get(), c2.get()), (3, 3));
    drop(list);
    assert_eq!(progress.position(), 3);
}

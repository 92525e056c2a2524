//! Multi-threaded vector engine.
//!
//! The sub-environments are split into contiguous chunks, each behind its own `Mutex` with a
//! result buffer; the inputs of a call (actions or seeds) are copied once into a buffer the
//! workers read. Every thread (the caller is thread 0) owns a contiguous home range of chunks
//! and claims them through its own counter, so its sub-environments stay in its core's cache; a
//! thread that runs out of work claims chunks left in the other threads' ranges. A thread the OS
//! does not schedule (a busy machine) thus delays nothing: the others step its chunks. A claim
//! gives exclusive use of a chunk, so the locks are uncontended. The caller steps its chunks
//! straight into the vector's buffers and copies the workers' results over at the end. Waiting
//! threads spin briefly (the next command usually follows within microseconds) and then park, so
//! an idle vector costs no CPU. No `unsafe` is involved.
//!
//! Which thread steps which chunk may vary from call to call; the results do not, since every
//! sub-environment is stepped exactly once, by its own code, with its own action.

use super::block::{
    check_seeds, common_spaces, panic_message, seeds_from, validate_actions, Block, State,
};
use super::{AutoresetMode, VecAction, VecBuffers, VecEnv};
use crate::env::Env;
use crate::error::{EnvError, Result};
use crate::registry::{make_with, EnvSpec};
use crate::space::Space;
use crossbeam::sync::{Parker, Unparker};
use crossbeam::utils::{Backoff, CachePadded};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting thread keeps checking before it parks: about one large vector step, so
/// that a tight stepping loop never pays a wake-up while an idle vector soon stops burning CPU.
const SPIN_BUDGET: Duration = Duration::from_micros(50);

/// How often the caller, once parked, checks that the worker threads are still alive.
const LIVENESS_PERIOD: Duration = Duration::from_millis(10);

/// Chunks per thread: enough to even out uneven progress by stealing, few enough to keep the
/// per-chunk overhead (two locks, a claim, a shared completion count) negligible.
const CHUNKS_PER_THREAD: usize = 8;

/// Smallest chunk: below this, handing work to another core costs more than it saves.
const MIN_CHUNK: usize = 16;

/// Waits for `ready()` for at most [`SPIN_BUDGET`]; returns whether it became ready.
///
/// It spins only briefly and then yields its core between checks: on a machine with more
/// runnable threads than cores a busy-spinning thread takes the core from the very thread it
/// waits for. With one of two cores taken by another process, busy-spinning made a 1024-env
/// CartPole vector 1.6x slower than the in-thread engine; yielding keeps it about even, and
/// costs nothing measurable when a core is free.
#[inline]
fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    let backoff = Backoff::new();
    let mut start = None;
    loop {
        if ready() {
            return true;
        }
        // Reading the clock only once the short spin is over keeps quick hand-offs cheap.
        if backoff.is_completed() && start.get_or_insert_with(Instant::now).elapsed() > SPIN_BUDGET
        {
            return false;
        }
        backoff.snooze();
    }
}

#[derive(Clone, Copy)]
enum Command {
    Step,
    Reset,
}

/// A contiguous chunk of sub-environments with the outputs of the current call.
struct Chunk<E> {
    block: Block<E>,
    /// Results, when a spawned worker stepped the chunk (the caller writes straight into the
    /// vector's buffers).
    buf: VecBuffers,
    by_worker: bool,
    /// Whether the vector's rows of this chunk may hold non-empty infos.
    infos_in_vector: bool,
    result: Result<()>,
}

/// The inputs of the current call, for all sub-environments (one copy per call, read by the
/// workers for the chunks they claim).
struct Inputs {
    command: Command,
    discrete: Vec<i64>,
    continuous: Vec<f32>,
    seeds: Vec<Option<u128>>,
}

/// What the caller and the workers share.
struct Shared<E> {
    chunks: Vec<Mutex<Chunk<E>>>,
    inputs: RwLock<Inputs>,
    mode: AutoresetMode,
    act_dim: usize,
    is_discrete: bool,
    /// Bumped by the caller to announce a command.
    epoch: CachePadded<AtomicU64>,
    /// Per thread: the next chunk of its home range to claim.
    cursors: Vec<CachePadded<AtomicUsize>>,
    /// Per thread: its home range of chunks, `home[t]..home[t + 1]`.
    home: Vec<usize>,
    /// Per thread: chunks it finished for the current command (summed by the caller; one
    /// counter per thread keeps each on its own core).
    completed: Vec<CachePadded<AtomicUsize>>,
    shutdown: AtomicBool,
    /// Worker threads that have started and reached their loop.
    started: AtomicUsize,
    caller: Unparker,
}

impl<E: Env> Shared<E> {
    fn lock(&self, c: usize) -> Result<MutexGuard<'_, Chunk<E>>> {
        self.chunks[c].lock().map_err(|_| EnvError::Worker {
            worker: 0,
            message: "a chunk of sub-environments was poisoned by an earlier panic".into(),
        })
    }

    /// Claims, for thread `t`, the next chunk of its home range or else of another thread's.
    #[inline]
    fn claim(&self, t: usize) -> Option<usize> {
        let n = self.cursors.len();
        (0..n).map(|k| (t + k) % n).find_map(|u| {
            let c = self.cursors[u].fetch_add(1, Ordering::AcqRel);
            (c < self.home[u + 1]).then_some(c)
        })
    }

    /// Opens the chunks to claims for a new command. No claim of the previous command is in
    /// flight (all its chunks are finished), and a late `fetch_add` on an exhausted cursor fails
    /// until the cursor reopens; after that it is a claim of this command, whose inputs are in
    /// place. The counts are reset first, so a claim of this command cannot be counted and then
    /// erased.
    fn open_claims(&self) {
        for count in &self.completed {
            count.store(0, Ordering::Relaxed);
        }
        for (cursor, &first) in self.cursors.iter().zip(&self.home) {
            cursor.store(first, Ordering::Release);
        }
    }

    /// Whether every chunk of the current command is finished.
    fn all_done(&self) -> bool {
        let done: usize = self
            .completed
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .sum();
        done == self.chunks.len()
    }

    fn inputs_error() -> EnvError {
        EnvError::Worker {
            worker: 0,
            message: "the inputs of the workers were poisoned by an earlier panic".into(),
        }
    }

    /// Runs the current command on a claimed chunk on worker thread `worker`, into the chunk's
    /// own buffers.
    fn run_in_worker(&self, c: usize, worker: usize) {
        // The block catches the sub-environments' panics; this catch, for the engine's own
        // code, also runs while the locks are held, so no panic ever poisons them. Both are
        // released before the chunk counts as finished: the caller, which waits for
        // that, must never find them held.
        let inputs = self.inputs.read().unwrap_or_else(|p| p.into_inner());
        let mut guard = self.chunks[c].lock().unwrap_or_else(|p| p.into_inner());
        let chunk = &mut *guard;
        let (start, len, d) = (chunk.block.start, chunk.block.envs.len(), self.act_dim);
        let run = AssertUnwindSafe(|| {
            let rows = chunk.buf.rows(0, len);
            match inputs.command {
                Command::Step => {
                    let actions = if self.is_discrete {
                        VecAction::Discrete(&inputs.discrete[start..start + len])
                    } else {
                        VecAction::Continuous(&inputs.continuous[start * d..(start + len) * d])
                    };
                    chunk.block.step(self.mode, actions, d, rows)
                }
                Command::Reset => {
                    let seeds = inputs.seeds[start..start + len].iter().copied();
                    chunk.block.reset(seeds, rows)
                }
            }
        });
        chunk.result = catch_unwind(run).unwrap_or_else(|p| Err(panicked(worker, p)));
        chunk.by_worker = true;
        drop(guard);
        drop(inputs);
        self.completed[worker].fetch_add(1, Ordering::Release);
    }
}

/// A panic outside the sub-environments' own calls (those are caught by their block): a bug of
/// the engine, which disables the vector.
fn panicked(worker: usize, payload: Box<dyn Any + Send>) -> EnvError {
    EnvError::Worker {
        worker,
        message: format!("the vector engine panicked: {}", panic_message(&*payload)),
    }
}

fn worker_main<E: Env>(worker: usize, shared: Arc<Shared<E>>, parker: Parker) {
    let mut seen = 0;
    shared.started.fetch_add(1, Ordering::AcqRel);
    shared.caller.unpark();
    loop {
        let ready = || {
            shared.shutdown.load(Ordering::Acquire) || shared.epoch.load(Ordering::Acquire) != seen
        };
        if !spin_until(ready) {
            while !ready() {
                parker.park();
            }
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = shared.epoch.load(Ordering::Acquire);
        while let Some(c) = shared.claim(worker) {
            shared.run_in_worker(c, worker);
        }
        shared.caller.unpark();
    }
}

/// A spawned worker thread.
struct Worker {
    wake: Unparker,
    thread: Option<JoinHandle<()>>,
}

/// Steps sub-environments in parallel on worker threads, with results bit-identical to
/// [`super::SyncVecEnv`]'s for the same seeds.
///
/// `n_workers` threads step the vector: the calling thread takes part (it would otherwise sit
/// idle waiting), so `n_workers - 1` threads are spawned. Each thread owns a contiguous block of
/// sub-environments (in chunks of at least 16) and steps it on every call; a thread that is
/// done early takes chunks another has not started, so a thread the OS keeps waiting stalls
/// nobody. A vector of up to 16 sub-environments is one chunk, stepped by the caller alone;
/// below a few dozen sub-environments per thread prefer [`super::SyncVecEnv`].
///
/// Failures behave exactly as in [`super::SyncVecEnv`] (the shared block code handles them):
/// a sub-environment that returns an error, panics (on whichever thread stepped it), or hands
/// back a NaN or infinite observation or reward makes the call fail with
/// [`EnvError::SubEnv`], [`EnvError::Panicked`] or [`EnvError::NonFinite`], naming the
/// lowest-index sub-environment that failed; every further `step` then returns
/// [`EnvError::NeedsReset`] until a `reset` succeeds, which resets every sub-environment, the
/// failed one included (see [`super::SyncVecEnv`] on what that means for a panicked one).
/// Only a failure of the engine itself, such as a worker thread that is gone, is final
/// ([`EnvError::Worker`]): every call then returns that error. Dropping the vector stops and
/// joins its threads.
///
/// ```
/// use rl_env::{AutoresetMode, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv};
///
/// let mut threaded = ThreadVecEnv::make("CartPole-v1", 64, 2, AutoresetMode::NextStep)?;
/// let mut inline = SyncVecEnv::make("CartPole-v1", 64, AutoresetMode::NextStep)?;
/// threaded.reset(Some(7))?;
/// inline.reset(Some(7))?;
/// for t in 0..50 {
///     let actions: Vec<i64> = (0..64).map(|i| (t + i) % 2).collect();
///     threaded.step(VecAction::Discrete(&actions))?;
///     inline.step(VecAction::Discrete(&actions))?;
///     assert_eq!(threaded.observations(), inline.observations());
///     assert_eq!(threaded.rewards(), inline.rewards());
/// }
/// # Ok::<(), rl_env::EnvError>(())
/// ```
pub struct ThreadVecEnv<E: Env + 'static = Box<dyn Env>> {
    shared: Arc<Shared<E>>,
    workers: Vec<Worker>,
    buf: VecBuffers,
    parker: Parker,
    epoch: u64,
    observation_space: Space,
    action_space: Space,
    state: State,
}

impl<E: Env + 'static> ThreadVecEnv<E> {
    /// A vector of `envs` (non-empty, one shared pair of spaces) stepped by `n_workers`
    /// threads, clamped to `1..=envs.len()`. Call [`VecEnv::reset`] before stepping.
    pub fn new(envs: Vec<E>, n_workers: usize, mode: AutoresetMode) -> Result<Self> {
        let (observation_space, action_space) = common_spaces(&envs)?;
        let n_envs = envs.len();
        let obs_dim = observation_space.flat_dim();
        let act_dim = action_space.flat_dim();
        let is_discrete = matches!(action_space, Space::Discrete { .. });
        let n_workers = n_workers.clamp(1, n_envs);
        let chunk_len = if n_workers == 1 {
            n_envs
        } else {
            n_envs
                .div_ceil(n_workers * CHUNKS_PER_THREAD)
                .max(MIN_CHUNK)
        };
        let mut chunks = Vec::with_capacity(n_envs.div_ceil(chunk_len));
        let mut rest = envs;
        let mut start = 0;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk_len.min(rest.len()));
            let len = rest.len();
            chunks.push(Mutex::new(Chunk {
                block: Block::new(start, rest),
                buf: VecBuffers::new(len, obs_dim),
                by_worker: false,
                infos_in_vector: true,
                result: Ok(()),
            }));
            start += len;
            rest = tail;
        }
        // Thread t's home range: chunks home[t]..home[t + 1], as even as the count allows.
        // Rounding up gives any odd chunk to the caller, which is never asleep.
        let home: Vec<usize> = (0..=n_workers)
            .map(|t| (t * chunks.len()).div_ceil(n_workers))
            .collect();
        let parker = Parker::new();
        let inputs = Inputs {
            command: Command::Step,
            discrete: vec![0; if is_discrete { n_envs } else { 0 }],
            continuous: vec![0.0; if is_discrete { 0 } else { n_envs * act_dim }],
            seeds: vec![None; n_envs],
        };
        let shared = Arc::new(Shared {
            chunks,
            inputs: RwLock::new(inputs),
            mode,
            act_dim,
            is_discrete,
            epoch: CachePadded::new(AtomicU64::new(0)),
            cursors: (0..n_workers)
                .map(|t| CachePadded::new(AtomicUsize::new(home[t + 1])))
                .collect(),
            home,
            completed: (0..n_workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            shutdown: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            caller: parker.unparker().clone(),
        });
        let mut venv = ThreadVecEnv {
            shared,
            workers: Vec::with_capacity(n_workers - 1),
            buf: VecBuffers::new(n_envs, obs_dim),
            parker,
            epoch: 0,
            observation_space,
            action_space,
            state: State::NeedsReset("step() called on a vector env before reset()"),
        };
        for worker in 1..n_workers {
            let worker_parker = Parker::new();
            let wake = worker_parker.unparker().clone();
            let shared = Arc::clone(&venv.shared);
            // On error `venv` is dropped, which stops and joins the threads started so far.
            let thread = std::thread::Builder::new()
                .name(format!("rl-vecenv-{worker}"))
                .spawn(move || worker_main(worker, shared, worker_parker))
                .map_err(|e| EnvError::Worker {
                    worker,
                    message: format!("cannot spawn the worker thread: {e}"),
                })?;
            venv.workers.push(Worker {
                wake,
                thread: Some(thread),
            });
        }
        venv.wait_for_workers()?;
        Ok(venv)
    }

    /// A vector of `n_envs` environments built by `f(i)`, stepped by `n_workers` threads.
    pub fn from_fn(
        n_envs: usize,
        n_workers: usize,
        mode: AutoresetMode,
        f: impl FnMut(usize) -> Result<E>,
    ) -> Result<Self> {
        Self::new((0..n_envs).map(f).collect::<Result<_>>()?, n_workers, mode)
    }

    /// Waits until every spawned worker has started. A thread's start-up (the runtime's
    /// thread-local bookkeeping) allocates; waiting here keeps that out of the first steps, so
    /// that stepping never allocates, even when the OS schedules a new thread late.
    fn wait_for_workers(&self) -> Result<()> {
        let expected = self.workers.len();
        let started = || self.shared.started.load(Ordering::Acquire) == expected;
        while !started() {
            if let Some(k) = self
                .workers
                .iter()
                .position(|w| w.thread.as_ref().is_none_or(|t| t.is_finished()))
            {
                return Err(EnvError::Worker {
                    worker: k + 1,
                    message: "the worker thread exited while starting".into(),
                });
            }
            self.parker.park_timeout(LIVENESS_PERIOD);
        }
        Ok(())
    }

    /// Number of threads stepping the vector, the calling thread included.
    pub fn num_workers(&self) -> usize {
        self.workers.len() + 1
    }

    /// Hands `command` to every chunk (`fill` copies its inputs), lets the workers and this
    /// thread claim the chunks (`local` runs one here, straight into the vector's buffers), waits
    /// for all of them and gathers the results.
    fn run(
        &mut self,
        command: Command,
        fill: impl FnOnce(&mut Inputs),
        mut local: impl FnMut(&mut Block<E>, &mut VecBuffers) -> Result<()>,
    ) -> Result<()> {
        let shared = &*self.shared;
        let n_chunks = shared.chunks.len();
        // A single chunk is always the caller's: the workers are left asleep.
        if n_chunks > 1 {
            let mut inputs = shared
                .inputs
                .write()
                .map_err(|_| Shared::<E>::inputs_error())?;
            inputs.command = command;
            fill(&mut inputs);
        }
        shared.open_claims();
        if n_chunks > 1 {
            self.epoch += 1;
            shared.epoch.store(self.epoch, Ordering::Release);
            for w in &self.workers {
                w.wake.unpark();
            }
        }
        while let Some(c) = shared.claim(0) {
            let mut chunk = shared.lock(c)?;
            let chunk = &mut *chunk;
            let (block, buf) = (&mut chunk.block, &mut self.buf);
            chunk.result = catch_unwind(AssertUnwindSafe(|| local(block, buf)))
                .unwrap_or_else(|p| Err(panicked(0, p)));
            chunk.by_worker = false;
            shared.completed[0].fetch_add(1, Ordering::Release);
        }
        wait_all(&self.parker, shared, &self.workers)?;
        let mut result = Ok(());
        for c in 0..n_chunks {
            let mut chunk = shared.lock(c)?;
            if chunk.by_worker {
                // Infos are nearly always empty: reading them would only pull the worker's
                // cache lines over for nothing.
                let with_infos = chunk.block.any_info || chunk.infos_in_vector;
                self.buf
                    .copy_rows_from(chunk.block.start, &chunk.buf, with_infos);
            }
            chunk.infos_in_vector = chunk.block.any_info;
            let r = std::mem::replace(&mut chunk.result, Ok(()));
            result = first_error(result, r);
        }
        result
    }

    fn reset_seeds(&mut self, seeds: Vec<Option<u128>>) -> Result<()> {
        self.state.check_reset()?;
        let result = self.run(
            Command::Reset,
            |inputs| inputs.seeds.copy_from_slice(&seeds),
            |block, buf| {
                let (start, len) = (block.start, block.envs.len());
                block.reset(
                    seeds[start..start + len].iter().copied(),
                    buf.rows(start, len),
                )
            },
        );
        self.state = State::after(&result);
        result
    }
}

impl ThreadVecEnv<Box<dyn Env>> {
    /// `n_envs` copies of the registered environment `id` ([`crate::make`]) on `n_workers`
    /// threads.
    pub fn make(id: &str, n_envs: usize, n_workers: usize, mode: AutoresetMode) -> Result<Self> {
        Self::make_with(id, &EnvSpec::default(), n_envs, n_workers, mode)
    }

    /// `n_envs` copies of `make_with(id, spec)` on `n_workers` threads.
    pub fn make_with(
        id: &str,
        spec: &EnvSpec,
        n_envs: usize,
        n_workers: usize,
        mode: AutoresetMode,
    ) -> Result<Self> {
        Self::from_fn(n_envs, n_workers, mode, |_| make_with(id, spec))
    }
}

/// Waits until every chunk of the current command is finished; errors instead of hanging if a
/// worker thread is gone.
fn wait_all<E: Env>(parker: &Parker, shared: &Shared<E>, workers: &[Worker]) -> Result<()> {
    let done = || shared.all_done();
    if spin_until(done) {
        return Ok(());
    }
    loop {
        if done() {
            return Ok(());
        }
        for (k, w) in workers.iter().enumerate() {
            if w.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return Err(EnvError::Worker {
                    worker: k + 1,
                    message: "the worker thread exited".into(),
                });
            }
        }
        parker.park_timeout(LIVENESS_PERIOD);
    }
}

/// Keeps the first error in sub-environment order (each block reports its lowest-index
/// failure), except that a failure of the engine itself, which disables the vector, wins.
fn first_error(acc: Result<()>, next: Result<()>) -> Result<()> {
    match (acc, next) {
        (Ok(()), next) => next,
        (Err(a), Err(b @ EnvError::Worker { .. })) if !matches!(a, EnvError::Worker { .. }) => {
            Err(b)
        }
        (acc, _) => acc,
    }
}

impl<E: Env + 'static> VecEnv for ThreadVecEnv<E> {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.shared.mode
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<()> {
        self.reset_seeds(seeds_from(seed, self.buf.n_envs).collect())
    }

    fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<()> {
        check_seeds(seeds, self.buf.n_envs)?;
        self.reset_seeds(seeds.iter().map(|s| s.map(u128::from)).collect())
    }

    fn step(&mut self, actions: VecAction<'_>) -> Result<()> {
        self.state.check_step()?;
        validate_actions(&self.action_space, actions, self.buf.n_envs)?;
        let (mode, d) = (self.shared.mode, self.shared.act_dim);
        let block_actions = move |start: usize, len: usize| match actions {
            VecAction::Discrete(a) => VecAction::Discrete(&a[start..start + len]),
            VecAction::Continuous(a) => VecAction::Continuous(&a[start * d..(start + len) * d]),
        };
        let result = self.run(
            Command::Step,
            |inputs| match actions {
                VecAction::Discrete(a) => inputs.discrete.copy_from_slice(a),
                VecAction::Continuous(a) => inputs.continuous.copy_from_slice(a),
            },
            |block, buf| {
                let (start, len) = (block.start, block.envs.len());
                block.step(mode, block_actions(start, len), d, buf.rows(start, len))
            },
        );
        if result.is_err() {
            self.state = State::after(&result);
        }
        result
    }

    fn buffers(&self) -> &VecBuffers {
        &self.buf
    }
}

impl<E: Env + 'static> Drop for ThreadVecEnv<E> {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for w in &self.workers {
            w.wake.unpark();
        }
        for w in &mut self.workers {
            if let Some(thread) = w.thread.take() {
                // Panics are caught inside the worker; a join error has nothing left to report.
                let _ = thread.join();
            }
        }
    }
}

impl<E: Env + 'static> std::fmt::Debug for ThreadVecEnv<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadVecEnv")
            .field("num_envs", &self.buf.n_envs)
            .field("num_workers", &self.num_workers())
            .field("num_chunks", &self.shared.chunks.len())
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .field("mode", &self.shared.mode)
            .finish()
    }
}

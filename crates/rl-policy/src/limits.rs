//! Upper bounds on the work a file may ask this crate to do.
//!
//! SB3 zips, the `policy.pth` archives inside them and saved policies come from outside and are
//! untrusted. Every size a file declares (entry counts, string lengths, nesting, tensor shapes,
//! layer widths, space shapes) is checked against the bytes actually present *and* against
//! these limits before anything of that size is allocated, so a small hostile file cannot make
//! the reader use gigabytes, overflow the stack or loop for minutes. Exceeding one gives
//! [`PolicyError::LimitExceeded`](crate::PolicyError::LimitExceeded).
//!
//! The values are far above what real models need (noted per limit) and far below what would
//! hurt a machine.

/// Largest model file read from disk (an SB3 zip, a saved policy, a legacy `policy.json` or
/// `model.safetensors`): 1 GiB. An SB3 MLP zip is ~100 KB, an Atari CNN zip with its optimizer
/// state ~30 MB; the whole file is held in memory while it is read.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Most entries in one zip archive: 65,536. An SB3 zip has 6 members, a `policy.pth` one per
/// tensor plus 7 (a large CNN policy: a few dozen). Each entry costs ~100 bytes of bookkeeping.
pub const MAX_ZIP_ENTRIES: usize = 65_536;

/// Largest `data.pkl` (the pickle of a state dict): 64 MiB. It holds names, shapes and storage
/// keys only (tensor data lives in separate members): ~150 bytes per tensor, 2 KB for a
/// CartPole policy.
pub const MAX_PICKLE_BYTES: usize = 64 << 20;

/// Most objects one pickle may create, counting every container slot as one object: 2,000,000.
/// A state dict needs ~25 per tensor. Bounds the reader's memory to ~100 MB whatever the
/// pickle does (memo references are shared, never copied).
pub const MAX_PICKLE_OBJECTS: usize = 2_000_000;

/// Most memo entries (`BINPUT`/`MEMOIZE`): 1,000,000. PyTorch memoizes ~8 objects per tensor.
pub const MAX_PICKLE_MEMO: usize = 1_000_000;

/// Deepest pickle stack: 100,000 values. Python's pickler pushes at most 1,000 items per
/// `APPENDS`/`SETITEMS` batch plus the nesting of the object being built.
pub const MAX_PICKLE_STACK: usize = 100_000;

/// Deepest nesting of containers, and of `MARK`s, in a pickle: 256. A state dict nests ~6
/// levels (dict, rebuild call, argument tuple, storage tuple). The reader never recurses over
/// the objects, so this is a sanity bound, not what keeps the stack safe.
pub const MAX_PICKLE_DEPTH: usize = 256;

/// Highest tensor rank in a state dict: 16 (PyTorch allows 64; policies use 1 and 2).
pub const MAX_TENSOR_RANK: usize = 16;

/// Largest Box space, in elements (observation or action): 2^20 = 1,048,576. A raw Atari frame
/// is 100,800, a stack of four 84x84 frames 28,224; the printed bounds of a Box at the limit
/// take ~25 MB of JSON.
pub const MAX_SPACE_ELEMENTS: usize = 1 << 20;

/// Largest JSON description read (an SB3 zip's `data` member, a saved policy's description,
/// a legacy `policy.json`): 64 MiB. SB3's `data` is ~15 KB; the description of a policy whose
/// spaces are at [`MAX_SPACE_ELEMENTS`] ~50 MB. (The header of a safetensors file is further
/// capped at 100 MB by the `safetensors` crate.)
pub const MAX_DESCRIPTION_BYTES: usize = 64 << 20;

/// Most hidden layers in one of `net_arch`'s stacks (shared, pi, vf): 64 (SB3 defaults to 2).
pub const MAX_HIDDEN_LAYERS: usize = 64;

/// Widest hidden layer: 65,536 units (SB3 defaults to 64; rl-zoo's largest MLPs use 400-2048).
pub const MAX_LAYER_WIDTH: usize = 1 << 16;

/// Most parameters (f32 values) in one policy: 2^28, i.e. 1 GiB of weights.
pub const MAX_PARAMETERS: usize = 1 << 28;

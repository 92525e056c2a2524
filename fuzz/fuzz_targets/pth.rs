//! The `policy.pth` reader (zip + pickle + tensor views) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rl_policy::fuzzing::read_state_dict(data);
});

"""Reads the TensorBoard event files a run wrote with TensorBoard's own reader.

The Rust writer (crates/rl-algos/src/tensorboard.rs) is tested against an independent
decoder in crates/rl-algos/tests/tensorboard.rs; this script is the cross-check with the
real thing: TensorBoard's record reader reads every record of every event file under
LOGDIR, verifying both masked CRC32Cs (EventAccumulator would skip a bad record quietly),
then its EventAccumulator loads each run and the script prints, per run and tag, the
number of points and the first and last (step, value). It exits with status 1 when a
record fails its checks, when a run has no scalars, or when a tag given with --expect is
missing from a run.

Needs the `tensorboard` package, which /opt/sb3venv does not have; for example:

    /opt/sb3venv/bin/python -m venv --system-site-packages /tmp/tbvenv
    /tmp/tbvenv/bin/pip install tensorboard
    cargo run --release --example train -- --algo a2c --env CartPole-v1 \
        --total-timesteps 20000 --tensorboard-log /tmp/tb --quiet
    /tmp/tbvenv/bin/python tools/check_tensorboard_events.py /tmp/tb \
        --expect rollout/ep_rew_mean train/value_loss time/fps
"""

import argparse
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow


def runs(logdir):
    """Folders under logdir that hold event files."""
    for root, _dirs, files in os.walk(logdir):
        if any("tfevents" in f for f in files):
            yield root


def check_records(path):
    """Number of records in an event file; raises DataLossError on a bad CRC or length."""
    reader = pywrap_tensorflow.PyRecordReader_New(path.encode(), 0, b"")
    n = 0
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return n
        n += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logdir")
    parser.add_argument("--expect", nargs="*", default=[], help="tags every run must have")
    args = parser.parse_args()
    found = list(runs(args.logdir))
    if not found:
        print(f"no event files under {args.logdir}")
        return 1
    status = 0
    for run in sorted(found):
        for name in sorted(os.listdir(run)):
            if "tfevents" in name:
                path = os.path.join(run, name)
                try:
                    print(f"{path}: {check_records(path)} records, CRCs verified")
                except errors.DataLossError as e:
                    print(f"{path}: {e.message}")
                    status = 1
        acc = event_accumulator.EventAccumulator(run, size_guidance={"scalars": 0})
        acc.Reload()
        tags = acc.Tags()["scalars"]
        print(f"{run}: {len(tags)} scalar tags")
        for tag in sorted(tags):
            points = acc.Scalars(tag)
            first, last = points[0], points[-1]
            print(
                f"  {tag}: {len(points)} points, first (step {first.step}, {first.value:.6g}), "
                f"last (step {last.step}, {last.value:.6g})"
            )
        missing = [t for t in args.expect if t not in tags]
        if not tags or missing:
            print(f"  MISSING: {missing or 'every scalar'}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

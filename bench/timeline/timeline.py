#!/usr/bin/env python3
"""Summarizes a cupti_trace.cpp file of `fp4moe bench --graph`: the layer's kernels between two L2 flushes (the
bench's memsets of at least 8 MiB; smaller memsets, as the routing's sort path makes, belong to the layer), medians
over the replays of each kernel's start, end and duration relative to the layer's first kernel, and of the layer's
span.

    timeline.py TRACE.csv [--skip N]   (N: replays to leave out at the start, default 3)
"""
import argparse
import collections
import re
import statistics

FLUSH_BYTES = 8 << 20  # the bench's L2 flush writes max(2 * L2 size, 8 MiB) (src/bench/gpu_timing.hpp)


def short(name):
    name = re.sub(r"\([^()]*\)$", "", name)  # the parameter list
    return re.sub(r"^void ", "", name).replace("fp4moe::cuda::", "")[:56]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--skip", type=int, default=3)
    args = ap.parse_args()
    layers, current = [], None
    with open(args.trace) as f:
        for line in f:
            kind, start, end, blocks, _, name = line.rstrip("\n").split(",", 5)
            if kind == "M" and int(blocks) >= FLUSH_BYTES:
                current = []
                layers.append(current)
            elif kind == "M" and current is not None:
                current.append((f"memset {blocks} B", int(start), int(end)))
            elif current is not None:
                current.append((f"{short(name)} x{blocks}", int(start), int(end)))
    layers = [l for l in layers if l]
    if not layers:
        raise SystemExit("no kernels after a memset in " + args.trace)
    # The timed replays all launch the same kernels; the most common sequence is the layer.
    signature = collections.Counter(tuple(k for k, _, _ in l) for l in layers).most_common(1)[0][0]
    replays = [l for l in layers if tuple(k for k, _, _ in l) == signature][args.skip:]
    if not replays:
        raise SystemExit("fewer replays than --skip")
    print(f"replays {len(replays)}")
    for i, kernel in enumerate(signature):
        start = statistics.median((l[i][1] - l[0][1]) / 1e3 for l in replays)
        end = statistics.median((l[i][2] - l[0][1]) / 1e3 for l in replays)
        duration = statistics.median((l[i][2] - l[i][1]) / 1e3 for l in replays)
        print(f"  {kernel:<64} start {start:8.1f}  end {end:8.1f}  duration {duration:8.1f} us")
    span = statistics.median((max(e for _, _, e in l) - l[0][1]) / 1e3 for l in replays)
    print(f"  layer span (first start to last end) {span:.1f} us")


if __name__ == "__main__":
    main()

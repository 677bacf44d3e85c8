"""Two torch processes on one machine: does each keep its share of the cores?

A small training loop (an MLP, the size of the tiny preset's steps, where OpenMP threads wait on each
other most) runs alone and then as two copies at once, first as plain torch (the OpenMP default, whose
idle threads spin) and then imported through wmplan (which sets OMP_WAIT_POLICY=PASSIVE unless the
user set it). Fair sharing of C cores by two processes is 2x slower each; the ratio printed is
steps/s alone / steps/s beside a second copy.

    python benchmarks/sharing.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys, time
if sys.argv[1] == "wmplan":
    import wmplan  # noqa: F401  (sets the thread behaviour before torch loads)
import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
x = torch.randn(256, 64)
print("ready", flush=True)
sys.stdin.readline()  # start together
steps, end = 0, time.perf_counter() + float(sys.argv[2])
while time.perf_counter() < end:
    loss = net(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
print(steps / float(sys.argv[2]), flush=True)
"""


def run(copies: int, mode: str, seconds: float) -> list[float]:
    """Steps/s of each of `copies` processes started together; mode "torch" or "wmplan"."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(copies)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    rates = [float(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {args.seconds:.0f} s per measurement; steps/s of a small MLP training loop")
    print(f"{'import':<8} {'alone':>8} {'beside a 2nd':>14} {'slowdown':>9}  (fair: 2.0)")
    for mode in ("torch", "wmplan"):
        alone = run(1, mode, args.seconds)[0]
        pair = run(2, mode, args.seconds)
        print(f"{mode:<8} {alone:>8.0f} {min(pair):>14.0f} {alone / min(pair):>8.1f}x")


if __name__ == "__main__":
    main()

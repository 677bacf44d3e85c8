"""The torchrun process group: DistContext.close destroys it for real, threads and all, so that no rank
exits with gloo's worker threads still running (one releasing a tensor at interpreter exit aborts it)."""

import os
import subprocess
import sys

# Each rank takes a first optimizer step after the group started (as planning and training do: it is what
# imports torch.distributed.nn.functional, whose default arguments would hold the group), then checks
# that nothing holds the group once closed.
RANK_SCRIPT = """
import sys, weakref
import torch, torch.distributed as dist
from wmplan.training.distributed import DistContext

ctx = DistContext.from_env(torch.device("cpu"))
weight = torch.zeros(2, requires_grad=True)
weight.sum().backward()
torch.optim.Adam([weight]).step()
assert "torch.distributed.nn.functional" in sys.modules
shares = [None, None] if ctx.is_main else None
dist.gather_object(ctx.rank, shares, dst=0)
group = weakref.ref(dist.group.WORLD)
ctx.close()
assert group() is None, "the process group outlived close()"
print(f"rank {ctx.rank} closed its group", flush=True)
"""


def test_close_leaves_no_process_group_alive_after_a_first_optimizer_step(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 closed its group" in proc.stdout and "rank 1 closed its group" in proc.stdout

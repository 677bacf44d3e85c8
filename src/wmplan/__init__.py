"""wmplan: latent world models trained on offline trajectories, and planning with them.

The package is split by concern, and imports flow downward only:
cli -> experiments -> evaluation / training -> planning -> models -> data -> envs
(writing.py, config.py, defaults.py, overrides.py and range_checks.py, at the bottom, serve every layer).
"""

import os

__version__ = "0.1.0"

# Two processes on one machine (a sweep, tests beside a demo) must share its cores. With OpenMP's
# default, a thread that waits for work spins on its core and starves the other process's threads
# (measured by benchmarks/sharing.py). A passive wait costs a single process almost nothing. It only
# takes effect if torch is not loaded yet, and a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _register_gymnasium_ids() -> None:
    """`import wmplan` makes gymnasium.make("wmplan/Wall-v0") work (lazily: no simulator is imported)."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:  # gymnasium is a dependency; without it there is nothing to register with
        return
    from wmplan.gymnasium_ids import register_gymnasium

    register_gymnasium()


_register_gymnasium_ids()

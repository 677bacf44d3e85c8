"""wmplan: latent world models trained on offline trajectories, and planning with them.

The package is split by concern, and imports flow downward only:
cli -> evaluation / training -> planning -> models -> data -> envs.
"""

__version__ = "0.1.0"

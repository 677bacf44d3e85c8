"""PointMaze: a MuJoCo point mass pushed by 2-D forces through D4RL's maze2d U-maze (DINO-WM's version).

State = proprio = [x, y, vx, vy] in D4RL's coordinates (see pointmaze_scene for the geometry). An env
action a in [-1, 1]^2 (clipped) is the motor control; as in D4RL the joint velocities are first clipped
to [-5, 5], then MuJoCo advances `frame_skip` steps of `timestep` seconds (DINO-WM: 5 x 0.01 s).
The N copies are N MjData of one model, stepped one after another.

Example:
    >>> import numpy as np
    >>> task = PointMazeTask()
    >>> task.reset_to(np.array([[0.8, 0.8, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]]))
    >>> task.step(np.array([[1.0, 0.0], [0.0, -1.0]])).shape
    (2, 4)
    >>> task.render().shape
    (2, 64, 64, 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.base import as_batch, settings_from_dict
from wmplan.envs.pointmaze_scene import (
    BODY_OFFSET,
    MazeGeometry,
    MujocoMazeRenderer,
    NumpyMazeRenderer,
    SceneStyle,
    import_mujoco,
    maze_mjcf,
)

U_MAZE = "#####/#OOO#/###O#/#OOO#/#####"  # D4RL's maze2d-umaze (its 'G' goal tile is free space here)


@dataclass(frozen=True)
class PointMazeSettings:
    """Maze, dynamics and rendering of the PointMaze task (lengths in metres)."""

    maze: str = U_MAZE
    """Layout rows separated by '/'; '#' is a wall cell, 'O' a free cell (D4RL's convention)."""
    image_size: int = 64
    """Side of the square RGB observation."""
    render: str = "numpy"
    """'numpy' draws the scene from states (fast, batched); 'mujoco' renders it with OpenGL (EGL)."""
    frame_skip: int = 5
    """MuJoCo steps per env step (DINO-WM's maze env; D4RL's own maze2d uses 1)."""
    timestep: float = 0.01
    """MuJoCo step in seconds (D4RL)."""
    gear: float = 100.0
    """Force in newtons per unit of action (D4RL's motor gear); the mass weighs about 4.19 kg."""
    damping: float = 1.0
    """Viscous damping of the two slide joints (D4RL)."""
    max_velocity: float = 5.0
    """Joint velocities are clipped to this before every env step (D4RL's clip_velocity)."""
    point_radius: float = 0.1
    """Collision radius of the point mass."""
    marker_radius: float = 0.2
    """Radius of the drawn disk (D4RL's visible site)."""
    floor_rgb: tuple[float, float, float] = (0.2, 0.3, 0.4)
    wall_rgb: tuple[float, float, float] = (0.7, 0.5, 0.3)
    point_rgb: tuple[float, float, float] = (0.3, 0.6, 0.3)
    success_threshold: float = 0.5
    """An episode succeeds when the point is closer than this to the goal's xy."""
    spawn_clearance: float = 0.1
    """Sampled starts and goals keep at least this distance from every wall (the point's radius)."""

    def __post_init__(self):
        if self.render not in ("numpy", "mujoco"):
            raise ValueError(f"PointMaze render must be 'numpy' or 'mujoco', got {self.render!r}")
        if self.frame_skip < 1:
            raise ValueError(f"PointMaze frame_skip must be at least 1, got {self.frame_skip}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PointMazeSettings:
        return settings_from_dict(cls, values, "PointMaze settings")


class PointMazeTask:
    """N point masses, each in its own copy of the maze (N MjData of one MjModel)."""

    name = "pointmaze"
    distance_name = "distance"  # what `distance` measures, for reports
    state_dim = 4
    pose_dims = (0, 1)  # what an image shows: the position, not the velocity
    proprio_dim = 4
    action_dim = 2

    def __init__(self, settings: PointMazeSettings | None = None, **overrides: Any):
        base = settings or PointMazeSettings()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        c = self.config
        self.image_size = c.image_size
        self.action_low = np.full(2, -1.0)
        self.action_high = np.full(2, 1.0)
        self.geometry = MazeGeometry.parse(c.maze)
        style = SceneStyle(
            c.image_size,
            c.floor_rgb,
            c.wall_rgb,
            c.point_rgb,
            c.marker_radius,
            c.point_radius,
            c.timestep,
            c.gear,
            c.damping,
        )
        self.mujoco = import_mujoco()
        self.model = self.mujoco.MjModel.from_xml_string(maze_mjcf(self.geometry, style))
        self._renderer: NumpyMazeRenderer | MujocoMazeRenderer | None = (
            NumpyMazeRenderer(self.geometry, style) if c.render == "numpy" else None
        )
        self._datas: list = []  # MjData copies, kept once made; the first `_n` are the current batch
        self._n = 0

    # ----- the Task protocol ----------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def num_envs(self) -> int:
        return self._n

    def reset_to(self, state: np.ndarray) -> None:
        """Put N point masses at `state` (N, 4) = [x, y, vx, vy]; a position inside a wall is an error."""
        state = as_batch(state, 4, "state")
        # Only a centre inside a wall is refused: soft contacts let a mass pushed into a wall overlap it
        # by a few centimetres, and such states must be valid starts again.
        bad = self.geometry.clearance(state) < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            lo, hi = self.geometry.bounds
            raise ValueError(
                f"PointMaze.reset_to: point {i} at (x={state[i, 0]:.3f}, y={state[i, 1]:.3f}) lies inside a "
                f"wall or outside the maze (x, y in [{lo[0]:.1f}, {hi[0]:.1f}]); free cells have centres "
                f"{np.round(self.free_cell_centres(), 2).tolist()}"
            )
        mj = self.mujoco
        # Surplus copies stay for the next batch: making and freeing thousands of MjData (each with a 13 MB
        # arena) batch after batch fragmented the heap, and a 50-pair simulator reference grew past 14 GB.
        while len(self._datas) < len(state):
            self._datas.append(mj.MjData(self.model))
        self._n = len(state)
        for data, s in zip(self._datas, state):
            mj.mj_resetData(self.model, data)  # clears time, forces and solver state: a pure function of `state`
            data.qpos[:] = s[:2]
            data.qvel[:] = s[2:]
            mj.mj_forward(self.model, data)

    def get_state(self) -> np.ndarray:
        return np.array([np.concatenate([d.qpos, d.qvel]) for d in self._datas[: self._n]]).reshape(-1, 4)

    def step(self, action: np.ndarray) -> np.ndarray:
        action = np.clip(as_batch(action, 2, "action"), -1.0, 1.0)
        if len(action) != self.num_envs:
            raise ValueError(f"PointMaze.step: {len(action)} actions for {self.num_envs} point masses")
        mj, model, vmax, skip = self.mujoco, self.model, self.config.max_velocity, self.config.frame_skip
        for data, a in zip(self._datas[: self._n], action):
            np.clip(data.qvel, -vmax, vmax, out=data.qvel)
            data.ctrl[:] = a
            for _ in range(skip):
                mj.mj_step(model, data)
        return self.get_state()

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) top-down images of the current states (or of `state` (N, 4))."""
        state = self.get_state() if state is None else as_batch(state, 4, "state")
        if self._renderer is None:  # made on first use: an OpenGL context is costly and may be missing
            self._renderer = MujocoMazeRenderer(self.model, self.image_size)
        return self._renderer(state)

    def proprio(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float64)[..., :4].copy()

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(state, float)[..., :2] - np.asarray(goal, float)[..., :2], axis=-1)

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.distance(state, goal) < self.config.success_threshold

    # ----- sampling -------------------------------------------------------------------------------
    def free_cell_centres(self) -> np.ndarray:
        """(C, 2) state xy of the centres of the free cells, in a fixed order."""
        return self.geometry.free_cells + 1.0 - BODY_OFFSET

    def sample_free_positions(self, rng: np.random.Generator, n: int, cells: np.ndarray | None = None) -> np.ndarray:
        """(n, 2) positions: a free cell uniformly (or the given cell indices (n,) into free_cell_centres),
        then a uniform point in it at least `spawn_clearance` from every wall (rejection sampling)."""
        centres = self.free_cell_centres()
        cells = rng.integers(0, len(centres), n) if cells is None else np.asarray(cells)
        out = np.zeros((n, 2))
        todo = np.arange(n)
        for _ in range(1000):
            if len(todo) == 0:
                return out
            out[todo] = centres[cells[todo]] + rng.uniform(-0.5, 0.5, (len(todo), 2))
            todo = todo[self.geometry.clearance(out[todo]) < self.config.spawn_clearance]
        raise RuntimeError(
            f"PointMaze: no free position found; is spawn_clearance={self.config.spawn_clearance} too large?"
        )

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n (start, goal) pairs with zero velocity, uniform over the free cells: the goal's cell differs
        from the start's and the pair is not already a success. A pure function of the generator."""
        k = len(self.free_cell_centres())
        if k < 2:
            raise ValueError("PointMaze.sample_start_goal needs a maze with at least two free cells")
        start_cell = rng.integers(0, k, n)
        goal_cell = (start_cell + rng.integers(1, k, n)) % k  # uniform over the other cells
        starts = self.sample_free_positions(rng, n, start_cell)
        goals = self.sample_free_positions(rng, n, goal_cell)
        for _ in range(1000):
            close = np.flatnonzero(self.is_success(starts, goals))
            if len(close) == 0:
                break
            goals[close] = self.sample_free_positions(rng, len(close), goal_cell[close])
        zeros = np.zeros((n, 2))
        return np.concatenate([starts, zeros], 1), np.concatenate([goals, zeros], 1)

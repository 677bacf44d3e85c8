"""PushT: a PD-controlled disk pushes a T-shaped block on a table (DINO-WM's version, pymunk physics).

The world is 512 x 512 units (x right, y down, as in diffusion policy's PushT), closed by four static
walls. The agent is a kinematic disk (radius 15) driven by a PD controller towards a target; the T block
is a dynamic body made of a 120 x 30 bar and a 30 x 90 stem. Physics runs at `sim_hz` (100 Hz), control at
`control_hz` (10 Hz): one env step is 10 physics steps towards one target.

- Action a (2,): relative target, agent_target = agent_pos + action_scale * a (action_scale 100). The task
  advertises the bound [-1, 1] per axis (targets at most 100 units away); `step` does not clip.
- State (7,): [agent x, agent y, block x, block y, block angle in [0, 2 pi), agent vx, agent vy]. The block
  position is its body origin (the middle of the bar's top edge), not its centre of gravity.
- Proprio (4,): [agent x, agent y, agent vx, agent vy].
- Success: ||(agent xy, block xy) - goal's|| < 20 and wrapped block angle error < pi/9; `distance` is
  that position error.

The state is complete: space damping is 0 (as in diffusion policy), so the block keeps no velocity from
one physics step to the next and only moves while it is pushed. The N copies live in N pymunk spaces.

Example:
    >>> import numpy as np
    >>> task = PushTTask()
    >>> task.reset_to(np.array([[256.0, 400.0, 256.0, 300.0, 0.0, 0.0, 0.0]]))
    >>> task.step(np.array([[0.0, -1.0]])).shape   # (N, 7): the agent moves up towards the block
    (1, 7)
    >>> task.render().shape
    (1, 64, 64, 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymunk

from wmplan.envs.base import as_batch, settings_from_dict
from wmplan.envs.pusht_geometry import WORLD_SIZE, tee_boxes, wrap_angle
from wmplan.envs.pusht_pusher import PushTPusherConfig, run_pusher
from wmplan.envs.pusht_render import PushTRenderer

WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2.0

try:  # Chipmunk's C functions behind Space.step and Body.velocity (pymunk 6.6 to 7.x): calling them
    # directly takes about a third of the time of the Python wrappers, which dominate these tiny spaces.
    from pymunk._chipmunk_cffi import lib as _chipmunk
except ImportError:  # a pymunk that moved them: use the public API
    _chipmunk = None


@dataclass(frozen=True)
class PushTSettings:
    """Dynamics, geometry and rendering of PushT (lengths in world units; the world is 512 wide)."""

    image_size: int = 64
    """Side of the square RGB observation (the 512-unit world is drawn into it)."""
    sim_hz: int = 100
    """Physics steps per second."""
    control_hz: int = 10
    """Env steps per second: each env step runs sim_hz // control_hz physics steps."""
    k_p: float = 100.0
    """PD gain on the position error to the target."""
    k_v: float = 20.0
    """PD gain on the agent's velocity (critically damped with k_p = 100)."""
    action_scale: float = 100.0
    """agent_target = agent_pos + action_scale * a."""
    agent_radius: float = 15.0
    block_scale: float = 30.0
    """Width of the T's bar and stem; the bar is 4x as long, the stem reaches 4x below the top."""
    damping: float = 0.0
    """pymunk space damping (fraction of velocity kept per second): 0 makes pushing quasi-static."""
    friction: float = 0.0
    """Friction of every shape. Diffusion policy sets `body.friction = 1`, a plain attribute that pymunk
    ignores, so its contacts are frictionless (pymunk's default 0)."""
    success_position: float = 20.0
    """Success needs ||(agent xy, block xy) - goal's|| below this."""
    success_angle: float = float(np.pi / 9)
    """... and the wrapped block angle error below this (radians)."""
    goal_steps: int = 25
    """Evaluation goals are the state reached by replaying this many env steps from the start."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PushTSettings:
        return settings_from_dict(cls, values, "PushT settings")


class _Copy:
    """One pymunk space with its agent and block bodies."""

    __slots__ = ("space", "agent", "block")

    def __init__(self, c: PushTSettings):
        self.space = pymunk.Space()
        self.space.gravity = (0.0, 0.0)
        self.space.damping = c.damping
        walls = [pymunk.Segment(self.space.static_body, a, b, WALL_RADIUS) for a, b in WALLS]
        self.agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        disk = pymunk.Circle(self.agent, c.agent_radius)
        boxes = [
            [(cx - hx, cy - hy), (cx + hx, cy - hy), (cx + hx, cy + hy), (cx - hx, cy + hy)]
            for cx, cy, hx, hy in tee_boxes(c.block_scale)
        ]
        # Mass 1 and twice the bar's moment, as diffusion policy computes it (its stem term repeats the bar).
        self.block = pymunk.Body(1.0, 2 * pymunk.moment_for_poly(1.0, boxes[0]))
        parts = [pymunk.Poly(self.block, verts) for verts in boxes]
        self.block.center_of_gravity = tuple(np.mean([p.center_of_gravity for p in parts], axis=0))
        for shape in (*walls, disk, *parts):
            shape.friction = c.friction
        self.space.add(*walls, self.agent, disk, self.block, *parts)

    def advance(self, start: list[float], velocities: list[list[float]], dt: float) -> tuple[float, float, float]:
        """Put the agent at `start`, run one physics step of `dt` per agent velocity, and return the
        block's (x, y, angle)."""
        if _chipmunk is not None and hasattr(self.agent, "_body") and hasattr(self.space, "_space"):
            agent, block, space = self.agent._body, self.block._body, self.space._space
            _chipmunk.cpBodySetPosition(agent, start)
            for v in velocities:
                _chipmunk.cpBodySetVelocity(agent, v)
                _chipmunk.cpSpaceStep(space, dt)
            p = _chipmunk.cpBodyGetPosition(block)
            return p.x, p.y, _chipmunk.cpBodyGetAngle(block)
        self.agent.position = (start[0], start[1])
        for v in velocities:
            self.agent.velocity = (v[0], v[1])
            self.space.step(dt)
        p = self.block.position
        return p.x, p.y, self.block.angle

    def place(self, state: list[float]) -> None:
        ax, ay, bx, by, angle, vx, vy = state
        self.agent.position = (ax, ay)
        self.agent.velocity = (vx, vy)
        # The angle first: pymunk rotates a body about its centre of gravity, so setting the angle after
        # the position would move the block's origin away from (bx, by).
        self.block.angle = angle
        self.block.position = (bx, by)


class PushTTask:
    """N copies of PushT, each in its own pymunk space; rendering is numpy over all copies at once."""

    name = "pusht"
    distance_name = "position error"  # what `distance` measures, for reports
    state_dim = 7
    pose_dims = (0, 1, 2, 3, 4)  # what an image shows: agent and block poses, not the agent's velocity
    angle_dims = (4,)  # the block angle wraps at 2 pi: the `state` encoder gives its cosine and sine
    proprio_dim = 4
    action_dim = 2

    def __init__(self, settings: PushTSettings | None = None, **overrides: Any):
        base = settings or PushTSettings()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        c = self.config
        if c.sim_hz % c.control_hz:
            raise ValueError(f"PushT: sim_hz ({c.sim_hz}) must be a multiple of control_hz ({c.control_hz})")
        self.image_size = c.image_size
        self.action_low = np.full(2, -1.0)
        self.action_high = np.full(2, 1.0)
        self.substeps = c.sim_hz // c.control_hz
        self._copies: list[_Copy] = []
        self._state = np.zeros((0, 7))
        self._renderer = PushTRenderer(
            c.image_size, WORLD_SIZE, tee_boxes(c.block_scale), c.agent_radius, WALLS, WALL_RADIUS
        )

    @property
    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def num_envs(self) -> int:
        return len(self._state)

    def reset_to(self, state: np.ndarray) -> None:
        """Put N copies in `state` (N, 7). Each copy gets a fresh space, so no contact history from an
        earlier episode carries over (pymunk warm-starts its solver from cached contacts)."""
        state = as_batch(state, 7, "state").copy()
        outside = ~np.all((state[:, 2:4] >= 0) & (state[:, 2:4] <= WORLD_SIZE), axis=1)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"PushT.reset_to: block {i} at {state[i, 2:4].round(2).tolist()} lies outside the "
                f"{WORLD_SIZE:.0f} x {WORLD_SIZE:.0f} world; block x and y must be in [0, {WORLD_SIZE:.0f}]"
            )
        state[:, 4] %= 2 * np.pi
        self._copies = [_Copy(self.config) for _ in range(len(state))]
        for copy, row in zip(self._copies, state.tolist()):
            copy.place(row)
        self._state = state

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        action = as_batch(action, 2, "action")
        if len(action) != self.num_envs:
            raise ValueError(f"PushT.step: {len(action)} actions for {self.num_envs} copies")
        c, dt = self.config, 1.0 / self.config.sim_hz
        pos, vel = self._state[:, :2].copy(), self._state[:, 5:7].copy()
        target = pos + c.action_scale * action
        # The agent is kinematic (contacts never push it back), so its PD motion is integrated here in
        # numpy, with the same operations pymunk uses; each space only receives the velocity per step.
        velocities = np.empty((self.substeps, self.num_envs, 2))
        for k in range(self.substeps):
            vel = vel + (c.k_p * (target - pos) + c.k_v * (0.0 - vel)) * dt
            pos = pos + vel * dt
            velocities[k] = vel
        per_copy = velocities.transpose(1, 0, 2).tolist()
        start = self._state[:, :2].tolist()
        block = np.empty((self.num_envs, 3))
        for i, copy in enumerate(self._copies):
            block[i] = copy.advance(start[i], per_copy[i], dt)
        block[:, 2] %= 2 * np.pi
        self._state = np.concatenate([pos, block, vel], axis=1)
        return self._state.copy()

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3): white table, grey walls, the T in slate grey, the agent in royal blue."""
        state = self._state if state is None else as_batch(state, 7, "state")
        return self._renderer.draw(state[:, 0:2], state[:, 2:4], state[:, 4])

    def proprio(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float64)
        return np.concatenate([state[..., 0:2], state[..., 5:7]], axis=-1)

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Position error ||(agent xy, block xy) - goal's|| (N,)."""
        return np.linalg.norm(np.asarray(state, float)[..., :4] - np.asarray(goal, float)[..., :4], axis=-1)

    def angle_error(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """|block angle - goal's|, wrapped to [0, pi] (N,)."""
        return np.abs(wrap_angle(np.asarray(state, float)[..., 4] - np.asarray(goal, float)[..., 4]))

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        c = self.config
        return (self.distance(state, goal) < c.success_position) & (self.angle_error(state, goal) < c.success_angle)

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n (start, goal) pairs by DINO-WM's protocol: the start is a state of a scripted-pusher episode
        (the training data's distribution) at a uniformly drawn step in [0, steps - goal_steps]; the goal
        is the state reached by replaying that episode's next `goal_steps` actions from a reset to the
        start, so every goal is reachable. Pure function of the generator's state; leaves this task's
        own copies untouched."""
        cfg, k = PushTPusherConfig(), self.config.goal_steps
        sim = PushTTask(self.config)
        episodes = run_pusher(sim, rng, n, cfg, render=False)
        first = rng.integers(0, cfg.steps - k + 1, n)
        rows = np.arange(n)
        start = episodes["state"][rows, first]
        sim.reset_to(start)
        for t in range(k):
            sim.step(episodes["action"][rows, first + t])
        return start, sim.get_state()

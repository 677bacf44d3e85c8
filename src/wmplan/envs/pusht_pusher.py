"""A scripted, noisy PushT pusher: contact-rich episodes without expert demonstrations.

Each copy repeats plan -> approach -> push:
- plan: draw `candidates` pushes, each a point on the T's outline (uniform along its length), a push
  direction within `push_angle` of the inward normal there, a clearance and a push length; keep the one
  whose predicted block position, approach point and push end stay farthest inside the arena.
- approach: head for the point behind the contact point (against the push direction, clear of the block);
  when the block lies in the way, circle around it first. The contact point is tracked in the block's
  frame, so the approach follows a block that was bumped on the way.
- push: head for the contact point + push length along the push direction (fixed in the world), at a
  lower speed; then plan again. Each phase ends early on a timeout.
Every action gets Gaussian noise, and with a small probability is replaced by a uniform random one.

Speeds and noise match the statistics of DINO-WM's PushT training data (noisy replays of human
demonstrations), as its public dataset code records them: relative actions (in units of the 100-unit
action scale) of std 0.20 per axis and agent velocities of std about 75 units/s per axis. These defaults
give 0.19 and 71 (200 episodes, seed 0). Speed sets the goal difficulty: an evaluation goal is the state
25 env steps after its start along a pusher episode, and a pusher twice as fast puts it about as much
farther (the earlier approach speed 1.0 and push speed 0.5: std 0.37 and 139, the block moved 62 units
on average between start and goal instead of 32).

Episodes start from diffusion policy's reset distribution: agent uniform in [50, 450]^2, block in
[100, 400]^2 with a uniform angle, redrawn until the agent clears the block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from wmplan.envs.pusht_geometry import WORLD_SIZE, block_distance, rotate, tee_outline
from wmplan.range_checks import check_interval, check_ranges

if TYPE_CHECKING:  # the task imports this module (its evaluation goals come from pusher episodes)
    from wmplan.envs.pusht import PushTTask

APPROACH, PUSH = 0, 1


@dataclass(frozen=True)
class PushTPusherConfig:
    """The scripted pusher (lengths in world units, speeds as the largest action component)."""

    steps: int = 100
    """Env steps per episode (an episode stores steps + 1 frames)."""
    push_angle: float = 0.5
    """Largest angle (radians) between a push direction and the inward normal at the contact point."""
    gap_min: float = 4.0
    """Clearance range between the disk and the block at the approach point."""
    gap_max: float = 16.0
    push_min: float = 40.0
    """Range of the distance the agent travels while pushing."""
    push_max: float = 160.0
    approach_speed: float = 0.3
    push_speed: float = 0.15
    approach_tolerance: float = 8.0
    """The push starts once the agent is this close to the approach point."""
    approach_timeout: int = 40
    push_timeout: int = 30
    candidates: int = 8
    """Pushes drawn per plan; the one that keeps the block farthest inside the arena is kept."""
    arena_margin: float = 110.0
    """Planned pushes try to keep the block's centre this far from the world's edge."""
    noise_std: float = 0.07
    """Standard deviation of the Gaussian noise added to every action component."""
    random_action_prob: float = 0.02
    """Probability that a step's action is uniform in [-1, 1]^2 instead."""

    def check(self) -> None:
        """Refuse settings that cannot make an episode, naming them."""
        minimums = {"steps": 1, "candidates": 1, "push_angle": 0, "gap_min": 0, "push_min": 0, "noise_std": 0}
        minimums |= {"approach_tolerance": 0, "approach_timeout": 0, "push_timeout": 0, "arena_margin": 0}
        minimums |= {"random_action_prob": 0}
        check_ranges(self, minimums, ("approach_speed", "push_speed"), prefix="collector setting ")
        if not self.random_action_prob <= 1:
            raise ValueError(f"collector setting random_action_prob must lie in [0, 1], got {self.random_action_prob}")
        check_interval("gap_min", self.gap_min, "gap_max", self.gap_max)
        check_interval("push_min", self.push_min, "push_max", self.push_max)


def random_start(task: PushTTask, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 7) states: diffusion policy's reset distribution, the agent at rest and clear of the block."""
    state = np.zeros((n, 7))
    todo = np.arange(n)
    while len(todo):
        k = len(todo)
        state[todo, 0:2] = rng.uniform(50, 450, (k, 2))
        state[todo, 2:4] = rng.uniform(100, 400, (k, 2))
        state[todo, 4] = rng.uniform(0, 2 * np.pi, k)
        gap = block_distance(state[todo, None, 0:2], state[todo, 2:5], task.config.block_scale)[:, 0]
        todo = todo[gap < task.config.agent_radius + 2]
    return state


class ScriptedPusher:
    """The plan -> approach -> push controller for n copies; `act(state)` gives (n, 2) actions."""

    def __init__(self, task: PushTTask, cfg: PushTPusherConfig, rng: np.random.Generator, n: int):
        self.task, self.cfg, self.rng = task, cfg, rng
        outline = tee_outline(task.config.block_scale)
        edges = np.roll(outline, -1, axis=0) - outline
        self._corners, self._edges = outline, edges
        length = np.linalg.norm(edges, axis=1)
        self._edge_prob = length / length.sum()
        self._normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1) / length[:, None]  # outward
        self.phase = np.full(n, APPROACH)
        self.age = np.zeros(n, int)
        self.contact = np.zeros((n, 2))  # block-local contact point
        self.direction = np.zeros((n, 2))  # block-local push direction
        self.gap = np.zeros(n)
        self.length = np.zeros(n)
        self.goal = np.zeros((n, 2))  # world end point of the current push
        self._replan = np.ones(n, bool)

    def _plan(self, state: np.ndarray, rows: np.ndarray) -> None:
        c, k = self.cfg, self.cfg.candidates
        m, rng = len(rows), self.rng
        edge = rng.choice(len(self._edges), (m, k), p=self._edge_prob)
        along = rng.uniform(0, 1, (m, k, 1))
        contact = self._corners[edge] + along * self._edges[edge]
        turn = rng.uniform(-c.push_angle, c.push_angle, (m, k))
        inward = -self._normals[edge]
        cos, sin = np.cos(turn), np.sin(turn)
        direction = np.stack(
            [cos * inward[..., 0] - sin * inward[..., 1], sin * inward[..., 0] + cos * inward[..., 1]], -1
        )
        gap = rng.uniform(c.gap_min, c.gap_max, (m, k))
        length = rng.uniform(c.push_min, c.push_max, (m, k))
        # Score in the world: the block moves about half the push length; keep it, the approach point and
        # the push's end inside the arena.
        block = np.repeat(state[rows, 2:5], k, axis=0)
        flat = lambda a: a.reshape(m * k, -1)  # noqa: E731
        world_contact = rotate(flat(contact), block[:, 2]) + block[:, :2]
        world_dir = rotate(flat(direction), block[:, 2])
        cog = block[:, :2] + rotate(np.tile([0.0, 1.5 * self.task.config.block_scale], (m * k, 1)), block[:, 2])
        approach = world_contact - world_dir * (self.task.config.agent_radius + flat(gap))
        end = world_contact + world_dir * flat(length)
        moved = cog + 0.5 * world_dir * flat(length)
        penalty = (_outside(moved, c.arena_margin) + _outside(approach, 30.0) + _outside(end, 30.0)).reshape(m, k)
        best = np.argmin(penalty, axis=1)
        pick = np.arange(m)
        self.contact[rows], self.direction[rows] = contact[pick, best], direction[pick, best]
        self.gap[rows], self.length[rows] = gap[pick, best], length[pick, best]
        self.phase[rows], self.age[rows] = APPROACH, 0

    def act(self, state: np.ndarray) -> np.ndarray:
        """(n, 2) actions for states (n, 7); advances the controller by one env step."""
        c, tc = self.cfg, self.task.config
        if self._replan.any():
            self._plan(state, np.flatnonzero(self._replan))
        agent, block = state[:, 0:2], state[:, 2:5]
        contact = rotate(self.contact, block[:, 2]) + block[:, :2]
        direction = rotate(self.direction, block[:, 2])
        approach = contact - direction * (tc.agent_radius + self.gap[:, None])
        waypoint = np.where((self.phase == PUSH)[:, None], self.goal, _around_block(agent, approach, block, tc))
        # Kinematic agents pass through walls: keep waypoints inside the arena.
        waypoint = np.clip(waypoint, tc.agent_radius + 5, WORLD_SIZE - tc.agent_radius - 5)
        speed = np.where(self.phase == PUSH, c.push_speed, c.approach_speed)
        offset = waypoint - agent
        norm = np.linalg.norm(offset, axis=1, keepdims=True)
        action = offset / tc.action_scale * np.minimum(1.0, speed[:, None] * tc.action_scale / np.maximum(norm, 1e-9))
        # Phase changes take effect from the next step.
        self.age += 1
        arrived = np.linalg.norm(agent - approach, axis=1) < c.approach_tolerance
        start_push = (self.phase == APPROACH) & (arrived | (self.age > c.approach_timeout))
        self.goal[start_push] = (contact + direction * self.length[:, None])[start_push]
        done = (self.phase == PUSH) & ((np.linalg.norm(agent - self.goal, axis=1) < 10.0) | (self.age > c.push_timeout))
        self.phase[start_push], self.age[start_push] = PUSH, 0
        self._replan = done
        action = action + self.rng.normal(0.0, c.noise_std, action.shape)
        random = self.rng.random(len(action)) < c.random_action_prob
        action[random] = self.rng.uniform(-1, 1, (int(random.sum()), 2))
        return np.clip(action, -1.0, 1.0)


def _outside(points: np.ndarray, margin: float) -> np.ndarray:
    """How far (summed over x and y) points lie outside [margin, WORLD_SIZE - margin]^2."""
    return (np.maximum(margin - points, 0) + np.maximum(points - (WORLD_SIZE - margin), 0)).sum(axis=1)


def _around_block(agent: np.ndarray, approach: np.ndarray, block: np.ndarray, tc) -> np.ndarray:
    """The approach point, or a point on a circle around the block's centre when the straight way there
    passes through the block: step 0.6 rad around the circle towards the approach point's side."""
    cog = block[:, :2] + rotate(np.tile([0.0, 1.5 * tc.block_scale], (len(block), 1)), block[:, 2])
    reach = 2.6 * tc.block_scale + tc.agent_radius + 10.0  # the T's farthest point is ~2.55 scale from its cog
    t = np.linspace(0.0, 1.0, 9)[None, :, None]
    path = agent[:, None] + t * (approach - agent)[:, None]
    blocked = block_distance(path, block, tc.block_scale).min(axis=1) < tc.agent_radius
    to_agent, to_approach = agent - cog, approach - cog
    at, ap = np.arctan2(to_agent[:, 1], to_agent[:, 0]), np.arctan2(to_approach[:, 1], to_approach[:, 0])
    turn = (ap - at + np.pi) % (2 * np.pi) - np.pi
    heading = at + np.clip(turn, -0.6, 0.6)
    radius = np.maximum(np.linalg.norm(to_agent, axis=1), reach)
    orbit = cog + radius[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return np.where(blocked[:, None], orbit, approach)


def run_pusher(
    task: PushTTask, rng: np.random.Generator, n: int, cfg: PushTPusherConfig, render: bool = True
) -> dict[str, np.ndarray]:
    """n pusher episodes at once: float64 `state` (n, steps + 1, 7) and `action` (n, steps + 1, 2) with
    the last action NaN, and uint8 `obs` (n, steps + 1, H, W, 3) if `render`."""
    task.reset_to(random_start(task, rng, n))
    pusher = ScriptedPusher(task, cfg, rng, n)
    state = np.empty((n, cfg.steps + 1, 7))
    action = np.full((n, cfg.steps + 1, 2), np.nan)
    size = task.image_size
    obs = np.empty((n, cfg.steps + 1, size, size, 3) if render else (0,), np.uint8)
    state[:, 0] = task.get_state()
    for t in range(cfg.steps + 1):
        if render:
            obs[:, t] = task.render()  # filled in place: a list of frames stacked at the end costs twice
        if t < cfg.steps:
            action[:, t] = pusher.act(state[:, t])
            state[:, t + 1] = task.step(action[:, t])
    return {"state": state, "action": action} | ({"obs": obs} if render else {})

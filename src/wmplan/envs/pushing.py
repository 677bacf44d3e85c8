"""Shared machinery of the pushing tasks (Rope, Granular): particles on a table, moved by a pusher.

Table coordinates: the table is the square [-1, 1]^2 (x right, y up, seen from above); every length
below (radii, link lengths, distances, thresholds) is in these units, and MuJoCo simulates in them
directly (there is no gravity, so the unit of length is free).

Particles are spheres that rest on the table and slide on it: each has two slide joints (x, y) and no
other degree of freedom, so z is constant and dropped from the state, and a particle can never leave
the table plane or stack on another. The table's support and friction are modelled by those joints:
viscous `damping` (particles stop soon after the pusher leaves them; optional dry `frictionloss`),
and joint ranges that keep every centre on the table. The table plane is drawn in the model but has
no contacts (it would only hold the particles at a height they already keep).

State (N, 2K) = the K particles' xy, flattened [x0, y0, x1, y1, ...]; velocities are not part of it.
The pusher is a vertical capsule on three slide joints, tied to a mocap target by a `connect`
constraint: the target's path is the action, and the pusher follows it as a real moving body (a
mocap body itself has no velocity in MuJoCo's contact model, so contact damping would hold pushed
particles up to a diameter deep inside it). An action (4,) = [x0, y0, x1, y1] in table
coordinates, clipped to [-1, 1]: one env step
  1. places the pusher at rest above (x0, y0), clear of every particle (nothing moves meanwhile),
  2. lowers it onto the table over `lower_steps` physics steps (particles under it are pushed aside),
  3. pushes in a straight line to (x1, y1) at `push_step` table units per physics step (a constant
     speed, so the contact physics does not depend on the push's length and no particle tunnels
     through the pusher: a push of length L takes ceil(L / push_step) physics steps),
  4. raises it over `lower_steps` physics steps and lets the particles settle for `settle_steps`,
  5. zeroes all velocities and clips centres onto the table.
Step 5 makes each step a pure function of (state, action): `reset_to(s); step(a)` gives the same
result whatever happened before, which planning and evaluation rely on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.base import as_batch, settings_from_dict
from wmplan.envs.mujoco_gl import import_mujoco

mujoco = import_mujoco()

PUSHER_HALF_LENGTH = 0.1  # half-length of the capsule's cylinder; lowered, it spans the particles' height
PUSHER_MASS_RATIO = 100.0  # pusher mass / particle mass: the pile barely slows the pusher


@dataclass(frozen=True)
class PushingSettings:
    """Geometry, physics and rendering shared by the pushing tasks (lengths in table units)."""

    image_size: int = 64
    """Side of the square top-down RGB observation; the image spans the whole table."""
    n_particles: int = 24
    """K, the number of particles (the state has 2K numbers)."""
    particle_radius: float = 0.03
    """Radius of every particle, in physics and in images."""
    pusher_radius: float = 0.05
    """Radius of the pusher (a vertical capsule; not drawn: images show the state only)."""
    timestep: float = 0.01
    """Physics step (simulated seconds); only ratios to the contact time constants matter."""
    push_step: float = 0.005
    """Pusher travel per physics step while pushing: a quarter of a granular particle's radius, so
    nothing tunnels and impacts stay gentle (overlap on impact grows with this speed)."""
    lower_steps: int = 4
    """Physics steps to lower the pusher onto the table (and to raise it after the push)."""
    settle_steps: int = 10
    """Physics steps with the pusher raised at the end of each env step, before velocities are zeroed."""
    particle_mass: float = 0.01
    damping: float = 0.3
    """Viscous drag of the table on each particle (per slide joint): a particle the pusher lets go
    coasts at most speed * mass / damping = 0.017 (at the pushing speed, 0.5 per second)."""
    frictionloss: float = 0.0
    """Dry friction of the table on each particle (per slide joint); off by default: it doubles the
    cost of a physics step and the drag alone already stops particles."""
    contact_timeconst: float = 0.02
    """Time constant of contacts, table edges and rope links (MuJoCo solref); at least 2 timesteps."""
    contact_hardness: float = 0.9
    """Constraint impedance (MuJoCo solimp). Harder contacts (closer to 1) store more energy when
    the pusher squeezes a pile and shoot particles out of it, through their neighbours; 0.9 (MuJoCo's
    dmin) keeps overlaps during a push mostly below a third of a radius."""
    contact_friction: float = 0.0
    """Tangential friction between particles (and with the pusher); 0 uses frictionless contacts.
    Planar particles cannot roll, so friction jams a pushed pile against the pusher (deep overlaps)."""
    success_threshold: float = 0.1
    """An episode succeeds when the Chamfer distance to the goal is below this."""
    goal_min_distance: float = 0.2
    """Evaluation goals are at least this Chamfer distance from their start (no trivial episodes)."""
    particle_colour: tuple[int, int, int] = (40, 60, 170)
    table_colour: tuple[int, int, int] = (215, 205, 185)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PushingSettings:
        return settings_from_dict(cls, values, f"{cls.__name__} keys")


def build_mjcf(c: PushingSettings, link_length: float | None = None) -> str:
    """MJCF of the table, K planar particles and the pusher; with `link_length`, consecutive particles
    are tied by inextensible strings (tendons limited to that length): a rope of beads."""
    r, lim = c.particle_radius, 1.0 - c.particle_radius
    condim = 3 if c.contact_friction > 0 else 1
    solref, solimp = f"{c.contact_timeconst} 1", f"{c.contact_hardness} {c.contact_hardness} 0.001"
    bodies, tendons = [], []
    for i in range(c.n_particles):
        bodies.append(
            f'<body name="p{i}" pos="0 0 {r}">'
            f'<joint name="x{i}" type="slide" axis="1 0 0" range="{-lim} {lim}"/>'
            f'<joint name="y{i}" type="slide" axis="0 1 0" range="{-lim} {lim}"/>'
            f'<geom type="sphere" size="{r}" mass="{c.particle_mass}"/><site name="s{i}"/></body>'
        )
        if link_length is not None and i > 0:
            tendons.append(
                f'<spatial limited="true" range="0 {link_length}"><site site="s{i - 1}"/><site site="s{i}"/></spatial>'
            )
    return f"""<mujoco model="pushing">
  <option timestep="{c.timestep}" gravity="0 0 0" integrator="implicitfast" solver="Newton" iterations="30"/>
  <default>
    <joint damping="{c.damping}" frictionloss="{c.frictionloss}" limited="true" solreflimit="{solref}" solimplimit="{solimp}"/>
    <geom condim="{condim}" friction="{c.contact_friction} 0 0" contype="1" conaffinity="1" solref="{solref}" solimp="{solimp}"/>
    <tendon solreflimit="{solref}" solimplimit="{solimp}"/>
  </default>
  <worldbody>
    <geom name="table" type="plane" size="1 1 0.01" contype="0" conaffinity="0"/>
    {"".join(bodies)}
    <body name="pusher">
      <joint type="slide" axis="1 0 0" damping="0" limited="false"/>
      <joint type="slide" axis="0 1 0" damping="0" limited="false"/>
      <joint type="slide" axis="0 0 1" damping="0" limited="false"/>
      <geom type="capsule" size="{c.pusher_radius} {PUSHER_HALF_LENGTH}" mass="{PUSHER_MASS_RATIO * c.particle_mass}"/>
    </body>
    <body name="target" mocap="true"/>
  </worldbody>
  <equality><connect body1="pusher" body2="target" anchor="0 0 0" solref="{solref}" solimp="{solimp}"/></equality>
  <tendon>{"".join(tendons)}</tendon>
</mujoco>"""


class PushingTask:
    """N copies of particles pushed on a table; a subclass supplies the model and start/goal sampling.

    Copies share one MjModel and a scratch MjData: the state (zero velocities) defines a copy fully,
    so each step rebuilds the physics state from it and simulates the copies one after another
    (mujoco.rollout is no faster here: a physics step costs far more than the Python loop)."""

    name = "pushing"
    proprio_dim = 0
    action_dim = 4

    def __init__(self, config: PushingSettings, link_length: float | None = None):
        self.config = config
        self.image_size = config.image_size
        self.state_dim = 2 * config.n_particles
        self.action_low = np.full(4, -1.0)
        self.action_high = np.full(4, 1.0)
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(config, link_length))
        self.data = mujoco.MjData(self.model)
        self._state = np.zeros((0, self.state_dim))
        self._lim = 1.0 - config.particle_radius

    # ----- the Task protocol ----------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def num_envs(self) -> int:
        return len(self._state)

    def reset_to(self, state: np.ndarray) -> None:
        """Place the particles exactly at `state` (N, 2K), at rest. Centres must lie on the table
        ([-1, 1]); those within a radius of its edge are moved in by the edge (the joint range).
        Overlapping particles (or rope beads further apart than a link) are separated by the physics
        of the next step, not here."""
        state = as_batch(state, self.state_dim, "state")
        off = np.abs(state) > 1.0
        if off.any():
            n, j = np.argwhere(off)[0]
            raise ValueError(
                f"{self.name}.reset_to: particle {j // 2} of copy {n} has {'xy'[j % 2]} = {state[n, j]:.3f}, "
                f"off the table; particle centres must lie in [-1, 1] (table coordinates)"
            )
        self._state = np.clip(state, -self._lim, self._lim)

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        action = np.clip(as_batch(action, 4, "action"), -1.0, 1.0)
        if len(action) != self.num_envs:
            raise ValueError(f"{self.name}.step: {len(action)} actions for {self.num_envs} copies")
        self._state = np.stack([self._push(q, a) for q, a in zip(self._state, action)])
        return self._state.copy()

    def proprio(self, state: np.ndarray) -> np.ndarray:
        """No proprioception: an (N, 0) array."""
        return np.zeros(np.shape(state)[:-1] + (0,))

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Chamfer distance (N,) between the particle sets; see `chamfer_distance`."""
        return chamfer_distance(self.particles(state), self.particles(goal))

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.distance(state, goal) < self.config.success_threshold

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) top-down images of the table and particles, drawn from the state."""
        state = self._state if state is None else as_batch(state, self.state_dim, "state")
        return draw_discs(self._drawn_points(self.particles(state)), self.config.particle_radius, self.config)

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # ----- helpers --------------------------------------------------------------------------------
    def valid_goal(self, start: np.ndarray, goal: np.ndarray) -> bool:
        """Whether a candidate goal (K, 2) lies on the table and far enough from its start (K, 2)."""
        on_table = bool(np.all(np.abs(goal) <= self._lim))
        return on_table and chamfer_distance(start[None], goal[None])[0] >= self.config.goal_min_distance

    def particles(self, state: np.ndarray) -> np.ndarray:
        """(N, K, 2) particle positions of states (N, 2K) (or (K, 2) of a single (2K,) state)."""
        state = np.asarray(state, dtype=np.float64)
        return state.reshape(state.shape[:-1] + (self.config.n_particles, 2))

    def _drawn_points(self, particles: np.ndarray) -> np.ndarray:
        """(N, M, 2) centres of the discs that draw the particles (the rope adds points between beads)."""
        return particles

    def pusher_path(self, action: np.ndarray) -> np.ndarray:
        """(T, 3) positions of the pusher's target, one per physics step of the env step `action` (4,);
        the pusher starts at rest at the first row's xy and the raised height."""
        c = self.config
        start, end = action[:2], action[2:]
        low, high = self._heights()
        z = np.linspace(high, low, c.lower_steps + 1)[1:]
        lower = np.column_stack([np.tile(start, (c.lower_steps, 1)), z])
        n_push = max(1, int(np.ceil(np.linalg.norm(end - start) / c.push_step)))
        t = np.arange(1, n_push + 1)[:, None] / n_push
        push = np.column_stack([start + t * (end - start), np.full(n_push, low)])
        raise_ = np.column_stack([np.tile(end, (c.lower_steps, 1)), z[::-1]])
        settle = np.tile([*end, high], (c.settle_steps, 1))
        return np.concatenate([lower, push, raise_, settle])

    def _heights(self) -> tuple[float, float]:
        """Pusher centre heights: lowered (the lower hemisphere's centre on the table plane, so the
        cylinder spans the particles) and raised (its bottom clear of every particle)."""
        low = PUSHER_HALF_LENGTH
        return low, low + 2 * self.config.particle_radius + self.config.pusher_radius + 0.01

    def _push(self, q: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Final particle qpos after one env step of one copy from rest at particle qpos `q`; clipped
        onto the table (joint limits are soft, so a pressed particle can overshoot slightly)."""
        model, d, k = self.model, self.data, self.state_dim
        mujoco.mj_resetData(model, d)  # zero velocities and solver warm start: a pure function of q
        d.qpos[:k] = q
        d.qpos[k : k + 3] = [*action[:2], self._heights()[1]]  # particles first, then the pusher
        target = d.mocap_pos
        for position in self.pusher_path(action):
            target[0] = position
            mujoco.mj_step(model, d)
        return np.clip(d.qpos[:k], -self._lim, self._lim)


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chamfer distance (N,) between point sets a (N, K, 2) and b (N, M, 2), as DINO-WM computes it:
    CD = mean_i min_j |a_i - b_j| + mean_j min_i |a_i - b_j| (Euclidean, table units). Zero iff the
    sets coincide, symmetric, and unchanged by reordering the points."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = np.linalg.norm(a[..., :, None, :] - b[..., None, :, :], axis=-1)  # (N, K, M)
    return d.min(-1).mean(-1) + d.min(-2).mean(-1)


def draw_discs(points: np.ndarray, radius: float, c: PushingSettings) -> np.ndarray:
    """uint8 (N, H, W, 3): anti-aliased discs of `radius` (table units) at points (N, M, 2) on the table.

    Each disc covers only a small window of pixels, so the cost is O(N * M * window) whatever the
    image size; overlapping discs take the larger coverage (np.maximum.at)."""
    n, m, _ = points.shape
    size = c.image_size
    scale = size / 2.0  # pixels per table unit
    col = (points[..., 0] + 1.0) * scale - 0.5  # pixel centres at integers; row 0 is the table's top edge
    row = (1.0 - points[..., 1]) * scale - 0.5
    rad = radius * scale
    w = int(np.ceil(rad + 0.5))
    off = np.arange(-w, w + 1)
    pc = np.round(col)[..., None, None] + off[None, None, None, :]  # (N, M, 1, 2w+1)
    pr = np.round(row)[..., None, None] + off[None, None, :, None]  # (N, M, 2w+1, 1)
    dist = np.hypot(pc - col[..., None, None], pr - row[..., None, None])
    alpha = np.clip(rad + 0.5 - dist, 0.0, 1.0)  # coverage of a pixel by the disc's edge, approximately
    pc, pr = np.broadcast_to(pc, alpha.shape), np.broadcast_to(pr, alpha.shape)
    inside = (alpha > 0) & (pc >= 0) & (pc < size) & (pr >= 0) & (pr < size)
    copy = np.broadcast_to(np.arange(n)[:, None, None, None], alpha.shape)
    flat = (copy[inside] * size + pr[inside].astype(np.int64)) * size + pc[inside].astype(np.int64)
    cover = np.zeros(n * size * size, dtype=np.float32)
    np.maximum.at(cover, flat, alpha[inside].astype(np.float32))
    cover = cover.reshape(n, size, size, 1)
    table = np.asarray(c.table_colour, dtype=np.float32)
    colour = np.asarray(c.particle_colour, dtype=np.float32)
    return (table + cover * (colour - table) + 0.5).astype(np.uint8)

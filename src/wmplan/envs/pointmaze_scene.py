"""PointMaze scene: the maze geometry, its MuJoCo model (MJCF) and two top-down renderers.

Coordinates follow D4RL's maze2d. Maze row w of the layout string is world x = w + 1 and column h is
world y = h + 1; each wall cell is a 1 x 1 box centred there. The point mass's body sits at world
(1.2, 1.2), so the state's xy (the slide joints' qpos) is the world position minus (1.2, 1.2): D4RL's
own quirk, kept so that states, goals and the 0.5 success radius mean what they mean in D4RL and
DINO-WM (in the U-maze, free x and y span about [0.4, 3.2]).

Images are a map view from straight above (orthographic): image columns run along +x, image rows
along -y (the top row is the largest y), the whole maze including its outer walls fills the frame.
Colours are flat (no shading, no checker floor), so that a numpy drawing of the same geometry
matches MuJoCo's picture; the point is drawn as D4RL's visible site (radius 0.2), twice its
collision radius.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmplan.envs.mujoco_gl import import_mujoco

BODY_OFFSET = np.array([1.2, 1.2])  # D4RL's particle body position: world xy = state xy + this
FREE_TILES = set("OG 0")  # D4RL's free tiles ('G' marks its fixed goal, free space here)
SUPERSAMPLE = 8  # sub-samples per pixel side for the anti-aliased background


@dataclass(frozen=True)
class MazeGeometry:
    """Wall cells of a maze layout, and distances and pixels computed from them (state coordinates)."""

    walls: np.ndarray  # bool (rows, cols): True where a layout cell is a wall

    @classmethod
    def parse(cls, layout: str) -> MazeGeometry:
        """A layout like "#####/#OOO#/###O#/#OOO#/#####": rows separated by '/', '#' is a wall."""
        rows = layout.strip().split("/")
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"maze layout {layout!r}: every row needs the same length")
        bad = set("".join(rows)) - FREE_TILES - {"#"}
        if bad:
            raise ValueError(f"maze layout {layout!r}: unknown tiles {sorted(bad)}; use '#' (wall) and 'O' (free)")
        walls = np.array([[c == "#" for c in r] for r in rows])
        if walls.all():
            raise ValueError(f"maze layout {layout!r} has no free cell")
        return cls(walls)

    @property
    def wall_centres(self) -> np.ndarray:
        """(K, 2) centres of the wall boxes in state coordinates."""
        return np.argwhere(self.walls) + 1.0 - BODY_OFFSET

    @property
    def free_cells(self) -> np.ndarray:
        """(C, 2) int layout indices (row, column) of the free cells, in a fixed order."""
        return np.argwhere(~self.walls)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest state xy inside the outer edge of the maze grid."""
        lo = 0.5 - BODY_OFFSET
        return lo, lo + np.array(self.walls.shape, dtype=float)

    def clearance(self, xy: np.ndarray) -> np.ndarray:
        """(N,) signed distance from each point to the nearest wall box (negative inside a wall);
        points outside the maze grid get -inf."""
        xy = np.asarray(xy, dtype=float)[..., :2]
        d = np.abs(xy[:, None, :] - self.wall_centres[None]) - 0.5  # (N, K, 2) per-axis gap to each box
        outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
        inside = np.minimum(d.max(axis=-1), 0.0)
        dist = (outside + inside).min(axis=1)
        lo, hi = self.bounds
        off_grid = np.any((xy < lo) | (xy > hi), axis=-1)
        return np.where(off_grid, -np.inf, dist)

    def cell_of(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) int layout index (row, column) of the cell each point lies in."""
        return np.floor(np.asarray(xy, dtype=float)[..., :2] + BODY_OFFSET - 0.5).astype(int)

    # ----- image mapping ----------------------------------------------------------------------
    @property
    def view(self) -> tuple[np.ndarray, float]:
        """World xy of the view's (left, bottom) corner and the side length it spans."""
        side = float(max(self.walls.shape))
        centre = 0.5 + np.array(self.walls.shape, dtype=float) / 2
        return centre - side / 2, side

    def to_pixels(self, xy: np.ndarray, size: int) -> np.ndarray:
        """(N, 2) continuous (column, row) image coordinates of state xy; pixel j spans [j, j + 1)."""
        corner, side = self.view
        world = np.asarray(xy, dtype=float)[..., :2] + BODY_OFFSET
        scale = size / side
        return np.stack([(world[..., 0] - corner[0]) * scale, (corner[1] + side - world[..., 1]) * scale], axis=-1)

    def wall_coverage(self, size: int) -> np.ndarray:
        """float (size, size): the fraction of each pixel covered by walls (supersampled)."""
        corner, side = self.view
        s = size * SUPERSAMPLE
        centres = (np.arange(s) + 0.5) / s * side
        wx, wy = corner[0] + centres, corner[1] + side - centres  # columns along x, rows along -y
        col_cell = np.clip(np.floor(wx - 0.5).astype(int), -1, self.walls.shape[0])
        row_cell = np.clip(np.floor(wy - 0.5).astype(int), -1, self.walls.shape[1])
        padded = np.pad(self.walls, 1, constant_values=False)  # nothing is drawn outside the grid
        fine = padded[col_cell[None, :] + 1, row_cell[:, None] + 1].astype(float)  # (rows=y, cols=x)
        return fine.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


@dataclass(frozen=True)
class SceneStyle:
    """What the renderers draw; the physics parameters used in the MJCF."""

    image_size: int
    floor_rgb: tuple[float, float, float]
    wall_rgb: tuple[float, float, float]
    point_rgb: tuple[float, float, float]
    marker_radius: float
    point_radius: float
    timestep: float
    gear: float
    damping: float


def maze_mjcf(geometry: MazeGeometry, style: SceneStyle) -> str:
    """The MJCF of D4RL's point_maze (same masses, damping, gear, friction, Euler at `timestep`).

    One difference changes the motion, by millimetres: the contact margin is 0, not D4RL's 0.002.
    MuJoCo 4 changed how a margin acts (a mass at rest against a wall sits 2 mm deeper than under
    MuJoCo 3), and every trajectory that touches a wall then differs between versions; without a
    margin, MuJoCo 3.1, 3.2 and 4.0 give bit-identical trajectories. Differences that do not change
    the motion: walls and markers have flat colours and lighting;
    the visible site floats above the walls so the view from above never hides it; a top-down camera;
    the unused target site is dropped; the floor does not collide (its contact pushes along z, which
    has no joint: trajectories are bit-identical, steps about 20% faster); the solver's warm start is
    off, so a step depends only on (state, action) and reset_to(get_state()) continues exactly."""
    rgb = lambda c: " ".join(f"{v:g}" for v in c)  # noqa: E731
    walls = "\n".join(
        f'    <geom name="wall_{w}_{h}" type="box" pos="{w + 1} {h + 1} 0" size=".5 .5 .2" rgba="{rgb(style.wall_rgb)} 1"/>'
        for w, h in np.argwhere(geometry.walls)
    )
    corner, side = geometry.view
    cx, cy = corner + side / 2
    return f"""<mujoco model="point_maze">
  <compiler inertiafromgeom="true" angle="radian"/>
  <option timestep="{style.timestep:g}" gravity="0 0 0" iterations="20" integrator="Euler">
    <flag warmstart="disable"/>
  </option>
  <default>
    <joint damping="{style.damping:g}" limited="false"/>
    <geom friction=".5 .1 .1" density="1000" margin="0" condim="1" contype="2" conaffinity="1"/>
  </default>
  <visual>
    <headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/>
    <map znear="0.01"/>
  </visual>
  <worldbody>
    <geom name="ground" type="plane" size="40 40 0.25" pos="0 0 -0.1" contype="0" conaffinity="0" rgba="{rgb(style.floor_rgb)} 1"/>
    <camera name="top" pos="{cx:g} {cy:g} 2" xyaxes="1 0 0 0 1 0" fovy="{side:g}"/>
    <body name="particle" pos="{BODY_OFFSET[0]:g} {BODY_OFFSET[1]:g} 0">
      <geom name="particle_geom" type="sphere" size="{style.point_radius:g}" rgba="0 0 1 0" contype="1"/>
      <site name="particle_site" pos="0 0 0.3" size="{style.marker_radius:g}" rgba="{rgb(style.point_rgb)} 1"/>
      <joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
      <joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
    </body>
{walls}
  </worldbody>
  <actuator>
    <motor joint="ball_x" ctrlrange="-1 1" ctrllimited="true" gear="{style.gear:g}"/>
    <motor joint="ball_y" ctrlrange="-1 1" ctrllimited="true" gear="{style.gear:g}"/>
  </actuator>
</mujoco>
"""


def make_orthographic(model, camera: str = "top") -> None:
    """Switch a camera to orthographic projection (fovy is then the view's height in metres).
    Done on the compiled model: the MJCF attribute changed name between MuJoCo versions."""
    cam = model.camera(camera).id
    if hasattr(model, "cam_projection"):
        model.cam_projection[cam] = 1  # mjPROJ_ORTHOGRAPHIC
    elif hasattr(model, "cam_orthographic"):
        model.cam_orthographic[cam] = 1
    else:
        raise RuntimeError("this MuJoCo has no orthographic cameras; upgrade mujoco or use render='numpy'")


class NumpyMazeRenderer:
    """Draws the scene from states alone, batched: a cached anti-aliased background plus one disk per
    image, blended by pixel coverage in a small window around the disk."""

    def __init__(self, geometry: MazeGeometry, style: SceneStyle):
        self.geometry, self.size = geometry, style.image_size
        cover = geometry.wall_coverage(self.size)[..., None]
        floor, wall = np.array(style.floor_rgb) * 255, np.array(style.wall_rgb) * 255
        self.background = np.rint(floor * (1 - cover) + wall * cover).astype(np.uint8)  # (H, W, 3)
        self.point = (np.array(style.point_rgb) * 255).astype(np.float32)
        self.radius_px = style.marker_radius * self.size / geometry.view[1]
        self.offsets = np.arange(-int(np.ceil(self.radius_px + 1)), int(np.ceil(self.radius_px + 1)) + 1)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) images of states (N, >=2)."""
        n = len(state)
        images = np.repeat(self.background[None], n, axis=0)
        if n == 0:
            return images
        uv = self.geometry.to_pixels(state, self.size).astype(np.float32)  # (N, 2) continuous (col, row)
        base = np.floor(uv).astype(int)
        cols = np.clip(base[:, :1] + self.offsets[None], 0, self.size - 1)  # (N, K)
        rows = np.clip(base[:, 1:] + self.offsets[None], 0, self.size - 1)
        dx = cols + 0.5 - uv[:, :1]
        dy = rows + 0.5 - uv[:, 1:]
        dist = np.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)  # (N, K, K)
        # Approximate pixel coverage: 1 inside, 0 outside, linear across the one-pixel-wide rim.
        alpha = np.clip(self.radius_px + 0.5 - dist, 0.0, 1.0)[..., None]
        idx = (np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :])
        window = images[idx].astype(np.float32)
        images[idx] = np.rint(window * (1 - alpha) + self.point * alpha).astype(np.uint8)
        return images


class MujocoMazeRenderer:
    """MuJoCo's own OpenGL picture from the top camera (needs EGL or another GL backend)."""

    def __init__(self, model, size: int):
        self.mujoco = import_mujoco()
        self.model = model
        make_orthographic(model)  # only the picture depends on the camera
        self.data = self.mujoco.MjData(model)
        try:
            self.renderer = self.mujoco.Renderer(model, size, size)
        except Exception as exc:  # the backends raise assorted errors when no GL context can be made
            raise RuntimeError(
                f"PointMaze render='mujoco' needs an OpenGL context ({exc}); set MUJOCO_GL=egl before "
                f"Python imports mujoco, or use render='numpy'"
            ) from exc

    def __call__(self, state: np.ndarray) -> np.ndarray:
        images = np.zeros((len(state), self.renderer.height, self.renderer.width, 3), np.uint8)
        for i, s in enumerate(state):
            self.data.qpos[:] = s[:2]
            self.mujoco.mj_kinematics(self.model, self.data)  # positions are all the picture needs ...
            self.mujoco.mj_camlight(self.model, self.data)  # ... and the camera's pose
            self.renderer.update_scene(self.data, camera="top")
            images[i] = self.renderer.render()
        return images

    def close(self) -> None:
        self.renderer.close()

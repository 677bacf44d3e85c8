import json

import numpy as np
import pytest

from wmplan.data.collect_deformable import RandomPushConfig, aimed_pushes, random_pushes_granular, random_pushes_rope
from wmplan.envs.granular import GranularSettings, GranularTask
from wmplan.envs.pushing import chamfer_distance
from wmplan.envs.rope import RopeSettings, RopeTask


@pytest.fixture(scope="module")
def rope():
    return RopeTask()


@pytest.fixture(scope="module")
def granular():
    return GranularTask()


def _straight_rope(task, centre=(0.0, 0.0), angle=0.0):
    k, link = task.config.n_particles, task.config.link_length
    t = (np.arange(k) - (k - 1) / 2) * link
    return (np.asarray(centre) + t[:, None] * [np.cos(angle), np.sin(angle)]).reshape(-1)


# ----- determinism --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rope", "granular"])
def test_step_is_a_pure_function_of_state_and_action(name, request):
    task = request.getfixturevalue(name)
    start, _ = task.sample_start_goal(np.random.default_rng(1), 2)
    actions = aimed_pushes(task, start, np.random.default_rng(2), RandomPushConfig())
    task.reset_to(start)
    first = task.step(actions)
    task.step(actions)  # some history, then the same (state, action) again
    task.reset_to(start)
    np.testing.assert_array_equal(task.step(actions), first)
    task.reset_to(start[1:])  # alone
    np.testing.assert_array_equal(task.step(actions[1:]), first[1:])
    task.reset_to(start[::-1])  # in another batch order
    np.testing.assert_array_equal(task.step(actions[::-1]), first[::-1])


@pytest.mark.parametrize("name", ["rope", "granular"])
def test_sample_start_goal_is_a_pure_function_of_the_generator(name, request):
    task = request.getfixturevalue(name)
    a = task.sample_start_goal(np.random.default_rng(5), 3)
    b = task.sample_start_goal(np.random.default_rng(5), 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# ----- physics ------------------------------------------------------------------------------------
def test_rope_stays_connected_and_does_not_fold_through_itself(rope):
    rng = np.random.default_rng(0)
    state, _ = rope.sample_start_goal(rng, 4)
    rope.reset_to(state)
    cfg = RandomPushConfig(length=(0.2, 0.8), random_fraction=0.2)
    r, link = rope.config.particle_radius, rope.config.link_length
    for _ in range(15):
        state = rope.step(aimed_pushes(rope, state, rng, cfg))
        links = rope.link_lengths(state)
        assert links.max() < 1.05 * link, "a link stretched: the rope is coming apart"
        assert links.min() > 1.6 * r, "neighbouring beads sank into each other"
        p = rope.particles(state)
        i, j = np.triu_indices(rope.config.n_particles, 2)
        gaps = np.linalg.norm(p[:, i] - p[:, j], axis=-1)
        assert gaps.min() > 1.6 * r, "the rope passed through itself"


@pytest.mark.parametrize("name", ["rope", "granular"])
def test_particles_stay_on_the_table_when_pushed_off_its_edges(name, request):
    task = request.getfixturevalue(name)
    start, _ = task.sample_start_goal(np.random.default_rng(3), 4)
    task.reset_to(start)
    # Sweep everything toward each edge and corner, starting behind the material.
    sweeps = np.array([[-1, 0, 1, 0], [1, 0, -1, 0], [0, -1, 0, 1], [-1, -1, 1, 1]], dtype=float)
    for shift in range(4):
        state = task.step(np.roll(sweeps, shift, axis=0))
        assert np.all(np.abs(state) <= 1.0 - task.config.particle_radius + 1e-12)
    task.reset_to(state)  # a state the task produced is always a valid state


def test_a_push_moves_what_it_touches_and_nothing_far_away(granular):
    start, _ = granular.sample_start_goal(np.random.default_rng(4), 1)
    p = granular.particles(start)[0]
    centroid = p.mean(0)
    push = np.array([[centroid[0] - 0.7, centroid[1], centroid[0] + 0.2, centroid[1]]])
    granular.reset_to(start)
    moved = np.linalg.norm(granular.particles(granular.step(push))[0] - p, axis=1)
    # Particles in the middle of the pusher's sweep, before its end point, must make way.
    near_path = (np.abs(p[:, 1] - centroid[1]) < granular.config.pusher_radius / 2) & (p[:, 0] < centroid[0] + 0.2)
    far = np.linalg.norm(p - [centroid[0] + 0.2, centroid[1]], axis=1) > 0.45  # well beyond it and its end
    far &= np.abs(p[:, 1] - centroid[1]) > 0.3
    assert near_path.sum() > 5 and far.sum() > 5
    assert np.all(moved[near_path] > 0.02), "particles in the pusher's path were left behind"
    np.testing.assert_array_equal(moved[far], 0.0)


def test_a_push_through_the_rope_drags_it_and_a_miss_changes_nothing(rope):
    straight = _straight_rope(rope)[None]
    rope.reset_to(straight)
    after = rope.particles(rope.step(np.array([[0.0, -0.3, 0.0, 0.2]])))[0]  # across the middle, upward
    k = rope.config.n_particles
    assert after[k // 2, 1] > 0.1, "the middle bead should follow the pusher"
    rope.reset_to(straight)
    np.testing.assert_allclose(
        rope.step(np.array([[-0.5, -0.6, 0.5, -0.6]])), straight, atol=1e-9
    )  # taut links creep by 1e-11


def test_settled_starts_do_not_move_without_a_touch(rope, granular):
    for task in (rope, granular):
        start, _ = task.sample_start_goal(np.random.default_rng(6), 2)
        task.reset_to(start)
        np.testing.assert_allclose(task.step(np.full((2, 4), -0.98)), start, atol=1e-9)


# ----- distance, protocol, rendering --------------------------------------------------------------
def test_chamfer_distance_is_zero_on_itself_symmetric_and_positive_otherwise():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (3, 30, 2)), rng.uniform(-1, 1, (3, 30, 2))
    np.testing.assert_array_equal(chamfer_distance(a, a), 0.0)
    np.testing.assert_allclose(chamfer_distance(a, b), chamfer_distance(b, a))
    assert np.all(chamfer_distance(a, b) > 0)
    np.testing.assert_allclose(chamfer_distance(a, a[:, rng.permutation(30)]), 0.0)  # order does not matter
    np.testing.assert_allclose(chamfer_distance(np.zeros((1, 1, 2)), np.full((1, 1, 2), [0.3, 0.4])), [1.0])


@pytest.mark.parametrize("name", ["rope", "granular"])
def test_goals_are_on_the_table_far_enough_and_the_start_transformed(name, request):
    task = request.getfixturevalue(name)
    start, goal = task.sample_start_goal(np.random.default_rng(7), 5)
    lim = 1.0 - task.config.particle_radius
    assert np.all(np.abs(start) <= lim) and np.all(np.abs(goal) <= lim)
    assert np.all(task.distance(start, goal) >= task.config.goal_min_distance)
    assert not task.is_success(start, goal).any() and task.is_success(goal, goal).all()
    s, g = task.particles(start), task.particles(goal)
    ds = np.linalg.norm(s[:, :, None] - s[:, None], axis=-1)
    dg = np.linalg.norm(g[:, :, None] - g[:, None], axis=-1)
    ratio = dg.sum((1, 2)) / ds.sum((1, 2))  # rigid for the rope, a uniform scale for granular
    np.testing.assert_allclose(dg, ds * ratio[:, None, None], atol=1e-9)
    lo, hi = (1.0, 1.0) if name == "rope" else task.config.goal_scale
    assert np.all((ratio >= lo - 1e-9) & (ratio <= hi + 1e-9))


def test_rope_starts_are_taut_and_granular_starts_do_not_overlap(rope, granular):
    start, _ = rope.sample_start_goal(np.random.default_rng(8), 3)
    np.testing.assert_allclose(rope.link_lengths(start), rope.config.link_length)
    start, _ = granular.sample_start_goal(np.random.default_rng(8), 2)
    p = granular.particles(start)
    gaps = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1) + 9 * np.eye(p.shape[1])
    assert gaps.min() >= 2 * granular.config.particle_radius - 1e-12


def test_render_draws_the_particles_where_they_are(rope):
    state = _straight_rope(rope, angle=np.pi / 2)[None]  # vertical through the table's centre
    image = rope.render(state)
    assert image.shape == (1, 64, 64, 3) and image.dtype == np.uint8
    table, colour = np.array(rope.config.table_colour), np.array(rope.config.particle_colour)
    np.testing.assert_array_equal(image[0, 32, 31:33].max(0), np.maximum(image[0, 32, 31], image[0, 32, 32]))
    assert np.abs(image[0, 32, 31:33].astype(int) - colour).sum(-1).min() < 60  # the rope at the centre
    np.testing.assert_array_equal(image[0, 32, 50], table)  # empty table off to the right
    np.testing.assert_array_equal(image[0, 5, 31], table)  # beyond the rope's top end (y = 0.75)
    both = rope.render(np.concatenate([state, _straight_rope(rope)[None]]))
    np.testing.assert_array_equal(both[:1], image)  # each copy drawn independently


def test_settings_survive_a_json_round_trip(rope, granular):
    for task, settings in ((rope, RopeSettings), (granular, GranularSettings)):
        assert settings.from_dict(json.loads(json.dumps(task.settings))) == task.config
    with pytest.raises(ValueError, match="unknown RopeSettings keys"):
        RopeSettings.from_dict({"n_beads": 3})


def test_reset_to_rejects_particles_off_the_table(granular):
    state, _ = granular.sample_start_goal(np.random.default_rng(9), 1)
    state[0, 7] = 1.2
    with pytest.raises(ValueError, match="particle 3 of copy 0 has y = 1.200, off the table"):
        granular.reset_to(state)


# ----- collectors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("collector,name", [(random_pushes_rope, "rope"), (random_pushes_granular, "granular")])
def test_random_push_episodes_have_the_store_layout_and_mostly_move_material(collector, name, request):
    task = request.getfixturevalue(name)
    cfg = RandomPushConfig(steps=6)
    data = collector(task, np.random.default_rng(0), 3, cfg)
    assert data["obs"].shape == (3, 7, 64, 64, 3) and data["obs"].dtype == np.uint8
    assert data["state"].shape == (3, 7, task.state_dim) and data["state"].dtype == np.float32
    assert data["proprio"].shape == (3, 7, 0)
    assert data["action"].shape == (3, 7, 4)
    assert np.isnan(data["action"][:, -1]).all() and np.isfinite(data["action"][:, :-1]).all()
    moved = np.abs(np.diff(data["state"], axis=1)).max(-1) > 0.01
    assert moved.mean() > 0.7, f"only {moved.mean():.0%} of pushes moved anything"
    again = collector(task, np.random.default_rng(0), 3, cfg)
    np.testing.assert_array_equal(again["state"], data["state"])

"""wmplan's own tasks, each registered by the same call a task from elsewhere uses (wmplan.tasks.register_task).

Their code is named by "module:attribute" references, imported on first use, so that reading a task's facts
(`import wmplan` registers the gymnasium ids) imports no simulator (MuJoCo, pymunk) and no torch.
"""

from __future__ import annotations

from wmplan.tasks import DemoRecipe, TaskPlanning, TaskSpec, register_task

# The demo's predictor: the `small` preset made narrower and shallower (width 64, 3 blocks), about 5x
# cheaper per token; CEM's samples x iterations x replans dominate the demo's time.
NARROW = {
    "model.predictor.width": 64,
    "model.predictor.head_dim": 16,
    "model.predictor.mlp_dim": 128,
    "model.predictor.depth": 3,
}
# PushT plans with 1 frame of history: with the agent's velocity in the proprio and a block that only
# moves while pushed, one frame holds the whole state (the finetuning paper plans Markov rollouts too),
# which makes every rollout step 3x cheaper and leaves time for 4x the optimisation steps its dynamics
# need: the PushT state control planned CEM open loop at 0% after 3 epochs (batch 64, constant lr, 3
# frames) and 85% after 20 epochs of PUSHT_TRAIN (and the block angle given as cos/sin).
PUSHT_TRAIN = {
    **NARROW,
    "data.num_hist": 1,
    "train.batch_size": 256,
    "train.lr_predictor": 1e-3,
    "train.lr_embeddings": 1e-3,
    "train.lr_schedule": "cosine",
    "train.epochs": 20,
    # The patch encoder's 8 x 8 grid pooled to 4 x 4 tokens: on the tuning pairs (docs/results/pusht/encoders)
    # it planned CEM + MPC at 60% against conv's 25%, with latent/pose-distance Spearman 0.91 against 0.75.
    "model.encoder.patch_pool": 2,
}
PIXELS_AND_STATE = ("conv", "state")

register_task(
    "wall",
    TaskSpec(
        gym_name="Wall",
        run_defaults={"data.num_hist": 1},  # DINO-WM plans Wall with a 1-frame history
        # Chosen on the tuning pairs (50, seed 7; docs/results/ceilings/README.md). MPC executes whole plans, 2
        # of them: the simulator reference reaches 80% so, 46% executing one step of 10 plans. With that schedule
        # the demo's pixel base model plans better with "last" (Adam 50% vs 38% "all", CEM 52% vs 40%), and open
        # loop too (Adam 14% vs 2%, CEM 14% vs 10%). (Until 2026-12 it executed one step of 10 plans with
        # "all", chosen on the report pairs.)
        planning=TaskPlanning(
            alpha=1.0, cem_iterations=10, open_loop_objective="last", mpc_objective="last", mpc_execute=5
        ),
        # Finetuning lengths from docs/results/study/wall (3 seeds, pixel model): the adversarial loss still
        # fell 22% from 1 to 3 epochs and 7.5% from 3 to 10 (no plateau within the lengths studied); the
        # online buffer loss fell 4% from 200 to 1,000 steps.
        demo=DemoRecipe(
            collect_episodes=1920,
            train={**NARROW, "train.epochs": 6},
            encoders=PIXELS_AND_STATE,
            bounded_cells=True,
            adversarial_epochs=10,
            online_steps=200,
        ),
        reports_distance=False,
        paper_success={
            "base": {"gd": (2, 12), "adam": (10, 80), "cem": (74, 82)},
            "online": {"gd": (16, 38), "adam": (18, 80), "cem": (54, 90)},
            "adversarial": {"gd": (32, 14), "adam": (34, 94), "cem": (30, 94)},
        },
        render_fps=10,  # the dot has no physical time; 10 steps a second shows its moves
        paper_note="The paper's table takes DINO-WM's 74% for open-loop CEM on the base model; the authors' own "
        "rerun measured 32%.",
    ),
    simulator="wmplan.envs.wall:WallTask",
    settings="wmplan.envs.wall:WallSettings.from_dict",
    collector="wmplan.data.collect:random_walk_wall",
    collector_config="wmplan.data.collect:WallWalkConfig",
)
register_task(
    "pointmaze",
    TaskSpec(
        gym_name="PointMaze",
        run_defaults={},  # DINO-WM's defaults: 3 frames of history, frameskip 5
        # First chosen on the report pairs (seed 99, 20) before tuning pairs existed; re-derived on the tuning
        # pairs (docs/results/ceilings), where nothing changed: the simulator reference reaches 94% with 2 plans
        # of 5 model steps against 10% with 10 plans of 1, and the 50-pair demo's pixel base model plans `last`
        # ahead of or tied with `all` in every cell (open loop Adam 32/30%, CEM 90/52%; MPC Adam 60/52%, CEM
        # 92/72%).
        planning=TaskPlanning(
            alpha=0.0,
            cem_iterations=10,
            open_loop_objective="last",
            mpc_objective="last",
            mpc_execute=5,
        ),
        # 3 frames of history make a rollout step up to 3x dearer: unbounded cells only. Finetuning lengths
        # from docs/results/study/pointmaze (3 seeds, pixel model): from 1 to 3 adversarial epochs the
        # adversarial loss fell 3.7%, from 200 to 1,000 online steps the buffer loss 4.3%.
        demo=DemoRecipe(
            collect_episodes=2000,
            train={**NARROW, "train.epochs": 3},
            encoders=PIXELS_AND_STATE,
            bounded_cells=False,
            adversarial_epochs=1,
            online_steps=200,
        ),
        reports_distance=False,
        paper_success={
            "base": {"gd": (12, 42), "adam": (24, 68), "cem": (90, 90)},
            "online": {"gd": (20, 54), "adam": (14, 88), "cem": (62, 96)},
            "adversarial": {"gd": (32, 50), "adam": (70, 94), "cem": (88, 98)},
        },
        render_fps=20,  # 5 MuJoCo steps of 0.01 s per env step
    ),
    simulator="wmplan.envs.pointmaze:PointMazeTask",
    settings="wmplan.envs.pointmaze:PointMazeSettings.from_dict",
    collector="wmplan.data.collect_pointmaze:random_pointmaze",
    collector_config="wmplan.data.collect_pointmaze:PointMazeRandomConfig",
)
register_task(
    "pusht",
    TaskSpec(
        gym_name="PushT",
        run_defaults={},
        # The schedule was first chosen on the report pairs with the earlier conv and state models: executing one
        # model step per plan, MPC failed with either objective (state CEM 5% last, 20% all), since a horizon-5
        # plan whose cost looks at its end leaves its first steps free and each replan moves the arrival one
        # step away; executing the whole plan (DINO-WM's code does) gave state CEM 85%, pixel CEM 35%.
        # Re-derived on the tuning pairs (seed 7, 20 pairs; docs/results/ceilings): the simulator reference
        # reaches 95% with 2 plans x 5 steps, and the patch base model plans with "last" ahead or tied in every
        # cell (open loop Adam 40 / 35% all, CEM 60 / 40%; MPC Adam 40 / 40%, CEM 60 / 40%). Nothing changed; one
        # step per plan was not measured again there.
        planning=TaskPlanning(
            alpha=1.0,
            cem_iterations=30,
            open_loop_objective="last",
            mpc_objective="last",
            mpc_execute=5,
        ),
        # Finetuning lengths from docs/results/study/pusht_partial (1 seed, patch model, its training side): the
        # adversarial loss fell 17% from 1 to 3 epochs and the online buffer loss 22% from 200 to 1,000 steps,
        # so the rule takes the longest studied (no plateau within them). The demo of docs/results/pusht
        # predates this and ran 1 and 200.
        demo=DemoRecipe(
            collect_episodes=2000,
            train=PUSHT_TRAIN,
            encoders=("patch", "state"),
            bounded_cells=False,
            adversarial_epochs=3,
            online_steps=1000,
        ),
        reports_distance=False,
        paper_success={
            "base": {"gd": (38, 56), "adam": (54, 76), "cem": (78, 92)},
            "online": {"gd": (34, 50), "adam": (52, 76), "cem": (90, 92)},
            "adversarial": {"gd": (56, 66), "adam": (82, 92), "cem": (94, 92)},
        },
        render_fps=10,  # its 10 Hz control
    ),
    simulator="wmplan.envs.pusht:PushTTask",
    settings="wmplan.envs.pusht:PushTSettings.from_dict",
    collector="wmplan.data.collect_pusht:scripted_pusher",
    collector_config="wmplan.envs.pusht_pusher:PushTPusherConfig",
)
# The deformable tasks act once per frame (one env step is a whole push) with a 1-frame history, and
# have no proprio (the particles are all in the image). DINO-WM's deformable datasets hold 1,000
# episodes; the 20,000 transitions make an epoch cheap (~2 s), and push dynamics need many: on Rope 6
# epochs left the state model's val loss 21% under copying the last frame and CEM's final Chamfer
# distance at 0.51; 60 epochs, 65% and 0.24.


def deformable_task(gym_name: str, demo: DemoRecipe) -> TaskSpec:
    """Rope's or Granular's spec: the two share everything but their names and their demo recipes."""
    return TaskSpec(
        gym_name=gym_name,
        run_defaults={"data.num_hist": 1, "data.frameskip": 1},
        planning=TaskPlanning(
            alpha=0.0,
            cem_iterations=10,
            open_loop_objective="last",
            mpc_objective="last",
            mpc_execute=1,
            chosen_on="unsearched",
        ),
        demo=demo,
        reports_distance=True,
        paper_success=None,
        render_fps=2,  # an env step is a whole push: lower, move, raise, settle
    )


register_task(
    "rope",
    deformable_task(
        "Rope",
        # Two state controls separate what the pixel encoder cannot see from what the dynamics cannot
        # learn: the flat state and a token per bead (`particles`, ~9 s an epoch).
        DemoRecipe(
            collect_episodes=1000,
            train={**NARROW, "train.epochs": 60},
            encoders=(*PIXELS_AND_STATE, "particles"),
            bounded_cells=False,
        ),
    ),
    simulator="wmplan.envs.rope:RopeTask",
    settings="wmplan.envs.rope:RopeSettings.from_dict",
    collector="wmplan.data.collect_deformable:random_pushes_rope",
    collector_config="wmplan.data.collect_deformable:RandomPushConfig",
)
register_task(
    "granular",
    deformable_task(
        "Granular",
        # No control: its 400 numbers in one token are none (through the narrow predictor's 64 wide
        # residual stream, val loss 60x copying the last frame; 400 wide, 3x, overfitting), and 200
        # particle tokens cost ~80 s an epoch (still above copying the last frame after 2), 30x the pixel
        # model: 60 epochs do not fit the demo.
        DemoRecipe(
            collect_episodes=1000, train={**NARROW, "train.epochs": 60}, encoders=("conv",), bounded_cells=False
        ),
    ),
    simulator="wmplan.envs.granular:GranularTask",
    settings="wmplan.envs.granular:GranularSettings.from_dict",
    collector="wmplan.data.collect_deformable:random_pushes_granular",
    collector_config="wmplan.data.collect_deformable:RandomPushConfig",
)

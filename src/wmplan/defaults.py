"""The task-independent numbers every stage shares: the planners' defaults, the protocols' budgets, the seed
range and the seeds of the start/goal pairs.

They sit apart from the configs (config.py) because the planners, the evaluation, the gymnasium ids and the CLI
read them without any run config; a per-task default lives in tasks.py instead.
"""

# The planners' defaults (PAPER.md, "Planners"), written once: GDConfig, CEMConfig, eval's PlannerSettings,
# online finetuning, the gap and the landscape read them. GD/Adam take another step size and budget under MPC.
PLAN_HORIZON = 5
"""Model steps a plan covers."""
GD_LR = {"open loop": 0.3, "mpc": 0.2}
GD_STEPS = {"open loop": 300, "mpc": 100}
GD_NOISE = 0.003
"""Std of the Gaussian noise added to the actions after each GD/Adam step."""
CEM_SAMPLES, CEM_TOPK = 300, 30
MPC_MODEL_STEPS = 10
"""Fixed protocol: model steps an MPC episode executes in all (replans x model steps executed from each plan)."""
SEED_MAX = 2**32 - 1
"""The largest seed any command takes (numpy's and torch's seeds hold it; the random streams derived from it,
seed x 1_000_003 + index, stay inside torch's 64 bits)."""
REPORT_PAIR_SEED = 99
"""Seed of the start/goal pairs every report evaluates on (`wmplan eval --seed`'s default)."""
TUNING_PAIR_SEED = 7
"""Seed of the start/goal pairs on which per-task planning defaults are chosen; no report evaluates on them."""
MAX_REPLANS = 20
"""Paper protocol: the most planning calls an episode makes (20 plans of 5 model steps: 500 env steps at
frameskip 5, several times the longest expert path of Wall, PointMaze and PushT)."""
# Planners beyond the paper's three (their settings are ours): cem_best (CEM that keeps its best sample and
# tries its current mean), hybrid (a few CEM iterations, then Adam from the elite mean) and multistart
# (Adam from several starts at once, the lowest model cost kept). The planners themselves, by name, are those
# registered in wmplan.planning.registry.
HYBRID_CEM_ITERATIONS, HYBRID_ADAM_STEPS = 3, 30
MULTISTART_RESTARTS = 8

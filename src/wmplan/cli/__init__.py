"""The `wmplan` command line (its usage: wmplan.cli.entry), one module per command group.

    entry.py        build_parser (every command's parser, in order) and main (the one way errors are reported)
    flags.py        the options several commands share, each declared once
    data.py         collect, info, export, import
    training.py     train, finetune
    evaluation.py   eval, gap, landscape
    reference.py    reference
    experiments.py  demo, sweep, study
    runs.py         push, config show
    writers.py      what each command's --out holds and reads (the writer rule)

Each command module holds a command's `cmd_*` function beside the `add_*_parser` that declares its options.
"""

from wmplan.cli.data import cmd_collect, cmd_export, cmd_import, cmd_info, format_summary
from wmplan.cli.entry import build_parser, main, refuse, system_error
from wmplan.cli.evaluation import apply_set_groups, check_eval, cmd_eval, cmd_gap, cmd_landscape, eval_config
from wmplan.cli.experiments import DEMO_FULL_EPISODES, check_demo, cmd_demo, cmd_study, cmd_sweep
from wmplan.cli.flags import (
    add_allow_unfinished_flag,
    add_device_flag,
    add_log_flag,
    add_result_flags,
    run_location,
)
from wmplan.cli.reference import check_reference, cmd_reference
from wmplan.cli.runs import check_config_show, cmd_config_show, cmd_push
from wmplan.cli.training import RUN_FLAGS, check_run_flags, cmd_finetune, cmd_train, flag_settings, train_config
from wmplan.cli.writers import WRITERS, Reads, changed_runs, output_rule

__all__ = [
    "DEMO_FULL_EPISODES",
    "RUN_FLAGS",
    "WRITERS",
    "Reads",
    "add_allow_unfinished_flag",
    "add_device_flag",
    "add_log_flag",
    "add_result_flags",
    "apply_set_groups",
    "build_parser",
    "changed_runs",
    "check_config_show",
    "check_demo",
    "check_eval",
    "check_reference",
    "check_run_flags",
    "cmd_collect",
    "cmd_config_show",
    "cmd_demo",
    "cmd_eval",
    "cmd_export",
    "cmd_finetune",
    "cmd_gap",
    "cmd_import",
    "cmd_info",
    "cmd_landscape",
    "cmd_push",
    "cmd_reference",
    "cmd_study",
    "cmd_sweep",
    "cmd_train",
    "eval_config",
    "flag_settings",
    "format_summary",
    "main",
    "output_rule",
    "refuse",
    "run_location",
    "system_error",
    "train_config",
]

import pytest

from wmplan.config import preset
from wmplan.data.collect import COLLECTORS
from wmplan.envs.registry import task_names
from wmplan.tasks import TASKS, check_covers_every_task, task_spec


def test_the_code_registries_cover_exactly_the_tasks_of_the_table():
    assert sorted(TASKS) == task_names() == sorted(COLLECTORS)
    with pytest.raises(ImportError, match=r"collectors must cover exactly .* missing \['wall'\], extra \['walll'\]"):
        check_covers_every_task({**{t: None for t in TASKS if t != "wall"}, "walll": None}, "collectors")


def test_each_entry_reaches_the_code_that_reads_it():
    assert preset("small", "rope").data.frameskip == 1 and preset("small", "pusht").data.num_hist == 3
    assert task_spec("rope").reports_distance and not task_spec("wall").reports_distance
    assert task_spec("pusht").paper_success["adversarial"]["adam"] == (82, 92)  # PAPER.md, Table 1
    with pytest.raises(ValueError, match="unknown task 'pushtt'; available: granular, pointmaze, pusht"):
        preset("small", "pushtt")

import pytest

from wmplan.config import preset
from wmplan.data.collect import collector
from wmplan.envs.registry import task_type
from wmplan.tasks import task_names, task_spec


def test_every_task_reaches_its_code_through_its_one_registration():
    assert task_names() == ["granular", "pointmaze", "pusht", "rope", "wall"]
    assert task_type("wall").__name__ == "WallTask" and task_type("pusht").__name__ == "PushTTask"
    assert [collector(t)[0].__name__ for t in ("wall", "rope")] == ["random_walk_wall", "random_pushes_rope"]
    with pytest.raises(ValueError, match="unknown task 'walll'; available: granular, pointmaze, pusht, rope, wall"):
        collector("walll")


def test_each_entry_reaches_the_code_that_reads_it():
    assert preset("small", "rope").data.frameskip == 1 and preset("small", "pusht").data.num_hist == 3
    assert task_spec("rope").reports_distance and not task_spec("wall").reports_distance
    assert task_spec("pusht").paper_success["adversarial"]["adam"] == (82, 92)  # PAPER.md, Table 1
    with pytest.raises(ValueError, match="unknown task 'pushtt'; available: granular, pointmaze, pusht"):
        preset("small", "pushtt")

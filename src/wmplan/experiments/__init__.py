"""End-to-end jobs built on training and evaluation: the demo (collect -> train -> finetune -> eval ->
gap -> landscape -> report and grid.json) and the simulator reference (planning in the simulator itself)."""

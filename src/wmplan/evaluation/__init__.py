"""Evaluation in the simulator: planning episodes, diagnostics, reports."""

"""The study report's two plots (study_report): each finetuning's effect by length, with its 95% interval,
and the training side the length rule reads beside the clean validation loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wmplan.evaluation.paired import PairedEffect
from wmplan.experiments.study import StudySpec


def plot_effects(
    path: Path,
    spec: StudySpec,
    found: dict[str, dict[str, PairedEffect]],
    adversarial: list[str],
    online: list[str],
    protocol: str,
) -> None:
    """Adam + MPC success and the change of Adam - CEM against the base, by length (the two-level
    bootstrap interval where seeds are pooled, else the test's own), the MPC cells under `protocol`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # pooled seeds: the two-level bootstrap interval, which counts the seeds and has no artefact end at 0
    interval = lambda e: e.ci95 if e.bootstrap_ci95 is None else e.bootstrap_ci95  # noqa: E731
    pooled = any(e.bootstrap_ci95 is not None for effects in found.values() for e in effects.values())
    bootstrapped = ":\nbootstrap over seeds and pairs" if pooled else ""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, names, lengths, label in (
        (axes[0], adversarial, spec.adversarial_epochs, "adversarial epochs"),
        (axes[1], online, spec.online_steps, "online steps"),
    ):
        for key, colour in (("adam_mpc", "tab:blue"), ("gap", "tab:orange")):
            est = [100 * found[n][key].estimate for n in names]
            low, high = (100 * np.array([interval(found[n][key])[i] for n in names]) for i in (0, 1))
            ax.errorbar(
                [n * (1.04 if key == "gap" else 1.0) for n in lengths],  # side by side, not one bar over the other
                est,
                yerr=[np.subtract(est, low), np.subtract(high, est)],
                marker="o",
                capsize=3,
                color=colour,
                label="Adam MPC success vs base" if key == "adam_mpc" else "change of Adam - CEM (MPC) vs base",
            )
        ax.axhline(0, color="grey", lw=0.8)
        _length_axis(ax, lengths, label)
        ax.set_ylabel(f"points, pooled over seeds\n(95% CI{bootstrapped})", fontsize=9)  # two lines: it fits
        ax.legend(fontsize=8)
    fig.suptitle(f"{spec.env}: effect of finetuning length ({protocol} protocol)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training(
    out: Path,
    spec: StudySpec,
    train_loss: list[float],
    online_loss: list[float],
    val_loss: tuple[list[float], list[float]],
) -> None:
    """training.png: the length rule's objective and the validation loss on the expert data (`val_loss`:
    adversarial, online), by length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, lengths, objective, val, xlabel, ylabel in (
        (
            axes[0],
            spec.adversarial_epochs,
            train_loss,
            val_loss[0],
            "adversarial epochs",
            "training loss (perturbed batches)",
        ),
        (axes[1], spec.online_steps, online_loss, val_loss[1], "online steps", "buffer loss (last tenth)"),
    ):
        ax.plot(lengths, objective, marker="o", color="tab:blue")
        _length_axis(ax, lengths, xlabel)
        ax.set_ylabel(ylabel, color="tab:blue")
        # the clean validation loss on the expert data: what finetuning may cost the model's plain prediction
        twin = ax.twinx()
        twin.plot(lengths, val, marker="s", color="tab:grey", linestyle="--")
        twin.set_ylabel("val loss (expert data)", color="tab:grey")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)


def _length_axis(ax, lengths: list[int], label: str) -> None:
    """A log axis of finetuning lengths, labelled at the lengths studied (not 2 x 10^0)."""
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.set_xticks(lengths, [f"{n:g}" for n in lengths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(label)

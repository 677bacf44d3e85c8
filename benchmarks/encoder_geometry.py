"""Does a pretrained image encoder's latent distance track the true distance, far from the goal too?

Runs stage 1 of `wmplan train` (the same split, frames, settings and seed) for the `conv` (keypoints), `jepa` or
`patch` (patch grid) encoder on a dataset and reports on its validation episodes: the Spearman
correlation between latent and true distances exactly as RUN/encoder.json's latent_distance_spearman
(Euclidean on the pose dims; Chamfer for Rope and Granular), the untrained encoder's, the pretraining
time, the forward time per 256 frames, and the mean latent distance binned by true distance (it should
keep growing up to the farthest bin). On PushT also against a distance that sees the block's angle (the
agent's displacement and the T outline's mean corner displacement); on Wall, pairs straddling the wall
and (conv) each keypoint's gain.

    python benchmarks/encoder_geometry.py --data /tmp/pusht --encoder patch [--set model.encoder.patch_rank_weight=0 ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from wmplan.config import apply_overrides, preset
from wmplan.data.store import TrajectoryStore
from wmplan.envs import make_task
from wmplan.models.encoder_build import build_encoder
from wmplan.models.encoders import distance_spearman, encode_images, random_pairs
from wmplan.models.world_model import WorldModel
from wmplan.overrides import parse_set_args
from wmplan.training.encoder_stage import latent_spearman, prepare_encoder
from wmplan.training.trainer import TrainingData


def true_distance(task, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) the distance latent_distance_spearman ranks against, for state pairs (P, S)."""
    if hasattr(task, "pose_dims"):
        dims = list(task.pose_dims)
        return np.linalg.norm(a[:, dims] - b[:, dims], axis=1)
    return np.concatenate([task.distance(a[k : k + 100], b[k : k + 100]) for k in range(0, len(a), 100)])


def pusht_outline_distance(scale: float):
    """PushT: sqrt(|agent displacement|^2 + (mean displacement of the T outline's corners)^2), world units."""
    from wmplan.envs.pusht_geometry import tee_outline

    corners = tee_outline(scale)

    def outline(s: np.ndarray) -> np.ndarray:
        c, s_ = np.cos(s[:, 4:5]), np.sin(s[:, 4:5])
        return np.stack(
            [s[:, 2:3] + c * corners[:, 0] - s_ * corners[:, 1], s[:, 3:4] + s_ * corners[:, 0] + c * corners[:, 1]], -1
        )

    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        block = np.linalg.norm(outline(a) - outline(b), axis=-1).mean(axis=1)
        return np.hypot(np.linalg.norm(a[:, :2] - b[:, :2], axis=1), block)

    return distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--encoder", choices=["conv", "patch", "jepa"], default="conv")
    parser.add_argument("--seed", type=int, default=0, help="train.seed: pretraining seed and frame choice")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config fields, e.g. model.encoder.pretrain_steps=500",
    )
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    task_name = TrajectoryStore.open(args.data).task_name
    overrides = {
        "data.path": args.data,
        "model.encoder.name": args.encoder,
        "train.seed": args.seed,
        "train.device": "cpu",
    }
    cfg = apply_overrides(preset("small", task_name), {**overrides, **parse_set_args(args.set)})
    data = TrainingData(cfg)
    task = make_task(task_name, data.store.task_settings)
    print(
        f"{task_name}: {data.store.n_episodes} episodes; {len(data.train.obs)} training frames, {len(data.val.obs)} held out"
    )
    print(f"encoder: {cfg.model.encoder}")

    def spearman(encoder: torch.nn.Module) -> float:
        model = WorldModel(cfg, data.dims, data.normalizer, encoder=encoder)
        model.task_settings = data.store.task_settings
        return latent_spearman(model, data.val, pairs=args.pairs)

    torch.manual_seed(args.seed)
    untrained = spearman(build_encoder(cfg.model.encoder, data.dims))
    torch.manual_seed(args.seed)
    encoder, info = prepare_encoder(cfg, data, torch.device("cpu"), progress=False)
    rho = spearman(encoder)
    print(f"pretraining: {info['pretrain_seconds']:.1f} s, {info['pretrain']}")
    print(f"Spearman (held out, {args.pairs} pairs): {rho:.4f}   (untrained encoder: {untrained:.4f})")

    test_obs, test_state = data.val.obs.numpy(), data.val.state.numpy().astype(np.float64)
    tokens = encode_images(encoder, test_obs).numpy()  # (N, P, D)
    flat = tokens.reshape(len(tokens), -1)
    if task_name == "pusht":
        angle_aware = distance_spearman(
            flat, test_state, pairs=args.pairs, true_distance=pusht_outline_distance(task.config.block_scale)
        )
        print(f"Spearman against agent + T-outline distance (sees the block's angle): {angle_aware:.4f}")
    if task_name == "wall":
        i, j = random_pairs(len(test_obs), args.pairs, seed=0)
        wall_x = data.store.task_settings.get("wall_x", test_obs.shape[1] // 2)
        across = (test_state[i, 0] < wall_x) != (test_state[j, 0] < wall_x)
        latent = np.linalg.norm(flat[i] - flat[j], axis=1)
        true = np.linalg.norm(test_state[i] - test_state[j], axis=1)
        print(
            f"pairs on opposite sides of the wall (x = {wall_x}): {100 * across.mean():.1f}%; Spearman across "
            f"{spearmanr(latent[across], true[across]).statistic:.4f}, same side {spearmanr(latent[~across], true[~across]).statistic:.4f}"
        )
        if (
            args.encoder == "conv"
        ):  # slope of each keypoint coordinate against the dot's, relative to 1 px = 2/size units
            px = 2 / test_obs.shape[1]
            gains = [
                np.polyfit(test_state[:, a], tokens[:, k, a], 1)[0] / px for k in range(tokens.shape[1]) for a in (0, 1)
            ]
            print("keypoint gains (x, y; 1 = moves with the dot):", " ".join(f"{g:.2f}" for g in gains))

    batch = torch.from_numpy(test_obs[:256])
    with torch.no_grad():
        encoder(batch)
        t0 = time.perf_counter()
        for _ in range(10):
            encoder(batch)
    print(
        f"forward: {1000 * (time.perf_counter() - t0) / 10:.1f} ms per 256 frames ({args.threads} thread(s)); "
        f"tokens {tokens.shape[1]} x {tokens.shape[2]}, RMS {np.sqrt((tokens**2).mean()):.3f}"
    )

    # a denser sample, binned by deciles of the true distance: the latent should keep growing to the last bin
    i, j = random_pairs(len(test_obs), 20000, seed=1)
    latent = np.linalg.norm(flat[i] - flat[j], axis=1)
    true = true_distance(task, test_state[i], test_state[j])
    edges = np.quantile(true, np.linspace(0, 1, 11))
    print(f"{'true distance':>22} {'pairs':>6} {'latent mean':>12} {'latent std':>11} {'mean / first bin':>17}")
    first = None
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = latent[(true >= lo) & (true <= hi)]
        first = first or m.mean()
        print(f"{lo:>10.3g}-{hi:<11.3g} {len(m):>6} {m.mean():>12.4f} {m.std():>11.4f} {m.mean() / first:>17.2f}")


if __name__ == "__main__":
    main()

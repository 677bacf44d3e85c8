"""Does the pretrained ConvEncoder's latent distance track the true distance, far from the goal too?

Pretrains the encoder with its default hyperparameters on the first 90% of a Wall-like dataset's
episodes and reports, on the remaining 10%: the time taken, the Spearman correlation between latent and
state distances, how many pairs straddle the wall, the forward time per 256 frames, and the mean latent
distance binned by true distance (it should keep growing up to the largest bins).

    python benchmarks/encoder_geometry.py --data /tmp/wall
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from wmplan.data.store import TrajectoryStore
from wmplan.config import EncoderConfig
from wmplan.models.encoder_training import pretrain_conv_encoder
from wmplan.models.encoders import ConvEncoder, encode_images, latent_distance_spearman, random_pairs

BINS = [0, 5, 10, 15, 20, 25, 30, 40, 50, 80]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=EncoderConfig().pretrain_steps)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    store = TrajectoryStore.open(args.data)
    obs, state = store.read("obs"), store.read("state")
    bounds = store.episode_bounds()
    split = bounds[int(0.9 * len(bounds))][0]  # first frame of the first held-out episode
    print(f"{len(bounds)} episodes, {len(obs)} frames; training on {split}, evaluating on {len(obs) - split}")

    torch.manual_seed(args.seed)
    encoder = ConvEncoder(image_size=obs.shape[1])
    untrained = latent_distance_spearman(encoder, obs[split:], state[split:], pairs=args.pairs)
    start = time.perf_counter()
    defaults = EncoderConfig()  # the settings `wmplan train` uses
    metrics = pretrain_conv_encoder(encoder, obs[:split], steps=args.steps, batch_size=defaults.pretrain_batch, lr=defaults.pretrain_lr, seed=args.seed)
    seconds = time.perf_counter() - start
    encoder.freeze()
    rho = latent_distance_spearman(encoder, obs[split:], state[split:], pairs=args.pairs)
    print(f"pretraining: {seconds:.1f} s, {metrics}")
    print(f"Spearman (held out, {args.pairs} pairs): {rho:.4f}   (untrained encoder: {untrained:.4f})")

    test_obs, test_state = obs[split:], state[split:].astype(np.float64)
    i, j = random_pairs(len(test_obs), args.pairs, seed=0)
    wall_x = store.task_settings.get("wall_x", obs.shape[1] // 2)
    across = (test_state[i, 0] < wall_x) != (test_state[j, 0] < wall_x)
    tokens = encode_images(encoder, test_obs).numpy()  # (N, K, 2)
    latent = np.linalg.norm((tokens[i] - tokens[j]).reshape(len(i), -1), axis=1)
    true = np.linalg.norm(test_state[i] - test_state[j], axis=1)
    print(f"pairs on opposite sides of the wall (x = {wall_x}): {100 * across.mean():.1f}%; Spearman across "
          f"{spearmanr(latent[across], true[across]).statistic:.4f}, same side {spearmanr(latent[~across], true[~across]).statistic:.4f}")
    # gain of each keypoint: slope of its coordinate against the dot's, relative to 1 px = 2/size units
    px = 2 / obs.shape[1]
    gains = [np.polyfit(test_state[:, a], tokens[:, k, a], 1)[0] / px for k in range(tokens.shape[1]) for a in (0, 1)]
    print("keypoint gains (x, y; 1 = moves with the dot):", " ".join(f"{g:.2f}" for g in gains))

    batch = torch.from_numpy(test_obs[:256])
    with torch.no_grad():
        encoder(batch)
        t0 = time.perf_counter()
        for _ in range(10):
            encoder(batch)
    print(f"forward: {1000 * (time.perf_counter() - t0) / 10:.1f} ms per 256 frames")

    # a denser sample for the table, so that the far bins hold enough pairs
    i, j = random_pairs(len(test_obs), 20000, seed=1)
    latent = np.linalg.norm((tokens[i] - tokens[j]).reshape(len(i), -1), axis=1)
    true = np.linalg.norm(test_state[i] - test_state[j], axis=1)
    print(f"{'true px':>10} {'pairs':>6} {'latent mean':>12} {'latent std':>11} {'mean/px':>8}")
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (true >= lo) & (true < hi)
        if sel.any():
            m = latent[sel]
            print(f"{lo:>4}-{hi:<5} {sel.sum():>6} {m.mean():>12.4f} {m.std():>11.4f} {m.mean() / true[sel].mean():>8.4f}")


if __name__ == "__main__":
    main()

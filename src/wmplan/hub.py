"""Hugging Face Hub: DINOv2 weights and trained runs by Hub id, and runs shared with `push_run`.

A name that is an existing local path is always used as is; otherwise a name of the form `owner/name` is a
Hub repository. The Hub client (`pip install huggingface_hub`, or `wmplan[hub]`) downloads once and caches
(its own cache, `HF_HOME`); offline (no network, or `HF_HUB_OFFLINE=1`) a file already in that cache is
used, and anything else is an error naming the file to fetch by hand.

Example:
    >>> model = WorldModel.from_pretrained("someone/wmplan-wall")        # doctest: +SKIP
    >>> push_run("runs/wall", "me/wmplan-wall")                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmplan.models.run_folder import RUN_FILES, RunFolder

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
RUN_EXTRAS = ("metrics.csv", "encoder.json")
"""Uploaded beside the run's files (models.run_folder.RUN_FILES) where present."""
CARD = "README.md"


def is_hub_id(name: str) -> bool:
    """True for `owner/name` that is not an existing local path."""
    return bool(HUB_ID.match(name)) and not Path(name).exists()


def _client() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(
            "reading or writing the Hugging Face Hub needs its client: pip install huggingface_hub "
            "(or pip install 'wmplan[hub]'); or download the files yourself and pass their local path"
        ) from None
    return huggingface_hub


def hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """One file of a Hub repository, from the local cache or downloaded into it."""
    hub = _client()
    try:
        return Path(hub.hf_hub_download(repo_id, filename, revision=revision))
    except Exception as exc:  # offline, unknown repository or file, network: the client's own types
        url = f"https://huggingface.co/{repo_id}/resolve/{revision or 'main'}/{filename}"
        raise FileNotFoundError(
            f"cannot get {filename} of the Hub repository {repo_id} ({type(exc).__name__}: {exc}); on a machine "
            f"with internet fetch {url} and pass the local file's path instead of {repo_id}"
        ) from exc


def local_run(name: str | Path) -> Path:
    """A run folder given as a local path (returned as is) or as a Hub id (downloaded, see hub_run)."""
    return hub_run(str(name)) if is_hub_id(str(name)) else Path(name)


def hub_run(repo_id: str, revision: str | None = None) -> Path:
    """A run shared on the Hub (see push_run), as a local folder in the client's cache."""
    hub = _client()
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=[*RUN_FILES, *RUN_EXTRAS, CARD]))
    except Exception as exc:
        raise FileNotFoundError(
            f"no run folder {repo_id} here, and no run {repo_id} on the Hub could be fetched ({type(exc).__name__}: "
            f"{exc}); check the path, or on a machine with internet fetch the run's files ({', '.join(RUN_FILES)}) "
            f"into a folder and pass that folder"
        ) from exc


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    evals: Sequence[str | Path] = (),
    dry_run: str | Path | None = None,
) -> str:
    """Upload a trained run (its last complete checkpoint) to a Hub model repository, created if needed,
    with a model card; returns the repository's URL (`revision`: a branch, created if needed). Nothing
    uploaded holds a local absolute path (shareable_meta). `evals`: folders of `wmplan eval` of this run,
    whose success rates go into the card's results. `dry_run`: write the folder that would be uploaded
    there instead, and return its path."""
    folder = RunFolder(run_dir)
    source = folder.source
    missing = [name for name in RUN_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a complete run ({', '.join(missing)} missing); nothing was uploaded")
    meta = folder.meta()
    results = [_eval_result(Path(e), folder) for e in evals]
    if dry_run is not None:
        if Path(dry_run).exists() and (not Path(dry_run).is_dir() or any(Path(dry_run).iterdir())):
            raise ValueError(f"--dry-run {dry_run} is not an empty folder: give a new one (nothing there is replaced)")
        stage(source, meta, repo_id, results, Path(dry_run))
        return str(dry_run)
    hub = _client()
    api = hub.HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage(source, meta, repo_id, results, Path(tmp))
        api.upload_folder(folder_path=tmp, repo_id=repo_id, revision=revision)
    return str(url)


def stage(source: Path, meta: dict[str, Any], repo_id: str, results: Sequence[dict[str, Any]], out: Path) -> None:
    """Write into `out` what a push uploads: the run's files, config.json made shareable, and the card."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (*RUN_FILES, *RUN_EXTRAS):
        if name != "config.json" and (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    (out / "config.json").write_text(json.dumps(shareable_meta(meta), indent=2))
    (out / CARD).write_text(model_card(repo_id, meta, results))


def shareable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A run's config.json without the uploader's directory layout: the dataset goes by its folder's name and
    its fingerprint (a finetuning from the shared run then takes --data, checked against the fingerprint), the
    parent run by its folder's name."""
    shared = json.loads(json.dumps(meta))
    dataset = shared.get("dataset")
    if isinstance(dataset, dict) and dataset.get("path"):
        dataset["path"] = Path(dataset["path"]).name
    data = shared.get("config", {}).get("data", {})
    if data.get("path"):
        data["path"] = Path(data["path"]).name
    if shared.get("parent_run"):
        shared["parent_run"] = Path(shared["parent_run"]).name
    return shared


def _eval_result(folder: Path, run: RunFolder) -> dict[str, Any]:
    """The card's line for one eval of this run (its summary.json); an eval of another run, or of this run
    before it changed, is refused."""
    path = folder / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"--eval {folder}: no summary.json there; pass the --out folder of a `wmplan eval`")
    summary = json.loads(path.read_text())
    fingerprint = run.state().fingerprint
    if summary.get("run_fingerprint") != fingerprint:
        raise ValueError(
            f"--eval {folder} evaluated run {summary.get('run', '?')} (fingerprint {summary.get('run_fingerprint')}), "
            f"not this run as it is now ({fingerprint}); evaluate this run again and pass that folder"
        )
    mode = "open loop" if not summary["mpc"] else f"MPC, {summary['protocol']} protocol"
    return {
        "name": f"{summary['planner']} {mode} success",
        "value": summary["success_rate"],
        "pairs": f"{summary['episodes']} start/goal pairs (seed {summary['seed']})",
    }


def model_card(repo_id: str, meta: dict[str, Any], results: Sequence[dict[str, Any]] = ()) -> str:
    """The README.md of a pushed run: Hub metadata (library, license, pipeline tag, tags, dataset and any
    evaluation results, as huggingface_hub's ModelCardData writes them), the task, the encoder, and the
    loading lines."""
    from wmplan import __version__

    hub = _client()
    task, encoder = meta["dims"]["task"], meta["config"]["model"]["encoder"]["name"]
    dataset = meta.get("dataset", {}) if isinstance(meta.get("dataset"), dict) else {}
    data_name = Path(dataset.get("path") or meta["config"]["data"]["path"]).name
    card_data = hub.ModelCardData(
        library_name="wmplan",
        license="mit",
        pipeline_tag="robotics",
        tags=["world-model", "model-based-rl", "planning", task],
        datasets=[data_name],
        model_name=repo_id if results else None,
        eval_results=[
            hub.EvalResult(
                task_type="robotics",
                dataset_type=task,
                dataset_name=r["pairs"],
                metric_type="success_rate",
                metric_value=r["value"],
                metric_name=r["name"],
            )
            for r in results
        ]
        or None,
    )
    lines = "".join(f"| {r['name']} | {100 * r['value']:.0f}% | {r['pairs']} |\n" for r in results)
    table = f"\n| evaluation | success | on |\n|---|---|---|\n{lines}" if results else ""
    return (
        f"---\n{card_data.to_yaml()}\n---\n\n"
        f"# wmplan world model: {task}, {encoder} encoder\n\n"
        f"A latent world model trained with wmplan {meta.get('wmplan_version', __version__)} "
        f"(method: {meta.get('method', 'train')}) on the dataset `{data_name}` "
        f"(fingerprint {dataset.get('fingerprint', 'unknown')}, {dataset.get('episodes', '?')} episodes).\n{table}\n"
        "```python\nfrom wmplan.models.world_model import WorldModel\n\n"
        f'model = WorldModel.from_pretrained("{repo_id}")\n```\n\n'
        f"or plan with it: `wmplan eval --run {repo_id} --planner cem --mpc --out results`.\n"
    )

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

import re
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


def push_run(run_dir: str | Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload a trained run (its last complete checkpoint) to a Hub model repository, created if needed,
    with a model card naming the task and how to load it; returns the repository's URL."""
    folder = RunFolder(run_dir)
    source = folder.source
    missing = [name for name in RUN_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a complete run ({', '.join(missing)} missing); nothing was uploaded")
    meta = folder.meta()
    hub = _client()
    api = hub.HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(source), repo_id=repo_id, allow_patterns=[*RUN_FILES, *RUN_EXTRAS])
    card = model_card(repo_id, meta)
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo=CARD, repo_id=repo_id)
    return str(url)


def model_card(repo_id: str, meta: dict[str, Any]) -> str:
    """The README.md of a pushed run: Hub metadata, the task, the encoder, and the loading lines."""
    from wmplan import __version__

    task, encoder = meta["dims"]["task"], meta["config"]["model"]["encoder"]["name"]
    return (
        "---\nlibrary_name: wmplan\ntags:\n- world-model\n- model-based-rl\n- planning\n"
        f"- {task}\nlicense: mit\n---\n\n"
        f"# wmplan world model: {task}, {encoder} encoder\n\n"
        f"A latent world model trained with wmplan {meta.get('wmplan_version', __version__)} "
        f"(method: {meta.get('method', 'train')}).\n\n"
        "```python\nfrom wmplan.models.world_model import WorldModel\n\n"
        f'model = WorldModel.from_pretrained("{repo_id}")\n```\n\n'
        f"or plan with it: `wmplan eval --run {repo_id} --planner cem --mpc --out results`.\n"
    )

"""The Hub paths, offline: the Hub client's functions are replaced by a local folder standing in for the Hub."""

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file

from wmplan.cli import main
from wmplan.hub import is_hub_id
from wmplan.models.dinov2 import DinoV2Encoder, random_state_dict
from wmplan.models.world_model import WorldModel


class FakeHub:
    """Repositories as folders under `root`; records the calls the code makes."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple] = []

    def repo(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "--")

    def hf_hub_download(self, repo_id, filename, revision=None):
        self.calls.append(("download", repo_id, filename))
        path = self.repo(repo_id) / filename
        if not path.is_file():
            raise LocalEntryNotFoundError("offline and not in the cache")
        return str(path)

    def snapshot_download(self, repo_id, revision=None, allow_patterns=None):
        self.calls.append(("snapshot", repo_id, tuple(allow_patterns or ())))
        if not self.repo(repo_id).is_dir():
            raise LocalEntryNotFoundError("offline and not in the cache")
        return str(self.repo(repo_id))

    def api(self, token=None):
        hub = self

        class Api:
            def create_repo(self, repo_id, private=False, exist_ok=False):
                hub.calls.append(("create", repo_id, private))
                hub.repo(repo_id).mkdir(parents=True, exist_ok=exist_ok)
                return f"https://huggingface.co/{repo_id}"

            def create_branch(self, repo_id, branch, exist_ok=False):
                hub.calls.append(("branch", repo_id, branch))

            def upload_folder(self, folder_path, repo_id, revision=None):
                hub.calls.append(("upload_folder", repo_id, revision, token))
                for path in Path(folder_path).iterdir():
                    shutil.copy(path, hub.repo(repo_id) / path.name)

            def upload_file(self, path_or_fileobj, path_in_repo, repo_id):
                hub.calls.append(("upload_file", repo_id, path_in_repo))
                (hub.repo(repo_id) / path_in_repo).write_bytes(path_or_fileobj)

        return Api()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    return fake


def test_hub_ids_are_owner_slash_name_and_never_an_existing_path(tmp_path, monkeypatch):
    assert is_hub_id("facebook/dinov2-small") and is_hub_id("me/wmplan-wall.v2")
    assert not is_hub_id("runs/a/b") and not is_hub_id("model.safetensors") and not is_hub_id("/abs/path")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "wall").mkdir(parents=True)
    assert not is_hub_id("runs/wall")  # a local folder wins over a Hub id of the same spelling


def test_dinov2_weights_by_hub_id_equal_the_local_file_and_offline_names_the_file_to_fetch(hub):
    repo = hub.repo("facebook/dinov2-small")
    repo.mkdir(parents=True)
    save_file(random_state_dict("hf"), str(repo / "model.safetensors"))
    by_id = DinoV2Encoder("facebook/dinov2-small", image_size=28)
    local = DinoV2Encoder(str(repo / "model.safetensors"), image_size=28)
    images = torch.randint(0, 255, (2, 28, 28, 3), dtype=torch.uint8)
    torch.testing.assert_close(by_id(images), local(images), rtol=0, atol=0)
    assert ("download", "facebook/dinov2-small", "model.safetensors") in hub.calls
    with pytest.raises(
        FileNotFoundError, match="fetch https://huggingface.co/nobody/dinov2/resolve/main/model.safetensors"
    ):
        DinoV2Encoder("nobody/dinov2", image_size=28)


def test_a_pushed_run_loads_back_from_the_hub_with_the_same_weights(tiny_run, hub):
    model = WorldModel.load(tiny_run)
    url = model.push_to_hub("me/wall-tiny")
    assert url == "https://huggingface.co/me/wall-tiny"
    files = {p.name for p in hub.repo("me/wall-tiny").iterdir()}
    assert {"config.json", "model.safetensors", "normalization.json", "README.md"} <= files
    card = (hub.repo("me/wall-tiny") / "README.md").read_text()
    assert 'WorldModel.from_pretrained("me/wall-tiny")' in card and "- wall" in card
    again = WorldModel.from_pretrained("me/wall-tiny")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)
    meta = json.loads((hub.repo("me/wall-tiny") / "config.json").read_text())
    assert meta["format"] == 1 and meta["wmplan_version"] == __import__("wmplan").__version__


def test_cli_push_uploads_a_run_folder_and_eval_refuses_an_unreachable_hub_id(tiny_run, hub, tmp_path, capsys):
    assert main(["push", "--run", str(tiny_run), "--repo-id", "me/cli-run", "--private"]) == 0
    assert ("create", "me/cli-run", True) in hub.calls and ("upload_folder", "me/cli-run", None, None) in hub.calls
    assert (hub.repo("me/cli-run") / "model.safetensors").read_bytes() == (tiny_run / "model.safetensors").read_bytes()
    assert main(["push", "--run", str(tmp_path / "none"), "--repo-id", "me/x"]) == 2
    assert "is not a complete run" in capsys.readouterr().err
    assert main(["eval", "--run", "nobody/run", "--planner", "cem", "--out", str(tmp_path / "e")]) == 2
    assert "no run nobody/run on the Hub" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_config_show_prints_a_preset_with_overrides_and_a_runs_own_config(tiny_run, capsys):
    assert main(["config", "show", "--env", "pusht", "--preset", "tiny", "--set", "train.epochs=7"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["task"] == "pusht" and shown["train"]["epochs"] == 7
    assert main(["config", "show", "--run", str(tiny_run)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((tiny_run / "config.json").read_text())["config"]
    assert main(["config", "show", "--set", "train.epoch=3"]) == 2
    assert "unknown config key 'train.epoch'" in capsys.readouterr().err


def test_nothing_uploaded_holds_a_local_path_and_the_card_reads_with_the_hub_client(tiny_run, hub, tmp_path, capsys):
    from huggingface_hub import ModelCard

    evals = tmp_path / "evals"
    assert main(["eval", "--run", str(tiny_run), "--planner", "adam", "--episodes", "3", "--out", str(evals)]) == 0
    args = ["push", "--run", str(tiny_run), "--repo-id", "me/shared", "--eval", str(evals)]
    assert main([*args, "--revision", "v1", "--token", "hf_x"]) == 0
    assert ("branch", "me/shared", "v1") in hub.calls and ("upload_folder", "me/shared", "v1", "hf_x") in hub.calls
    uploaded = {p.name: p.read_bytes() for p in hub.repo("me/shared").iterdir()}
    for name, content in uploaded.items():  # the uploader's directories appear in no file
        assert str(tmp_path).encode() not in content and str(tiny_run.parent).encode() not in content, name
    meta = json.loads(uploaded["config.json"])
    assert meta["dataset"]["path"] == "wall" and meta["config"]["data"]["path"] == "wall"
    assert (
        meta["dataset"]["fingerprint"] == json.loads((tiny_run / "config.json").read_text())["dataset"]["fingerprint"]
    )
    card = ModelCard(uploaded["README.md"].decode())
    data = card.data.to_dict()
    assert data["library_name"] == "wmplan" and data["pipeline_tag"] == "robotics" and data["license"] == "mit"
    assert data["datasets"] == ["wall"] and "world-model" in data["tags"]
    summary = json.loads((evals / "summary.json").read_text())
    (result,) = card.data.eval_results
    assert result.metric_type == "success_rate" and result.metric_value == summary["success_rate"]
    assert WorldModel.from_pretrained("me/shared").dims.task == "wall"  # the shared config still loads
    # a dry run writes what would be uploaded and uploads nothing; it never writes into a folder in use
    calls = len(hub.calls)
    assert main(["push", "--run", str(tiny_run), "--repo-id", "me/dry", "--dry-run", str(tmp_path / "dry")]) == 0
    assert len(hub.calls) == calls and sorted(p.name for p in (tmp_path / "dry").iterdir()) == sorted(
        n for n in uploaded if n != "metrics.csv" or (tiny_run / n).exists()
    )
    assert main(["push", "--run", str(tiny_run), "--repo-id", "me/dry", "--dry-run", str(tmp_path / "dry")]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_an_eval_of_another_run_is_refused_for_the_card(tiny_run, hub, tmp_path, capsys):
    evals = tmp_path / "evals"
    evals.mkdir()
    (evals / "summary.json").write_text(json.dumps({"run": "runs/other", "run_fingerprint": "abc"}))
    assert main(["push", "--run", str(tiny_run), "--repo-id", "me/x", "--eval", str(evals)]) == 2
    assert "not this run as it is now" in capsys.readouterr().err and not hub.repo("me/x").exists()

"""The output directory (edgeq.output): refused before any work, staged beside the destination,
moved into place on success, removed on failure, earlier builds told from foreign folders."""
import json
import os

import pytest

from edgeq.errors import EdgeqError
from edgeq.output import Staging, check_destination, foreign_files


def _old_build(d, files):
    d.mkdir(parents=True)
    for f in files:
        (d / f).parent.mkdir(parents=True, exist_ok=True)
        (d / f).write_text("x")
    (d / "report.json").write_text(json.dumps({"edgeq_version": "0", "artifacts": [{"path": f} for f in files],
                                               "plots": []}))


def test_destination_checks_create_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_destination("a/b/out") == tmp_path / "a" / "b" / "out"
    assert not (tmp_path / "a").exists()
    for bad, needle in (("", "is empty"), (".", "current directory"), ("..", "current directory"),
                        ("~", "home directory"), ("/", "current directory or above")):
        with pytest.raises(EdgeqError, match=needle):
            check_destination(bad)


def test_earlier_build_is_replaceable_foreign_folder_is_not(tmp_path):
    _old_build(tmp_path / "old", ["model.onnx", "plots/sqnr.svg"])
    assert foreign_files(tmp_path / "old") == [] and check_destination(tmp_path / "old")
    (tmp_path / "old" / "notes.txt").write_text("mine")
    assert foreign_files(tmp_path / "old") == ["notes.txt"]
    with pytest.raises(EdgeqError, match="--force"):
        check_destination(tmp_path / "old")
    assert check_destination(tmp_path / "old", force=True)
    (tmp_path / "empty").mkdir()
    assert check_destination(tmp_path / "empty")


def test_staging_commits_in_place_and_replaces_the_old_build(tmp_path):
    dest = tmp_path / "x" / "out"
    _old_build(dest, ["model.tflite"])
    with Staging(dest) as stage:
        assert stage.parent == dest.parent and stage.name.startswith("out.partial-")
        (stage / "model.onnx").write_text("new")
    assert not (dest / "model.onnx").exists() and (dest / "model.tflite").exists()   # no commit: discarded
    staging = Staging(dest)
    with staging as stage:
        (stage / "model.onnx").write_text("new")
        staging.commit()
    assert sorted(os.listdir(dest)) == ["model.onnx"] and sorted(os.listdir(dest.parent)) == ["out"]


def test_failure_removes_the_stage_and_the_folders_it_created(tmp_path):
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(KeyboardInterrupt):
        with Staging(dest) as stage:
            (stage / "half").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []

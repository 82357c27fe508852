"""Installed as a wheel, edgeq works from anywhere. The README's install block is run as
written (bash, in a copy of the repository): it creates a fresh virtual environment, installs
the package with ``pip install -c constraints.txt .`` (pip builds the wheel), and builds a model
from a directory outside the repository. Then the installed command builds the digits .pt2."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "calibration" / "digits"
LENET = ROOT / "examples" / "digits" / "lenet.pt2"


def readme_install_block() -> str:
    """The first ```sh block of the README's install section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def _env(tmp: Path) -> dict:
    """No PYTHONPATH or virtualenv of the test run: only what the block installs is seen."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "TMPDIR": str(tmp)}


def test_readme_starts_with_the_install_block():
    block = readme_install_block()
    assert "pip install" in block and "-c constraints.txt ." in block and "edgeq build" in block
    assert (ROOT / "README.md").read_text().index("## Install") < (ROOT / "README.md").read_text().index("make demo")


@pytest.mark.slow
def test_wheel_installs_and_builds_from_anywhere(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for item in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy(ROOT / item, repo / item)
    ignore = shutil.ignore_patterns("__pycache__", "*.pt2")
    for folder in ("edgeq", "examples", "calibration"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=ignore)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_install_block()], cwd=repo, env=_env(scratch),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert {"onnx", "tflite", "host-c", "cortex-m4"} <= {line.split()[0] for line in res.stdout.splitlines() if line}
    built = list(scratch.glob("*/digits-onnx/model.onnx"))
    assert len(built) == 1, list(scratch.rglob("*"))

    venv = repo / "venv"
    profiles = list(venv.glob("lib/python*/site-packages/edgeq/targets/profiles/*.toml"))
    assert len(profiles) >= 4 and not list(venv.glob("lib/python*/site-packages/edgeq/*.egg-link"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for f in ("calib.npy", "eval.npy", "eval_labels.npy"):
        shutil.copy(DIGITS / f, elsewhere / f)
    shutil.copy(LENET, elsewhere / "lenet.pt2")
    res = subprocess.run([str(venv / "bin" / "edgeq"), "build", "lenet.pt2", "--target", "onnx", "--calibration",
                          "calib.npy", "--eval-data", "eval.npy", "--eval-labels", "eval_labels.npy", "-o", "out",
                          "--quiet"], cwd=elsewhere, env=_env(scratch), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    report = json.loads((elsewhere / "out" / "report.json").read_text())
    assert report["accuracy"]["int8_reference"] > 0.9 and str(venv) not in res.stderr

"""The click command line: help on every verb, usage errors, shell completion, target profiles
from user folders (option and environment variable)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeq.cli import main
from edgeq.targets import list_profiles, load_profile
from edgeq.targets.base import BUILTIN_PROFILE_DIR

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "calibration" / "digits"
LENET = ROOT / "examples" / "digits" / "lenet.pt2"


@pytest.mark.parametrize("verb, options", [([], ["build", "targets", "inspect"]),
                                           (["build"], ["--calibration", "--trust-model", "--targets-dir", "--force",
                                                        "--rounding", "--rounding-budget"]),
                                           (["targets"], ["--ops", "--targets-dir"]),
                                           (["inspect"], ["--top"])])
def test_help_on_every_verb(verb, options, capsys):
    assert main([*verb, "--help"]) == 0
    text = capsys.readouterr().out
    for opt in options:
        assert opt in text, text


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["build", str(LENET), "--target", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Missing option '--calibration'" in err[0] and "edgeq build --help" in err[0]


def test_unknown_verb(capsys):
    assert main(["bild"]) == 2
    assert "No such command 'bild'" in capsys.readouterr().err


def test_version(capsys):
    from edgeq import __version__
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def _completion(env_value: str, words: str, cword: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "_EDGEQ_COMPLETE": env_value, "COMP_WORDS": words, "COMP_CWORD": str(cword),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edgeq.cli"], env=env, capture_output=True, text=True, timeout=120)


def test_shell_completion_script_and_target_names():
    script = _completion("bash_source", "", 0)
    assert script.returncode == 0 and "_EDGEQ_COMPLETE=bash_complete" in script.stdout
    res = _completion("bash_complete", "edgeq build m.pt2 --target t", 4)
    assert "plain,tflite" in res.stdout.splitlines(), res.stdout


def test_builtin_profiles_live_in_the_package():
    assert BUILTIN_PROFILE_DIR.parent.name == "targets" and BUILTIN_PROFILE_DIR.parents[1].name == "edgeq"
    assert set(list_profiles()) >= {"onnx", "tflite", "host-c", "cortex-m4"}
    text = (ROOT / "pyproject.toml").read_text()
    assert '"targets/profiles/*.toml"' in text   # shipped as package data


def _user_profiles(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "my-onnx.toml").write_text('[target]\nformat = "onnx"\ndescription = "my onnx"\n'
                                    f'ops = {load_profile("onnx").ops!r}\n[onnx]\nopset = 17\n'.replace("'", '"'))
    (d / "tflite.toml").write_text('[target]\nformat = "tflite"\ndescription = "my own tflite"\n')
    return d


def test_targets_lists_user_profiles_from_option_and_environment(tmp_path, capsys, monkeypatch):
    d = _user_profiles(tmp_path)
    assert main(["targets", "--targets-dir", str(d)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "my onnx" in lines["my-onnx"] and str(d) in lines["my-onnx"]
    assert "my own tflite" in lines["tflite"] and "cortex-m4" in lines      # replaces the built-in, keeps others
    monkeypatch.setenv("EDGEQ_TARGETS_DIR", str(d))
    assert main(["targets"]) == 0
    assert "my-onnx" in capsys.readouterr().out
    assert load_profile("my-onnx").source == "EDGEQ_TARGETS_DIR"


def test_build_with_a_user_profile(tmp_path, capsys):
    d = _user_profiles(tmp_path)
    rc = main(["build", str(LENET), "--target", "my-onnx", "--targets-dir", str(d), "--calibration",
               str(DIGITS / "calib.npy"), "-o", str(tmp_path / "out"), "--max-eval-samples", "16", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    import json
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["target"] == "my-onnx" and report["target_profile"] == "--targets-dir"
    assert (tmp_path / "out" / "model.onnx").is_file()


def test_targets_ops_table(capsys):
    assert main(["targets", "--ops"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "16x8" in out


def test_data_from_a_python_callable(tmp_path, capsys):
    src = tmp_path / "data_source.py"
    src.write_text("import numpy as np\ndef batches():\n    x = np.load(%r)\n"
                   "    for s in range(0, len(x), 50):\n        yield x[s:s + 50]\n" % str(DIGITS / "calib.npy"))
    out = tmp_path / "out"
    rc = main(["build", str(LENET), "--target", "onnx", "--calibration", f"{src}:batches", "-o", str(out),
               "--max-eval-samples", "16", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    ref = tmp_path / "ref"
    assert main(["build", str(LENET), "--target", "onnx", "--calibration", str(DIGITS / "calib.npy"), "-o", str(ref),
                 "--max-eval-samples", "16", "--quiet"]) == 0
    assert (out / "model.onnx").read_bytes() == (ref / "model.onnx").read_bytes()

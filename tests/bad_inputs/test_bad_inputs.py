"""The bad-input suite: what a new user gets wrong, and what edgeq must then do.

Every case runs the command line (in process, as ``edgeq.cli.main``) and checks the exit code,
that stderr holds exactly one ``edgeq: error:`` line (or, for a note, that the build went on),
that no traceback is printed, what the output directory holds afterwards, that no partial
build is left beside it, and that no payload's marker file exists."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from edgeq.cli import main
from tests.bad_inputs.conftest import DIGITS, ROOT, write_old_build

LENET = ROOT / "examples" / "digits" / "lenet.pt2"
CAL = ["--calibration", "{w}/cal.npy"]
FAST = ["--max-eval-samples", "8", "--quiet"]


@dataclass
class Case:
    id: str
    argv: list[str]
    needle: str = ""
    rc: int = 2
    out: str = "absent"            # absent | unchanged | complete
    setup: Callable[[Path, Path], None] | None = None

    def param(self) -> object:
        return pytest.param(self, id=self.id)


def build(model: str, *extra: str, target: str = "onnx", data: list[str] = CAL) -> list[str]:
    return ["build", model, "--target", target, *data, "-o", "{out}", *FAST, *extra]


def lenet(*extra: str, **kw: object) -> list[str]:
    return build(str(LENET), *extra, **kw)


def _old_tflite(out: Path, w: Path) -> None:
    write_old_build(out, {"model.tflite": "old"})


def _foreign(out: Path, w: Path) -> None:
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")


SECURITY = [Case(f"payload-{name}", build(f"{{w}}/{name}.pt2"), "--trust-model")
            for name in ("sample_inputs", "sample_inputs_valid", "pickled_weight", "opaque_constant", "legacy_layout",
                         "graph_target", "sympy_expression", "stack_global")] + [
    Case("payload-aoti-library", build("{w}/aoti.pt2"), "AOTInductor"),
    Case("payload-names-the-member-and-global", build("{w}/sample_inputs.pt2"), "data.pkl is a pickle that asks for"),
]

UNCAUGHT = [
    Case("factory-raises", lenet()[:1] + ["{w}/raises.py:make"] + lenet()[2:], "ValueError: weights file missing"),
    Case("factory-syntax-error", ["build", "{w}/syntax.py:make"] + lenet()[2:], "syntax error at line 1"),
    Case("factory-import-fails", ["build", "{w}/importfail.py:make"] + lenet()[2:], "no_such_module_for_edgeq"),
    Case("factory-needs-arguments", ["build", "{w}/needsargs.py:make"] + lenet()[2:], "needs argument(s) channels"),
    Case("factory-returns-int", ["build", "{w}/returns_int.py:make"] + lenet()[2:], "returned int"),
    Case("pt2-dynamic-hw", build("{w}/dyn_hw.pt2"), "dynamic dimensions (input 'input': dim 2, dim 3)"),
    Case("input-shape-negative", ["build", "{w}/good.py:make"] + lenet("--input-shape", "1,-8,8")[2:],
         "positive integer"),
    Case("input-shape-zero", ["build", "{w}/good.py:make"] + lenet("--input-shape", "0")[2:], "positive integer"),
    Case("input-shape-text", ["build", "{w}/good.py:make"] + lenet("--input-shape", "a,b")[2:], "list of integers"),
    Case("npy-named-npz", lenet(data=["--calibration", "{w}/npy_named.npz"]), "is an .npy file named .npz"),
    Case("npz-named-npy", lenet(data=["--calibration", "{w}/npz_named.npy"]), "is an .npz file named .npy"),
    Case("values-near-float-max", lenet(data=["--calibration", "{w}/huge.npy"]), "values beyond"),
    Case("values-near-minus-float-max", lenet(data=["--calibration", "{w}/neg_huge.npy"]), "values beyond"),
    Case("profile-toml-syntax", lenet("--targets-dir", "{w}/profiles/bad_toml", target="bad_toml"),
         "is not valid TOML"),
    Case("profile-unknown-format", lenet("--targets-dir", "{w}/profiles/unknown_format", target="unknown_format"),
         "format 'coreml' is not one of"),
    Case("profile-empty-file", lenet("--targets-dir", "{w}/profiles/empty", target="empty"), "no [target] table"),
    Case("profile-no-table", lenet("--targets-dir", "{w}/profiles/no_table", target="no_table"), "no [target] table"),
    Case("name-300-characters", lenet("--name", "n" * 300, target="host-c"), "has 300 characters"),
]

TRACEBACKS = [
    Case("pt2-empty", build("{w}/empty.pt2"), "is empty (0 bytes)"),
    Case("pt2-truncated", build("{w}/truncated.pt2"), "damaged"),
    Case("pt2-random-bytes", build("{w}/random.pt2"), "not a zip archive"),
    Case("pt2-foreign-zip", build("{w}/foreign.pt2"), "not a torch.export program"),
    Case("pt2-torchscript", build("{w}/torchscript.pt2"), "TorchScript file"),
    Case("pt2-torch-save", build("{w}/torchsave.pt2"), "written by torch.save"),
    Case("pt2-is-a-directory", build("{w}/a_dir.pt2"), "is a directory"),
    Case("model-checkpoint-pth", build("{w}/checkpoint.pth"), "is not a .pt2 file"),
]

SILENT = [
    Case("labels-out-of-range", lenet(data=CAL + ["--eval-labels", "{w}/labels_range.npy"]), "outputs 10 classes"),
    Case("labels-negative", lenet(data=CAL + ["--eval-labels", "{w}/labels_negative.npy"]), "start at 0"),
    Case("percentile-0", lenet("--method", "percentile", "--percentile", "0"), "--percentile must be"),
    Case("percentile-101", lenet("--method", "percentile", "--percentile", "101"), "--percentile must be"),
    Case("percentile-minus-5", lenet("--method", "percentile", "--percentile", "-5"), "--percentile must be"),
    Case("percentile-nan", lenet("--method", "percentile", "--percentile", "nan"), "--percentile must be"),
    Case("max-eval-samples-0", lenet("--max-eval-samples", "0"), "--max-eval-samples must be a positive"),
    Case("max-eval-samples-minus-1", lenet("--max-eval-samples", "-1"), "--max-eval-samples must be a positive"),
    Case("max-calibration-samples-0", lenet("--max-calibration-samples", "0"), "must be a positive integer"),
    Case("target-sqnr-nan", lenet("--precision", "auto", "--target-sqnr", "nan"), "--target-sqnr must be"),
    Case("max-accuracy-drop-negative", lenet("--precision", "auto", "--max-accuracy-drop", "-1"),
         "--max-accuracy-drop must be"),
    Case("out-empty-string", ["build", str(LENET), "--target", "onnx", *CAL, "-o", "", "--quiet"],
         "output directory (-o) is empty", out="absent"),
    Case("target-parent-path", lenet(target="../outside"), "is not a profile name"),
    Case("target-absolute-path", lenet(target="{w}/outside.toml"), "is not a profile name"),
    Case("targets-empty-folder", ["targets", "--targets-dir", "{w}/profiles/none"], "holds no *.toml profile"),
    Case("targets-missing-folder", ["targets", "--targets-dir", "{w}/nope"], "does not exist"),
    Case("unknown-option", lenet("--no-such-option"), "No such option"),
    Case("bad-method-choice", lenet("--method", "median"), "Invalid value for '--method'"),
    Case("bad-rounding-choice", lenet("--rounding", "floor"), "Invalid value for '--rounding'"),
    Case("rounding-budget-0", lenet("--rounding", "adaround", "--rounding-budget", "0"), "--rounding-budget must be"),
    Case("rounding-budget-nan", lenet("--rounding", "adaround", "--rounding-budget", "nan"),
         "--rounding-budget must be"),
    Case("rounding-budget-text", lenet("--rounding-budget", "soon"), "Invalid value for '--rounding-budget'"),
    Case("missing-target", ["build", str(LENET), *CAL, "-o", "{out}"], "Missing option '--target'"),
]

NOTES = [Case(f"note-{flag.strip('-')}", lenet(flag, value), f"note: {flag}", rc=0, out="complete")
         for flag, value in (("--name", "digits"), ("--percentile", "99.9"), ("--io", "float"),
                             ("--input-layout", "nchw"), ("--rounding-budget", "5"))] + [
    # the default --precision auto uses --target-sqnr; int8 ignores it
    Case("note-target-sqnr", lenet("--precision", "int8", "--target-sqnr", "30"), "note: --target-sqnr", rc=0,
         out="complete")]

HALF_WRITTEN = [
    Case("inputs-fail-before-out-dir", lenet(data=["--calibration", "{w}/nope.npy"]), "not found"),
    Case("over-flash-budget", lenet("--targets-dir", "{w}/profiles/tiny_budget", target="tiny_budget"), "budget"),
    Case("missing-compiler", lenet("--targets-dir", "{w}/profiles/no_compiler", target="no_compiler"),
         "edgeq-no-such-cc"),
    Case("unknown-histogram-tensor", lenet("--histogram-tensor", "nope"), "is not an activation"),
    Case("foreign-directory-refused", lenet(), "not from an edgeq build (notes.txt)", out="unchanged",
         setup=_foreign),
    Case("foreign-directory-forced", lenet("--force"), rc=0, out="complete", setup=_foreign),
    Case("old-build-replaced", lenet(), rc=0, out="complete", setup=_old_tflite),
    Case("out-is-cwd", ["build", str(LENET), "--target", "onnx", *CAL, "-o", ".", "--quiet"], "current directory",
         out="absent"),
    Case("out-is-a-file", lenet(), "is a file", out="unchanged", setup=lambda out, w: out.write_text("x")),
]

NAMES = [Case(f"name-{label}", lenet("--name", name, target="host-c"), needle)
         for label, name, needle in (("stdint", "stdint", "shadow the system header <stdint.h>"),
                                     ("edgeq-kernel", "edgeq_conv2d", "edgeq's own C files"),
                                     ("edgeq-kernels", "edgeq_kernels", "edgeq's own C files"),
                                     ("leading-digit", "1abc", "not a C identifier"),
                                     ("keyword", "int", "is a C keyword"),
                                     ("path", "../../evil", "not a C identifier"),
                                     ("harness", "harness", "edgeq's own C files"),
                                     ("empty", "", "--name is empty"))]

MISLEADING = [
    Case("csv-as-data", lenet(data=["--calibration", "{w}/cal.csv"]), "looks like text (CSV?)"),
    Case("pickle-as-npz", lenet(data=["--calibration", "{w}/pickle.npz"]), "is not numpy data"),
    Case("pickled-npy", lenet(data=["--calibration", "{w}/pickled.npy"]), "pickled Python objects"),
    Case("pt2-dynamic-batch", build("{w}/dyn_batch.pt2"), "dynamic dimensions (input 'input': batch (dim 0))"),
    Case("npz-wrong-keys-two-inputs", build("{w}/two.pt2", data=["--calibration", "{w}/wrong_keys.npz"]),
         "holds arrays ['p', 'q', 'r'], but the model's inputs are ['x', 'y']"),
    Case("npy-for-two-inputs", build("{w}/two.pt2", data=["--calibration", "{w}/two_x.npy"]),
         "the model has 2 input(s) (x, y)"),
    Case("npz-empty", lenet(data=["--calibration", "{w}/empty.npz"]), "holds no arrays"),
    Case("directory-as-data", lenet(data=["--calibration", "{w}/data_dir"]), "is a directory"),
    Case("integer-data-for-float-input", lenet(data=["--calibration", "{w}/ints.npy"]), "has dtype int64"),
    Case("model-not-found", build("{w}/nope.pt2"), "check the path"),
    Case("factory-file-not-found", ["build", "{w}/nope.py:make"] + lenet()[2:], "check the path"),
    Case("factory-not-defined", ["build", "{w}/good.py:nosuch"] + lenet()[2:], "(it defines: make)"),
    Case("factory-not-callable", ["build", "{w}/good.py:value"] + lenet()[2:], "is a int, not a callable"),
    Case("module-not-importable", ["build", "no_such_pkg.models:make"] + lenet()[2:], "install it"),
    Case("data-callable-raises", lenet(data=["--calibration", "{w}/data_source.py:broken"]),
         "RuntimeError: dataset not mounted"),
]

ALL = SECURITY + UNCAUGHT + TRACEBACKS + SILENT + NOTES + HALF_WRITTEN + NAMES + MISLEADING


def _snapshot(out: Path) -> dict[str, bytes] | None:
    if not out.exists():
        return None
    if out.is_file():
        return {"": out.read_bytes()}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", [c.param() for c in ALL])
def test_bad_input(case: Case, work: Path, tmp_path: Path, capfd: pytest.CaptureFixture,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sub" / "out"
    if case.setup:
        out.parent.mkdir(parents=True, exist_ok=True)
        case.setup(out, work)
    before = _snapshot(out)
    argv = [a.format(w=work, out=out) for a in case.argv]
    rc = main(argv)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == case.rc, err
    assert "Traceback" not in err
    if case.rc == 2:
        assert len(lines) == 1 and lines[0].startswith("edgeq: error: "), err
    assert case.needle in err, err
    after = _snapshot(out)
    if case.out == "absent":
        assert after is None and not (tmp_path / "sub").exists(), after
    elif case.out == "unchanged":
        assert after == before
    else:
        report = json.loads((out / "report.json").read_text())
        assert not (set(after) - {a["path"] for a in report["artifacts"]} - set(report["plots"])
                    - {"report.json", "report.md"}), after
    assert not [p for p in tmp_path.rglob("*.partial-*")] and not [p for p in tmp_path.rglob("*.old-*")]
    assert not list(work.glob("*.marker"))


def test_suite_covers_every_class() -> None:
    counts = {name: len(group) for name, group in (("security", SECURITY), ("uncaught", UNCAUGHT),
                                                    ("tracebacks", TRACEBACKS), ("silent", SILENT), ("notes", NOTES),
                                                    ("half_written", HALF_WRITTEN), ("names", NAMES),
                                                    ("misleading", MISLEADING))}
    assert all(counts.values()) and len({c.id for c in ALL}) == len(ALL), counts




# -- cases that need more than one command line ---------------------------------------------

def _run(argv: list[str], capfd: pytest.CaptureFixture) -> tuple[int, list[str]]:
    rc = main(argv)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    return rc, [line for line in err.splitlines() if line.strip()]


def test_new_c_build_leaves_no_file_of_the_old_one(work: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    write_old_build(out, {"c/alpha.c": "old", "c/alpha.h": "old", "c/alpha_weights.c": "old"})
    rc, _ = _run(["build", str(LENET), "--target", "host-c", "--calibration", str(work / "cal.npy"),
                  "-o", str(out), "--name", "beta", *FAST], capfd)
    assert rc == 0
    names = sorted(p.name for p in (out / "c").iterdir())
    assert "beta.c" in names and not [n for n in names if n.startswith("alpha")], names


def test_old_build_with_read_only_plots_is_replaced(work: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    write_old_build(out, {"model.onnx": "old", "plots/sqnr.svg": "old"})
    (out / "plots").chmod(0o500)
    rc, _ = _run(lenet_args(work, out), capfd)
    assert rc == 0 and (out / "plots").stat().st_mode & 0o200
    assert (out / "model.onnx").read_bytes() != b"old"


def lenet_args(work: Path, out: Path, *extra: str) -> list[str]:
    return [a.format(w=work, out=out) for a in lenet(*extra)]


def test_disk_full_is_one_line_and_leaves_nothing(work: Path, tmp_path: Path, capfd: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while the report is written (simulated: the same OSError a full disk raises)."""
    import errno

    from edgeq import report

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "atomic_write_text", full)
    out = tmp_path / "out"
    rc, lines = _run(lenet_args(work, out), capfd)
    assert rc == 2 and len(lines) == 1 and "no space left on the device" in lines[0], lines
    assert not out.exists() and not list(tmp_path.glob("*.partial-*"))


def test_really_full_filesystem(work: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """A 256 KiB tmpfs filled up to its last 8 KiB: the build's artifacts do not fit (a LeNet
    ONNX build alone is ~45 KB, so the check does not depend on how small the plots get)."""
    import os
    import subprocess
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        fs = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (fs.f_bavail * fs.f_frsize - 8 * 1024))
        rc, lines = _run(lenet_args(work, mnt / "out"), capfd)
        assert rc == 2 and len(lines) == 1 and "no space left" in lines[0], lines
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("moment, signame", [("calibration", "SIGINT"), ("compile", "SIGINT"),
                                             ("compile", "SIGTERM")])
def test_ctrl_c_leaves_no_output_and_no_temporary_files(moment: str, signame: str, work: Path,
                                                        tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) during calibration or once the build is being written (gcc runs then);
    SIGTERM cleans up the same way."""
    import os
    import signal
    import subprocess
    import sys
    import time
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edgeq.cli", "build", str(LENET), "--target", "host-c",
                             "--calibration", str(DIGITS / "calib.npy"), "-o", str(out), "--quiet", "--method",
                             "entropy"], env=env, stderr=subprocess.PIPE, text=True,
                                # Ctrl-C as in a terminal, even when this runs with SIGINT ignored
                                # (a background job of a script inherits that)
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    started = (lambda: list(tmpdir.glob("edgeq-build-*"))) if moment == "calibration" else \
        (lambda: list(tmp_path.glob("out.partial-*")))
    while not started() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted" in err
    assert not out.exists() and not list(tmp_path.glob("out.*")) and not list(tmpdir.iterdir())


def test_artifacts_do_not_depend_on_the_path_to_the_model(work: Path, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture) -> None:
    for target, artifact in (("onnx", "model.onnx"), ("tflite", "model.tflite")):
        blobs = []
        for i, model in enumerate((work / "digits_like.pt2", work / "copy" / "digits_like.pt2")):
            out = tmp_path / f"{target}{i}"
            rc, _ = _run(["build", str(model), "--target", target, "--calibration", str(work / "cal.npy"),
                          "-o", str(out), *FAST], capfd)
            assert rc == 0
            blobs.append((out / artifact).read_bytes())
        assert blobs[0] == blobs[1]
        assert str(work).encode() not in blobs[0] and b"digits_like.pt2" in blobs[0]


def test_trusted_model_loads_when_asked(work: Path) -> None:
    """--trust-model hands the file to torch as it is: a payload then runs (the user's choice)."""
    import edgeq
    ep = edgeq.load_model(str(work / "sample_inputs_valid.pt2"), trust_model=True)
    assert ep.graph_signature.user_inputs and (work / "sample_inputs_valid.marker").exists()
    (work / "sample_inputs_valid.marker").unlink()

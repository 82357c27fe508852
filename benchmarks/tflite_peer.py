"""edgeq's TFLite target against its peers on the trained digits models.

Peers:
* litert-torch (PyTorch -> .tflite with its PT2E quantizer), when it can be imported: either in
  this environment or from a separate directory given by --litert-torch-site / $LITERT_TORCH_SITE
  (``pip install --target DIR --no-deps ...``: it brings ~1 GB of dependencies, among them jax and
  transformers, and pins typing_extensions older than torch's, so keep it out of the main venv).
  It runs in a subprocess.
* ONNX Runtime's quantize_static (QDQ, per-channel int8, MinMax calibration) on a float ONNX
  export of the same weights: the baseline that needs nothing beyond edgeq's own dependencies.

For each model: build time, file size, accuracy on the held-out digits, and the TFLite Micro
arena the .tflite needs, printed side by side. ``--check-install`` also asks pip whether
litert-torch installs next to torch 2.13.0 (``pip install --dry-run -c constraints.txt``).

    python benchmarks/tflite_peer.py [--models lenet mlp] [--litert-torch-site DIR] [--check-install]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIGITS = ROOT / "calibration" / "digits"
MODELS = {
    "lenet": {"pt2": ROOT / "examples/digits/lenet.pt2", "factory": "lenet_digits",
              "calib": DIGITS / "calib.npy", "eval": DIGITS / "eval.npy"},
    "mlp": {"pt2": ROOT / "examples/digits/mlp.pt2", "factory": "mlp_digits",
            "calib": DIGITS / "calib_flat.npy", "eval": DIGITS / "eval_flat.npy"},
}
LABELS = DIGITS / "eval_labels.npy"

# Runs in a subprocess with litert-torch importable: PT2E quantize + convert, prints JSON.
LITERT_WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
pt2, calib, out = sys.argv[1:4]
t_import = time.perf_counter()
import litert_torch
from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
from litert_torch.quantize.quant_config import QuantConfig
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
t0 = time.perf_counter()
cal = np.load(calib)
ep = torch.export.load(pt2)
sample = (torch.from_numpy(cal[:1]),)
quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
m = prepare_pt2e(torch.export.export(ep.module(), sample).module(), quantizer)
with torch.no_grad():
    for i in range(cal.shape[0]):
        m(torch.from_numpy(cal[i:i + 1]))
m = convert_pt2e(m, fold_quantize=False)
edge = litert_torch.convert(m, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
edge.export(out)
print("@@" + json.dumps({"build_s": time.perf_counter() - t0, "import_s": t0 - t_import,
                         "version": litert_torch.__version__}))
"""


def check_litert_torch_install() -> str:
    """Does pip resolve litert-torch with the repo's constraints (torch 2.13.0) and no other torch?"""
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "litert-torch",
           "-c", str(ROOT / "constraints.txt")]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not ask pip: {e}"
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("Would install")), "")
    if p.returncode != 0 or not line:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return "pip cannot resolve litert-torch with constraints.txt: " + " | ".join(tail)
    pkgs = line.replace("Would install ", "").split()
    torches = [x for x in pkgs if re.match(r"torch-\d", x)]
    lt = next((x for x in pkgs if x.startswith("litert-torch-")), "litert-torch-?")
    return (f"{lt} resolves with {', '.join(torches) or 'the installed torch'} "
            f"({len(pkgs)} packages in its closure, e.g. jax, jaxlib, transformers, torchao)")


# --- evaluation helpers --------------------------------------------------------------------

def eval_tflite(path: Path, ev: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy in TFLite Micro, LiteRT reference and default kernels, plus the TFLM arena."""
    from edgeq.targets.tflite import runtimes
    from edgeq.targets.tflite.schema import OP_NAMES, builtin_code, read_model
    data = path.read_bytes()
    m = read_model(data)
    sg = m.subgraphs[0]
    tin = sg.tensors[sg.inputs[0]]
    x = ev.reshape((ev.shape[0], *[int(d) for d in tin.shape[1:]])).astype(np.float32)
    if tin.type != 0:  # integer input: quantize like TFLite's QUANTIZE (float32 divide, half away)
        scale, zp = float(tin.quantization.scale[0]), int(tin.quantization.zeroPoint[0])
        v = (x / np.float32(scale)).astype(np.float64)
        x = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, -128, 127).astype(np.int8)
    tflm, arena = runtimes.run_tflm(data, [x], runtimes.arena_size_for(data, 1 << 16))
    ref = runtimes.run_litert(data, [x], reference=True)
    xnn = runtimes.run_litert(data, [x], reference=False)
    ops: dict[str, int] = {}
    float_ops = 0
    for op in sg.operators:
        name = OP_NAMES[builtin_code(m.operatorCodes[op.opcodeIndex])]
        ops[name] = ops.get(name, 0) + 1
        if name not in ("QUANTIZE", "DEQUANTIZE") and any(sg.tensors[i].type == 0 for i in op.outputs):
            float_ops += 1
    acc = lambda y: float((y[0].reshape(y[0].shape[0], -1).argmax(1) == labels).mean())  # noqa: E731
    return {"bytes": len(data), "acc_tflm": acc(tflm), "acc_litert_ref": acc(ref), "acc_litert_default": acc(xnn),
            "tflm_arena": arena, "ops": ops, "float_ops": float_ops,
            "io": "int8" if tin.type != 0 else "float32"}


def run_edgeq(name: str, spec: dict, out: Path) -> dict:
    """The steps of ``edgeq build --target tflite``: trace, calibrate (MSE), quantize, prepare,
    emit (timed: the build), then the validation runs on the eval set."""
    from edgeq import interpreter, metrics
    from edgeq.frontend import load_model
    from edgeq.pipeline import float_graph, quantized_graph
    from edgeq.targets import load_profile, target_module
    profile = load_profile("tflite")
    tmod = target_module(profile)
    cal = np.load(spec["calib"]).astype(np.float32)
    ev = np.load(spec["eval"]).astype(np.float32)
    labels = np.load(LABELS)
    options = {**profile.quantizer, "io": "int8", "input_layout": "nhwc",
               "description": f"{name} digits, edgeq tflite peer benchmark", "edgeq_version": _edgeq_version()}
    t0 = time.perf_counter()
    model = load_model(str(spec["pt2"]))
    fgraph = float_graph(model)
    qgraph = quantized_graph(fgraph, [cal], options=options)
    graph = tmod.prepare(qgraph, profile, options)
    artifacts = tmod.emit(graph, out / f"edgeq_{name}", profile, options)
    build_s = time.perf_counter() - t0
    q = interpreter.quantize_input(graph, 0, ev, tmod.input_rounding)
    if q.ndim == 4:
        q = np.ascontiguousarray(q.transpose(0, 2, 3, 1))
    ref = interpreter.run(graph, [q])[graph.outputs[0]]
    runs = tmod.run(graph, artifacts, profile, [q], [ev], options)
    exact = {r.runtime: metrics.compare([ref], r.outputs)["exact_fraction"] for r in runs}
    fl = interpreter.run(fgraph, [ev])[fgraph.outputs[0]]
    res = eval_tflite(artifacts[0], ev, labels)
    return {**res, "build_s": build_s, "acc_float": float((fl.argmax(1) == labels).mean()),
            "acc_int8_reference": float((ref.argmax(1) == labels).mean()), "exact": exact}


def _edgeq_version() -> str:
    try:
        from edgeq import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "?"


def run_litert_torch(name: str, spec: dict, out: Path, site: str | None) -> dict:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    path = out / f"litert_torch_{name}.tflite"
    p = subprocess.run([sys.executable, "-c", LITERT_WORKER, str(spec["pt2"]), str(spec["calib"]), str(path)],
                       capture_output=True, text=True, env=env, timeout=1800)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("@@")), None)
    if p.returncode != 0 or line is None:
        err = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"litert-torch unavailable or failed: {err}"}
    info = json.loads(line[2:])
    res = eval_tflite(path, np.load(spec["eval"]), np.load(LABELS))
    return {**res, "build_s": info["build_s"], "version": info["version"]}


def run_ort(name: str, spec: dict, out: Path) -> dict:
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    import examples.models as zoo
    ep = torch.export.load(str(spec["pt2"]))
    model = getattr(zoo, spec["factory"])()
    model.load_state_dict(ep.state_dict, strict=True)
    model.eval()
    cal = np.load(spec["calib"]).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict | None:
            if self.i >= cal.shape[0]:
                return None
            self.i += 1
            return {"x": cal[self.i - 1:self.i]}

    fpath, qpath = out / f"ort_{name}_float.onnx", out / f"ort_{name}_int8.onnx"
    t0 = time.perf_counter()
    torch.onnx.export(model, (torch.from_numpy(cal[:1]),), str(fpath), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    quantize_static(str(fpath), str(qpath), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    build_s = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(qpath), so, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": np.load(spec["eval"]).astype(np.float32)})[0]
    acc = float((y.argmax(1) == np.load(LABELS)).mean())
    return {"bytes": qpath.stat().st_size, "build_s": build_s, "acc_ort": acc, "io": "float32 (QDQ)",
            "version": ort.__version__}


# --- output --------------------------------------------------------------------------------

def fmt(v: object) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.2%}" if v <= 1.0 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(name: str, cols: dict[str, dict]) -> str:
    rows = [("build time, s (trace..artifact)", "build_s"), ("file size, bytes", "bytes"),
            ("model I/O", "io"), ("accuracy: TFLite Micro", "acc_tflm"),
            ("accuracy: LiteRT BUILTIN_REF", "acc_litert_ref"), ("accuracy: LiteRT default", "acc_litert_default"),
            ("accuracy: onnxruntime", "acc_ort"), ("TFLite Micro arena, bytes", "tflm_arena"),
            ("float ops left in the graph", "float_ops")]
    heads = list(cols)
    width = [34] + [max(22, len(h) + 2) for h in heads]
    out = [f"\n== {name} ==", "".join(s.ljust(w) for s, w in zip(["metric", *heads], width))]
    for label, key in rows:
        vals = []
        for h in heads:
            c = cols[h]
            if "build_s" in c and key == "build_s":
                vals.append(f"{c['build_s']:.2f}")
            else:
                vals.append(fmt(c.get(key)) if "error" not in c else "-")
        out.append("".join(s.ljust(w) for s, w in zip([label, *vals], width)))
    for h in heads:
        c = cols[h]
        if "error" in c:
            out.append(f"  {h}: {c['error']}")
        elif "ops" in c:
            out.append(f"  {h} ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(c["ops"].items())))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--litert-torch-site", default=os.environ.get("LITERT_TORCH_SITE"),
                    help="directory holding litert-torch and its dependencies (pip install --target)")
    ap.add_argument("--check-install", action="store_true", help="ask pip whether litert-torch installs "
                    "with torch 2.13.0 (dry run; needs the package index)")
    ap.add_argument("-o", "--out", default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    if args.check_install:
        print("litert-torch install check:", check_litert_torch_install())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            spec = MODELS[name]
            cols = {"edgeq tflite": run_edgeq(name, spec, out),
                    "litert-torch PT2E": run_litert_torch(name, spec, out, args.litert_torch_site),
                    "ORT quantize_static": run_ort(name, spec, out)}
            e = cols["edgeq tflite"]
            cols["edgeq tflite"]["acc_ort"] = None
            results[name] = cols
            print(table(name, cols))
            print(f"  edgeq: float accuracy {e['acc_float']:.2%}, int8 reference {e['acc_int8_reference']:.2%}; "
                  f"bit-exact: " + ", ".join(f"{k} {v:.0%}" for k, v in e["exact"].items())
                  + f" ({len(np.load(MODELS[name]['eval']))} eval samples)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

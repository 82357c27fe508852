"""Per-output int8 SQNR of a face-detector analogue: edgeq's default ONNX build against ONNX
Runtime's quantize_static (QDQ, per-channel, MinMax / Entropy / Percentile).

The model is benchmarks/build_models.FaceNet's trunk (4 convs + max pooling, FC 256) with three
heads like MTCNN's O-Net: softmax over 2 face logits, 4 box offsets, 10 landmarks reshaped
(-1, 5, 2). Inputs are smooth random backgrounds (8x8 noise upsampled bilinearly to 48x48) with,
in half the images, a bright elliptic "face" blob of random position and size and two dark "eye"
dots. The net is trained for a few seconds on that synthetic task (face / no face, blob box,
five landmark points) so the softmax is neither saturated nor constant. A second row set scales
the face logits by ``--logit-scale`` (default 6: logits up to about +-23, a confident detector,
whose rows' largest logits lie far below the tensor's largest one).

ORT's models run with ORT_DISABLE_ALL (the QDQ graph as written), as edgeq's are scored by its
reference interpreter: neither side is charged with a runtime's kernel defects.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/face_heads.py [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import edgeq  # noqa: E402
from accuracy import ORT_CONFIGS  # noqa: E402
from build_models import FaceNet  # noqa: E402
from build_time import _Reader  # noqa: E402
from edgeq.metrics import sqnr_db  # noqa: E402

OUTPUTS = ("face_prob", "box", "landmarks")
ORT_METHODS = ("MinMax", "Entropy", "Percentile")


class FaceHeads(nn.Module):
    """FaceNet's trunk and three heads (face probability, box, landmarks): three final linear
    layers (MTCNN's O-Net) or, ``shared``, slices of FaceNet's one FC 16."""

    def __init__(self, shared: bool = False) -> None:
        super().__init__()
        net = FaceNet()
        self.features, self.trunk, self.shared = net.features, net.fc[:3], shared
        if shared:
            self.head = net.fc[3]
        else:
            self.cls, self.box, self.lmk = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):  # noqa: ANN001, ANN201
        h = self.trunk(self.features(x))
        if self.shared:
            y = self.head(h)
            return torch.softmax(y[:, :2], dim=1), y[:, 2:6], y[:, 6:].reshape(-1, 5, 2)
        return torch.softmax(self.cls(h), dim=1), self.box(h), self.lmk(h).reshape(-1, 5, 2)


def face_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, 3, 48, 48) in [0, 1] and their targets: face probability, box (cx, cy, w, h), five
    landmarks (x, y) in [-1, 1] image coordinates (zeros without a face)."""
    rng = np.random.default_rng(seed)
    low = torch.from_numpy(rng.random((n, 3, 8, 8)).astype(np.float32))
    img = torch.nn.functional.interpolate(low, size=(48, 48), mode="bilinear", align_corners=False).numpy()
    img = 0.6 * img
    strength = rng.uniform(0.0, 0.5, n) * (rng.random(n) < 0.7)
    face = strength > 0.0
    box = np.zeros((n, 4), np.float32)
    lmk = np.zeros((n, 5, 2), np.float32)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32) / 23.5 - 1.0
    for i in np.flatnonzero(face):
        cx, cy = rng.uniform(-0.4, 0.4, 2)
        w, h = rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.7)
        blob = np.exp(-(((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2) * 2.0)
        img[i] += strength[i] * blob * rng.uniform(0.6, 1.0, (3, 1, 1))
        pts = np.array([[cx - w / 3, cy - h / 4], [cx + w / 3, cy - h / 4], [cx, cy],
                        [cx - w / 4, cy + h / 3], [cx + w / 4, cy + h / 3]], np.float32)
        for px, py in pts[:2]:
            img[i] -= 0.8 * strength[i] * np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 0.004)
        box[i], lmk[i] = (cx, cy, w, h), pts
    # the face probability to learn: a soft step in the blob's strength (faint blobs are unsure)
    p_face = 1.0 / (1.0 + np.exp(-(strength - 0.2) / 0.05)) * face
    return np.clip(img, 0, 1).astype(np.float32), p_face.astype(np.float32), box, lmk


def trained_model(steps: int = 300, shared: bool = False) -> FaceHeads:
    """A few seconds of Adam on the synthetic task (one thread, deterministic)."""
    torch.manual_seed(21)
    torch.set_num_threads(1)
    model = FaceHeads(shared)
    x, y, box, lmk = (torch.from_numpy(a) for a in face_data(2048, 100))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, len(x), (64,), generator=g)
        prob, b, l = model(x[i])
        m = (y[i] > 0).float()[:, None]
        t = torch.stack([1 - y[i], y[i]], 1)
        loss = (-(t * torch.log(prob + 1e-7)).sum(1).mean()
                + ((b - box[i]) ** 2 * m).mean() + ((l.flatten(1) - lmk[i].flatten(1)) ** 2 * m).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def ort_outputs_all(model: FaceHeads, cal: np.ndarray, ev: np.ndarray, method: str, work: Path) -> list[np.ndarray]:
    """ORT's job as build_time.ort_job runs it (dynamo export, quant_pre_process, QDQ
    per-channel int8), with ``method``'s calibration; every output on ``ev``."""
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    f, pre, q = work / "m.onnx", work / "m_pre.onnx", work / f"m_{method}.onnx"
    if not pre.is_file():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                torch.onnx.export(model, (torch.from_numpy(cal[:1]),), str(f), dynamo=True)
            except ImportError:   # no onnxscript: build_time.ort_job's fallback too
                torch.onnx.export(model, (torch.from_numpy(cal[:1]),), str(f), dynamo=False)
        quant_pre_process(str(f), str(pre))
    names = [i.name for i in ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(names, [cal])
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(pre), str(q), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, ORT_CONFIGS[method][0]))
    # ORT_DISABLE_ALL runs the QDQ model as written; the fused int8 kernels of ORT_ENABLE_ALL
    # saturate on x86 CPUs without VNNI (validate.fused_int8_saturates), which would charge
    # ORT's quantizer with this CPU's defect
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(q), opts, providers=["CPUExecutionProvider"])
    runs = [sess.run(None, {names[0]: ev[i:i + 1]}) for i in range(len(ev))]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(OUTPUTS))]


def measure(n_cal: int = 100, n_eval: int = 200, steps: int = 300, shared: bool = False,
            options: dict | None = None, logit_scale: float = 1.0) -> dict[str, list[float]]:
    model = trained_model(steps, shared)
    if logit_scale != 1.0:
        with torch.no_grad():   # a temperature on the face logits: a more confident detector
            (model.head if shared else model.cls).weight.mul_(logit_scale)
            (model.head if shared else model.cls).bias.mul_(logit_scale)
    cal, ev = face_data(n_cal, 0)[0], face_data(n_eval, 1)[0]
    with torch.no_grad():
        ref = [t.numpy() for t in model(torch.from_numpy(ev))]
    p = ref[0][:, 1]
    print(f"float face probability on eval: min {p.min():.3f} max {p.max():.3f} "
          f"share in (0.05, 0.95) {np.mean((p > 0.05) & (p < 0.95)):.2f}")
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        report = edgeq.build(model, cal, "onnx", Path(d) / "edgeq", eval_data=ev, progress=False, **(options or {}))
        if "--layers" in sys.argv:
            for r in report.data["quantization"]:
                print({k: r[k] for k in list(r)[:12]})
        rows["edgeq default"] = [float(s) for s in report.data["output_sqnr_db"]]
        for method in ORT_METHODS if "--edgeq-only" not in sys.argv else ():
            outs = ort_outputs_all(model, cal, ev, method, Path(d))
            rows[f"ORT {method}"] = [sqnr_db(r, o) for r, o in zip(ref, outs)]
    return rows


def table(rows: dict[str, list[float]]) -> str:
    lines = ["| build | " + " | ".join(OUTPUTS) + " |", "|---|" + "---:|" * len(OUTPUTS)]
    lines += [f"| {k} | " + " | ".join(f"{s:.2f}" for s in v) + " |" for k, v in rows.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--shared", action="store_true", help="the heads are slices of one FC 16")
    ap.add_argument("--layers", action="store_true", help="print the report's per-layer rows")
    ap.add_argument("--edgeq-only", action="store_true")
    ap.add_argument("--logit-scale", type=float, default=6.0)
    args = ap.parse_args()
    result = {}
    for scale in (1.0, args.logit_scale):
        print(f"face logits x{scale:g}")
        result[f"logits_x{scale:g}"] = rows = measure(n_eval=args.eval, shared=args.shared, logit_scale=scale)
        print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

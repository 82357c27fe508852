"""Recurrent, attention and everyday-idiom models, defined here (no downloads): the zoo of the
real-models issue. Each builds for onnx, tflite, host-c and cortex-m4.

``SEQUENCE_ZOO`` maps a name to (factory, input specs); an input spec is (shape without batch,
dtype, kind): kind "normal" (float features), "tokens" (int64 ids below the vocabulary size) or
"mask" (int64 0/1 attention mask, ones first). ``sequence_data(name, n, seed)`` gives realistic
inputs for a model: MFCC-like features with a temporal structure for the audio models, token
ids and masks of random lengths for the encoder.

Run ``python examples/sequence_zoo.py`` to trace every model and list its ops."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SEQUENCE_ZOO", "sequence_data", "GruKeywordSpotter", "StreamingLstm", "KeywordTransformer",
           "BertEncoder", "AudioCnnBnAfterRelu", "L2Embedding", "SpeakerLstm"]

N_MFCC, FRAMES, KEYWORDS = 10, 49, 12


class GruKeywordSpotter(nn.Module):
    """2-layer batch_first GRU over MFCC frames; the last hidden state classifies."""

    def __init__(self, features: int = N_MFCC, hidden: int = 64, classes: int = KEYWORDS) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class StreamingLstm(nn.Module):
    """A streaming voice-activity detector: one frame of audio per call with the LSTM state
    passed in and out. Frame energy features use reflect padding, x ** 2 and sqrt."""

    def __init__(self, frame: int = 64, hidden: int = 32) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad1d(2)
        self.conv = nn.Conv1d(1, 8, 5, stride=4)
        self.cell = nn.LSTMCell(8 * 16 + 1, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, frame: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        feats = torch.relu(self.conv(self.pad(frame)))              # (B, 8, 16)
        energy = torch.sqrt((frame ** 2).mean(-1) + 1e-6)           # (B, 1)
        x = torch.cat([feats.flatten(1), energy], 1)
        h2, c2 = self.cell(x, (h, c))
        return torch.sigmoid(self.out(h2)), h2, c2


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class KeywordTransformer(nn.Module):
    """KWT-style keyword transformer: frames embedded, a class token prepended, a learned
    positional embedding added, pre-norm blocks, the class token classifies."""

    def __init__(self, dim: int = 64, heads: int = 4, blocks: int = 2, classes: int = KEYWORDS) -> None:
        super().__init__()
        self.embed = nn.Linear(N_MFCC, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, FRAMES + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, 2 * dim) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.blocks(x)
        return self.head(self.norm(x[:, 0]))


class EncoderLayer(nn.Module):
    """A post-norm BERT layer with hand-written QKV attention and an additive mask."""

    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)

    def split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)
        x = self.norm1(x + self.o(ctx))
        return self.norm2(x + self.ffn(x))


class BertEncoder(nn.Module):
    """A sentence-embedding BERT encoder (MiniLM's structure): int64 token ids and attention
    mask in, the masked mean of the last layer out. ``layers=6, dim=384, heads=12,
    vocab=30522, tokens=32`` is all-MiniLM-L6-v2's shape (22.7 M parameters)."""

    def __init__(self, vocab: int = 1000, dim: int = 64, heads: int = 4, layers: int = 2, tokens: int = 16) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(tokens, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList([EncoderLayer(dim, heads, 4 * dim) for _ in range(layers)])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.norm(self.tokens(ids) + self.positions(pos))
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)


class AudioCnnBnAfterRelu(nn.Module):
    """A pitch-tracker style 1-D CNN whose batch norms follow the ReLUs (standalone affines)."""

    def __init__(self, channels: int = 16, classes: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = N_MFCC
        for k in (5, 3, 3):
            layers += [nn.Conv1d(cin, channels, k, padding=k // 2), nn.ReLU(), nn.BatchNorm1d(channels)]
            cin = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.transpose(1, 2)).mean(-1))


class SpeakerLstm(nn.Module):
    """A speaker-embedding model: a 3-layer LSTM over MFCC frames, the last output through a
    linear layer and ReLU, L2-normalised (d-vector style)."""

    def __init__(self, hidden: int = 96, dim: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MFCC, hidden, num_layers=3, batch_first=True)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return F.normalize(torch.relu(self.proj(out[:, -1])), dim=-1)


class L2Embedding(nn.Module):
    """A speaker-embedding style model ending in an L2-normalised embedding."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv1d(N_MFCC, 32, 3, padding=1)
        self.proj = nn.Linear(32, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x.transpose(1, 2))).mean(-1)
        return F.normalize(self.proj(y), dim=-1)


def _randomize_batchnorm(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _build(cls: Callable[[], nn.Module], seed: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        torch.manual_seed(seed)
        model = cls()
        with torch.no_grad():
            _randomize_batchnorm(model, seed)
        return model.eval()
    make.__name__ = cls.__name__ if isinstance(cls, type) else getattr(cls, "__name__", "model")
    return make


FEATURES = ((FRAMES, N_MFCC), "float32", "normal")
SEQUENCE_ZOO: dict[str, tuple[Callable[[], nn.Module], list[tuple[tuple[int, ...], str, str]]]] = {
    "gru_kws": (_build(GruKeywordSpotter, 1), [FEATURES]),
    "streaming_lstm": (_build(StreamingLstm, 2), [((1, 64), "float32", "audio"), ((32,), "float32", "state"),
                                                   ((32,), "float32", "state")]),
    "keyword_transformer": (_build(KeywordTransformer, 3), [FEATURES]),
    "bert_encoder": (_build(BertEncoder, 4), [((16,), "int64", "tokens"), ((16,), "int64", "mask")]),
    "audio_cnn_bn_after_relu": (_build(AudioCnnBnAfterRelu, 5), [FEATURES]),
    "l2_embedding": (_build(L2Embedding, 6), [FEATURES]),
    "speaker_lstm": (_build(SpeakerLstm, 7), [FEATURES]),
}


def _features(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """MFCC-like frames: a smooth random trajectory per coefficient (slowly varying over time,
    decreasing variance with the coefficient index), plus frame noise."""
    frames, coeffs = shape
    t = np.linspace(0.0, 1.0, frames)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, coeffs))
    freq = rng.uniform(0.5, 4.0, (n, 1, coeffs))
    amp = 2.0 / (1.0 + np.arange(coeffs))[None, None, :]
    x = amp * np.sin(2 * np.pi * freq * t + phase) + 0.1 * rng.normal(size=(n, frames, coeffs))
    return x.astype(np.float32)


def sequence_data(name: str, n: int, seed: int = 0, vocab: int = 1000) -> list[np.ndarray]:
    """One array per model input, n samples (see the module docstring for what they are)."""
    rng = np.random.default_rng(seed)
    specs = SEQUENCE_ZOO[name][1]
    lengths = rng.integers(4, specs[0][0][0] + 1, n) if specs[0][2] == "tokens" else None
    arrays = []
    for shape, dtype, kind in specs:
        if kind == "normal":
            arrays.append(_features(rng, n, shape))
        elif kind == "audio":          # a voiced or silent 64-sample frame
            t = np.arange(shape[-1])[None, None, :]
            voiced = rng.random((n, 1, 1)) < 0.5
            tone = np.sin(2 * np.pi * rng.uniform(0.02, 0.2, (n, 1, 1)) * t) * rng.uniform(0.2, 1.0, (n, 1, 1))
            arrays.append((np.where(voiced, tone, 0.0) + 0.02 * rng.normal(size=(n, *shape))).astype(np.float32))
        elif kind == "state":          # LSTM state of a running stream: bounded, mostly small
            arrays.append(np.tanh(rng.normal(0, 0.5, (n, *shape))).astype(np.float32))
        elif kind == "tokens":
            ids = rng.integers(1, vocab, (n, *shape))
            ids[np.arange(shape[0])[None, :] >= lengths[:, None]] = 0          # padding id
            arrays.append(ids.astype(dtype))
        elif kind == "mask":
            arrays.append((np.arange(shape[0])[None, :] < lengths[:, None]).astype(dtype))
    return arrays


if __name__ == "__main__":
    for name, (factory, specs) in SEQUENCE_ZOO.items():
        example = tuple(torch.from_numpy(a[:1]) for a in sequence_data(name, 1))
        ep = torch.export.export(factory(), example).run_decompositions()
        ops = sorted({str(n.target) for n in ep.graph.nodes if n.op == "call_function"})
        print(f"{name}: {len(list(ep.graph.nodes))} nodes; {', '.join(ops)}")

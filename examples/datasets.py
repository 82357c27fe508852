"""Real data sets for measuring int8 accuracy, each loaded deterministically as float32 arrays.

* ``digits()``: scikit-learn's 8x8 digits, the split of ``examples/digits/train.py``.
* ``fashion_mnist()``: Fashion-MNIST read from the IDX files of Debian's
  ``dataset-fashion-mnist`` package (60,000 + 10,000 images, 28x28).
* ``kws()``: a keyword-spotting set synthesised offline with Debian's ``espeak-ng``: command
  words spoken by many voices at random speeds and pitches, placed at a random offset in a 1 s
  window with seeded background noise, turned into 49x10 MFCC features. Training and test sets
  use different voices. The features are cached under ``build/cache/kws/``, keyed by a hash of
  every generation parameter.

Every loader returns a ``Dataset``: images as NCHW ``(N, 1, H, W)``, MFCCs as ``(N, 1, 49, 10)``,
labels int64.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / "build" / "cache"

__all__ = ["Dataset", "KwsConfig", "digits", "fashion_mnist", "kws", "read_idx", "mfcc",
           "mel_filterbank", "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES", "KWS_CLASSES"]


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train {self.x_train.shape}, test {self.x_test.shape}, "
                f"{len(self.classes)} classes)")

    def calibration(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` training samples picked with a fixed seed (sorted indices), C-contiguous."""
        idx = np.sort(np.random.default_rng(seed).choice(len(self.x_train), n, replace=False))
        return np.ascontiguousarray(self.x_train[idx])


# --------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------

def digits() -> Dataset:
    """The digits split used by ``examples/digits/train.py``: (N, 1, 8, 8) in [0, 1], 75/25."""
    from examples.digits.train import load_split

    x_tr, x_te, y_tr, y_te = load_split()
    return Dataset("digits", x_tr, y_tr, x_te, y_te, tuple(str(i) for i in range(10)))


# --------------------------------------------------------------------------------------------
# IDX files and Fashion-MNIST
# --------------------------------------------------------------------------------------------

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or .gz): magic 00 00 <dtype> <ndim>, ndim big-endian uint32 dims."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic {data[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    count = int(np.prod(dims, dtype=np.int64))
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: header says {dims} ({count * dtype.itemsize} bytes of data), "
                         f"file has {len(data) - offset}")
    return np.frombuffer(data, dtype, count, offset).reshape(dims).astype(dtype.newbyteorder("="))


def fashion_mnist(root: str | Path = FASHION_MNIST_DIR) -> Dataset:
    """Fashion-MNIST, (N, 1, 28, 28) float32 in [0, 1]: 60,000 train and 10,000 test images."""
    root = Path(root)
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    arrays = {}
    for key, stem in names.items():
        path = next((p for p in (root / f"{stem}.gz", root / stem) if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {root / stem}.gz not found; install Debian's package with "
                "`apt-get install dataset-fashion-mnist` (it puts the IDX files in "
                f"{FASHION_MNIST_DIR})")
        arrays[key] = read_idx(path)
    xs = {k: (arrays[k].astype(np.float32) / np.float32(255.0))[:, None] for k in ("x_train", "x_test")}
    ys = {k: arrays[k].astype(np.int64) for k in ("y_train", "y_test")}
    return Dataset("fashion_mnist", xs["x_train"], ys["y_train"], xs["x_test"], ys["y_test"],
                   FASHION_MNIST_CLASSES, {"source": str(root)})


# --------------------------------------------------------------------------------------------
# MFCC
# --------------------------------------------------------------------------------------------

def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, peak 1, edges equally spaced in mel."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lo, center, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lo) / (center - lo)
    falling = (hi - freqs[None]) / (hi - center)
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_centers(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequency (Hz) of each band of ``mel_filterbank``."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))[1:-1]


def log_mel(signal: np.ndarray, sample_rate: int = 16000, window_s: float = 0.040, hop_s: float = 0.020,
            n_mels: int = 40, fmin: float = 20.0, fmax: float = 4000.0) -> np.ndarray:
    """(..., frames, n_mels) natural-log mel energies (float32); frames = 1 + (len - window) // hop.

    Hann window (periodic), power spectrum of a zero-padded power-of-two FFT, triangular mel
    filters, log(energy + 1e-6)."""
    from scipy.signal import get_window

    win = int(round(window_s * sample_rate))
    hop = int(round(hop_s * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    x = np.asarray(signal, dtype=np.float32)
    if x.shape[-1] < win:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than one {win}-sample window")
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    n_frames = 1 + (x.shape[-1] - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    window = get_window("hann", win, fftbins=True).astype(np.float32)
    bank = mel_filterbank(n_mels, n_fft, sample_rate, fmin, fmax).astype(np.float32).T
    out = np.empty((x.shape[0], n_frames, n_mels), np.float32)
    for s in range(0, x.shape[0], 64):  # chunks keep the spectra in cache
        spec = np.fft.rfft(x[s:s + 64, idx] * window, n_fft, axis=-1)
        out[s:s + 64] = (spec.real ** 2 + spec.imag ** 2) @ bank
    return np.log(out + np.float32(1e-6)).reshape(*lead, n_frames, n_mels)


def mfcc(signal: np.ndarray, sample_rate: int = 16000, window_s: float = 0.040, hop_s: float = 0.020,
         n_mels: int = 40, n_mfcc: int = 10, fmin: float = 20.0, fmax: float = 4000.0) -> np.ndarray:
    """(..., frames, n_mfcc) MFCCs: Hann window, |rfft|^2, mel filters, log, DCT-II (orthonormal).

    A 1 s signal at 16 kHz with the defaults (40 ms window, 20 ms hop) gives 49 frames."""
    from scipy.fft import dct

    lm = log_mel(signal, sample_rate, window_s, hop_s, n_mels, fmin, fmax)
    return dct(lm, type=2, norm="ortho", axis=-1)[..., :n_mfcc].astype(np.float32)


# --------------------------------------------------------------------------------------------
# Keyword spotting with espeak-ng
# --------------------------------------------------------------------------------------------

KWS_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
KWS_CLASSES = ("silence", "unknown") + KWS_WORDS
# Fillers for the "unknown" class (Speech Commands' non-keywords).
KWS_UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
                     "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                     "learn", "follow", "forward", "backward", "visual")
# espeak-ng English accents (its own formant voices: no mbrola needed).
KWS_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
               "en-029", "en-us-nyc")
# Voice variants (timbre, pitch range, breathiness, synthesiser); a voice is accent+variant.
# Test variants (and their near-duplicates, e.g. steph2/steph3) never occur in training, so the
# test set is spoken by unseen voices. Robotic and whispering variants are left out.
KWS_TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt4",
    "klatt5", "Alex", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Henrique", "Hugo",
    "Jacky", "Lee", "Marco", "Mario", "Mike", "Nguyen", "adam", "anika", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "grandma", "gustave", "iven", "iven3",
    "john", "linda", "marcelo", "max", "michel", "miguel", "pablo", "paul", "pedro", "rob",
    "robert", "sandro", "shelby", "travis", "victor", "zac")
KWS_TEST_VARIANTS = ("m8", "f5", "klatt3", "Alicia", "Andrea", "edward", "steph", "Michael",
                     "norbert", "quincy")
KWS_FEATURES_VERSION = 2  # bump when the generation code changes what it produces


@dataclass(frozen=True)
class KwsConfig:
    """Every parameter that changes the generated features (the cache key hashes all of them)."""
    words: tuple[str, ...] = KWS_WORDS
    unknown_words: tuple[str, ...] = KWS_UNKNOWN_WORDS
    accents: tuple[str, ...] = KWS_ACCENTS
    train_variants: tuple[str, ...] = KWS_TRAIN_VARIANTS
    test_variants: tuple[str, ...] = KWS_TEST_VARIANTS
    train_accents: int = 3                # accents per training variant (random subset)
    unknown_per_voice: int = 2            # utterances of random filler words per voice
    test_repeats: int = 2                 # renderings of each test word per voice (speed, pitch)
    speed_wpm: tuple[int, int] = (125, 215)
    pitch: tuple[int, int] = (20, 80)
    train_augment: int = 2                # noisy, shifted copies of each training utterance
    train_stretch: tuple[float, float] = (0.88, 1.12)  # resampling factor of training copies
    silence_fraction: float = 0.09        # noise-only samples, relative to the utterances
    snr_db: tuple[float, float] = (8.0, 30.0)
    gain_db: tuple[float, float] = (-12.0, 0.0)
    sample_rate: int = 16000
    window_s: float = 0.040
    hop_s: float = 0.020
    n_mels: int = 40
    n_mfcc: int = 10
    fmin: float = 20.0
    fmax: float = 4000.0
    seed: int = 0

    def key(self, espeak_version: str) -> str:
        blob = json.dumps({**asdict(self), "espeak": espeak_version, "version": KWS_FEATURES_VERSION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng not found; install Debian's package with "
                                "`apt-get install espeak-ng` (it synthesises the keyword-spotting set)")
    return exe


def espeak_version() -> str:
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("Data at")[0].strip()


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono PCM WAV bytes -> (float64 samples in [-1, 1), sample rate).

    espeak-ng --stdout streams with placeholder chunk sizes, so the data chunk runs to the end."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError(f"expected 16-bit mono PCM, got format {fmt}, {channels} ch, {bits} bits")
        elif cid == b"data":
            if rate is None:
                raise ValueError("WAV data chunk before fmt chunk")
            body = data[pos + 8:pos + 8 + min(size, len(data) - pos - 8)]
            body = body[: len(body) // 2 * 2]
            return np.frombuffer(body, "<i2").astype(np.float64) / 32768.0, rate
        pos += 8 + size + (size & 1)
    raise ValueError("WAV stream has no data chunk")


def speak(word: str, voice: str, speed: int, pitch: int, sample_rate: int = 16000) -> np.ndarray:
    """espeak-ng's rendering of ``word`` resampled to ``sample_rate`` (float64, leading and
    trailing silence trimmed)."""
    from math import gcd

    from scipy.signal import resample_poly

    res = subprocess.run([_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True)
    x, rate = parse_wav(res.stdout)
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        x = resample_poly(x, sample_rate // g, rate // g)
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(np.abs(x).max(), 1e-9))
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {word!r} with voice {voice}")
    margin = sample_rate // 100
    return x[max(0, loud[0] - margin): loud[-1] + margin]


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS background noise: a random mix of white, pink (1/f) and brown (1/f^2) noise."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(spec.size), 1.0)
    pink = np.fft.irfft(spec / np.sqrt(f), n)
    brown = np.fft.irfft(spec / f, n)
    w = rng.dirichlet(np.ones(3))
    mix = sum(wi * s / (np.sqrt(np.mean(s ** 2)) + 1e-12) for wi, s in zip(w, (white, pink, brown)))
    return mix / (np.sqrt(np.mean(mix ** 2)) + 1e-12)


def _stretch(x: np.ndarray, factor: float) -> np.ndarray:
    """Resample by ``factor`` (linear interpolation): duration, pitch and formants scale together,
    roughly what a longer or shorter vocal tract does."""
    n = max(2, int(round(x.size * factor)))
    return np.interp(np.linspace(0.0, x.size - 1.0, n), np.arange(x.size), x)


def _place(speech: np.ndarray | None, rng: np.random.Generator, cfg: KwsConfig,
           stretch: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """One 1 s clip: speech (resampled by a random factor in ``stretch``) at a random offset,
    cropped if longer, random gain, background noise at a random SNR."""
    n = cfg.sample_rate
    out = np.zeros(n)
    noise = _noise(rng, n)
    if speech is None:  # silence class: background noise only, at a random level
        return noise * 10.0 ** (rng.uniform(-50.0, -15.0) / 20.0)
    if stretch != (1.0, 1.0):
        speech = _stretch(speech, rng.uniform(*stretch))
    if speech.size > n:
        start = rng.integers(0, speech.size - n + 1)
        speech = speech[start:start + n]
    offset = rng.integers(0, n - speech.size + 1)
    out[offset:offset + speech.size] = speech
    out *= 10.0 ** (rng.uniform(*cfg.gain_db) / 20.0) / (np.abs(speech).max() + 1e-12) * 0.5
    rms = np.sqrt(np.mean(out[offset:offset + speech.size] ** 2))
    return out + noise * rms * 10.0 ** (-rng.uniform(*cfg.snr_db) / 20.0)


def _utterances(cfg: KwsConfig, variants: tuple[str, ...], n_accents: int, repeats: int,
                rng: np.random.Generator) -> list[tuple]:
    """(word, label, voice, speed, pitch) for every utterance of one split, in a fixed order."""
    jobs = []
    for variant in variants:
        accents = [cfg.accents[i] for i in sorted(rng.choice(len(cfg.accents), n_accents, replace=False))]
        for accent, _ in ((a, r) for a in accents for r in range(repeats)):
            voice = f"{accent}+{variant}"
            words = [(w, KWS_CLASSES.index(w)) for w in cfg.words]
            fillers = rng.choice(len(cfg.unknown_words), cfg.unknown_per_voice, replace=False)
            words += [(cfg.unknown_words[i], 1) for i in fillers]
            for word, label in words:
                jobs.append((word, label, voice, int(rng.integers(cfg.speed_wpm[0], cfg.speed_wpm[1] + 1)),
                             int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1))))
    return jobs


def _generate_split(cfg: KwsConfig, variants: tuple[str, ...], n_accents: int, repeats: int, copies: int,
                    stretch: tuple[float, float], seed: int,
                    workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    jobs = _utterances(cfg, variants, n_accents, repeats, rng)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # espeak-ng runs as processes
        audio = list(pool.map(lambda j: speak(j[0], j[2], j[3], j[4], cfg.sample_rate), jobs))
    clips, labels, voices = [], [], []
    for (word, label, voice, _, _), speech in zip(jobs, audio):
        for _ in range(copies):
            clips.append(_place(speech, rng, cfg, stretch))
            labels.append(label)
            voices.append(voice)
    n_silence = int(round(cfg.silence_fraction * len(clips)))
    for _ in range(n_silence):
        clips.append(_place(None, rng, cfg))
        labels.append(0)
        voices.append("")
    feats = []
    for s in range(0, len(clips), 512):
        feats.append(mfcc(np.stack(clips[s:s + 512]), cfg.sample_rate, cfg.window_s, cfg.hop_s,
                          cfg.n_mels, cfg.n_mfcc, cfg.fmin, cfg.fmax))
    return np.concatenate(feats), np.asarray(labels, np.int64), np.asarray(voices)


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def kws(config: KwsConfig | None = None, cache_dir: str | Path | None = None,
        workers: int | None = None, verbose: bool = False) -> Dataset:
    """Synthetic keyword spotting: 12 classes (silence, unknown, 10 words), (N, 1, 49, 10) MFCCs
    standardised per coefficient with the training set's mean and std; test voices are unseen.

    Generated once (espeak-ng, ~a minute on 2 cores) and cached as
    ``<cache_dir>/kws-<hash>.npz``; later calls only load the file."""
    import time

    cfg = config or KwsConfig()
    key = cfg.key(espeak_version())
    cache = Path(cache_dir) if cache_dir is not None else CACHE_ROOT / "kws"
    path = cache / f"kws-{key}.npz"
    if not path.is_file():
        t0 = time.perf_counter()
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        x_tr, y_tr, v_tr = _generate_split(cfg, cfg.train_variants, cfg.train_accents, 1,
                                           cfg.train_augment, cfg.train_stretch, cfg.seed, workers)
        x_te, y_te, v_te = _generate_split(cfg, cfg.test_variants, len(cfg.accents), cfg.test_repeats, 1,
                                           (1.0, 1.0), cfg.seed + 1, workers)
        mean = x_tr.mean(axis=(0, 1)).astype(np.float32)
        std = x_tr.std(axis=(0, 1)).astype(np.float32)
        _atomic_save_npz(path, x_train=x_tr, y_train=y_tr, voices_train=v_tr, x_test=x_te, y_test=y_te,
                         voices_test=v_te, mean=mean, std=std,
                         config=np.frombuffer(json.dumps(asdict(cfg), sort_keys=True).encode(), np.uint8))
        if verbose:
            print(f"kws: generated {len(x_tr)} train / {len(x_te)} test samples in "
                  f"{time.perf_counter() - t0:.1f}s -> {path}")
    with np.load(path, allow_pickle=False) as z:
        mean, std = z["mean"], z["std"]
        norm = lambda x: np.ascontiguousarray(((x - mean) / std).astype(np.float32)[:, None])  # noqa: E731
        return Dataset("kws", norm(z["x_train"]), z["y_train"], norm(z["x_test"]), z["y_test"], KWS_CLASSES,
                       {"cache": str(path), "key": key, "mean": mean, "std": std,
                        "voices_train": sorted(set(z["voices_train"].tolist()) - {""}),
                        "voices_test": sorted(set(z["voices_test"].tolist()) - {""})})

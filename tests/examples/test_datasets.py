"""examples/datasets.py: MFCC, IDX reader, WAV parsing, determinism; slow: espeak-ng and training."""
from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from examples import datasets as ds

ROOT = Path(__file__).resolve().parents[2]
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
HAVE_FMNIST = (ds.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="needs Debian package espeak-ng")
needs_fmnist = pytest.mark.skipif(not HAVE_FMNIST, reason="needs Debian package dataset-fashion-mnist")


# --------------------------------------------------------------------------------------------
# MFCC
# --------------------------------------------------------------------------------------------

def tone(freq: float, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def test_one_second_gives_49_frames_of_10_coefficients() -> None:
    feats = ds.mfcc(tone(440.0))
    assert feats.shape == (49, 10) and feats.dtype == np.float32
    assert ds.mfcc(np.stack([tone(440.0), tone(880.0), tone(100.0)])).shape == (3, 49, 10)
    assert ds.log_mel(np.zeros((2, 4, 16000))).shape == (2, 4, 49, 40)


def test_too_short_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than one"):
        ds.mfcc(np.zeros(100))


@pytest.mark.parametrize("freq", [150.0, 440.0, 1000.0, 2500.0, 3700.0])
def test_pure_tone_lands_in_the_band_centred_on_it(freq: float) -> None:
    lm = ds.log_mel(tone(freq))
    centers = ds.mel_centers(40, 20.0, 4000.0)
    expected = int(np.argmin(np.abs(centers - freq)))
    assert np.all(lm.argmax(axis=1) == expected)
    # far-away bands see (almost) nothing: more than 40 dB (4.6 nepers) below the peak
    far = np.abs(np.arange(40) - expected) > 3
    assert np.all(lm[:, far].max(axis=1) < lm.max(axis=1) - 4.6)


def test_silence_gives_the_hand_computed_mfcc() -> None:
    # log-mel is log(1e-6) in every band; an orthonormal DCT-II of a constant c over 40 bands
    # is c * sqrt(40) in coefficient 0 and 0 elsewhere
    feats = ds.mfcc(np.zeros(16000))
    assert np.allclose(feats[:, 0], np.log(1e-6) * np.sqrt(40), rtol=1e-5)
    assert np.allclose(feats[:, 1:], 0.0, atol=1e-3)


def test_mfcc_is_scale_covariant_in_c0_only() -> None:
    # doubling the amplitude multiplies every mel energy by 4: log-mel + log 4, so only c0 moves
    # (broadband noise: every band's energy is far above the 1e-6 floor)
    x = np.random.default_rng(0).standard_normal(16000)
    a, b = ds.mfcc(x), ds.mfcc(2 * x)
    assert np.allclose(b[:, 0] - a[:, 0], np.log(4.0) * np.sqrt(40), atol=1e-3)
    assert np.allclose(b[:, 1:], a[:, 1:], atol=1e-3)


def test_mel_filterbank_triangles() -> None:
    bank = ds.mel_filterbank(40, 1024, 16000, 20.0, 4000.0)
    assert bank.shape == (40, 513)
    assert bank.min() >= 0.0 and bank.max() <= 1.0
    assert np.all(bank.sum(axis=1) > 0)  # no empty band at this resolution
    freqs = np.arange(513) * 16000 / 1024
    assert np.all(bank[:, freqs > 4000.0] == 0.0) and np.all(bank[:, freqs < 20.0] == 0.0)
    # the peaks move up monotonically
    assert np.all(np.diff(bank.argmax(axis=1)) >= 0)


# --------------------------------------------------------------------------------------------
# IDX and Fashion-MNIST
# --------------------------------------------------------------------------------------------

def write_idx(path: Path, arr: np.ndarray, code: int, gz: bool = False) -> Path:
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8_images_and_labels(tmp_path: Path, gz: bool) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], np.uint8)
    suffix = ".gz" if gz else ""
    got = ds.read_idx(write_idx(tmp_path / f"img{suffix}", images, 0x08, gz))
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(ds.read_idx(write_idx(tmp_path / f"lab{suffix}", labels, 0x08, gz)), labels)


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    values = np.array([[1, -2], [70000, -70000]], dtype=">i4")
    got = ds.read_idx(write_idx(tmp_path / "x.idx", values, 0x0C))
    assert got.dtype == np.dtype("int32") and got.tolist() == [[1, -2], [70000, -70000]]


def test_read_idx_refuses_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01x")
    with pytest.raises(ValueError, match="not an IDX file"):
        ds.read_idx(tmp_path / "bad")
    short = bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc"
    (tmp_path / "short").write_bytes(short)
    with pytest.raises(ValueError, match="header says"):
        ds.read_idx(tmp_path / "short")


def fake_fashion_mnist(root: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 8, True)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8), 8, True)


def test_fashion_mnist_from_idx_files(tmp_path: Path) -> None:
    fake_fashion_mnist(tmp_path)
    d = ds.fashion_mnist(tmp_path)
    assert d.x_train.shape == (6, 1, 28, 28) and d.x_test.shape == (4, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    raw = ds.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert np.array_equal(d.x_train[:, 0] * 255, raw.astype(np.float32))
    assert len(d.classes) == 10


def test_fashion_mnist_missing_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        ds.fashion_mnist(tmp_path)


@needs_fmnist
def test_real_fashion_mnist() -> None:
    d = ds.fashion_mnist()
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(d.y_test), np.full(10, 1000))
    assert np.array_equal(ds.fashion_mnist().x_test[:50], d.x_test[:50])


# --------------------------------------------------------------------------------------------
# digits, calibration subsets
# --------------------------------------------------------------------------------------------

def test_digits_matches_the_shipped_split() -> None:
    d = ds.digits()
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.y_test.dtype == np.int64
    shipped = ROOT / "calibration" / "digits"
    if (shipped / "eval.npy").is_file():
        assert np.array_equal(np.load(shipped / "eval.npy"), d.x_test)
        assert np.array_equal(np.load(shipped / "eval_labels.npy"), d.y_test)
        assert np.array_equal(np.load(shipped / "calib.npy"), d.calibration(200, 0))


def test_calibration_subset_is_deterministic() -> None:
    d = ds.digits()
    a, b = d.calibration(50, 3), d.calibration(50, 3)
    assert a.flags.c_contiguous and np.array_equal(a, b)
    assert not np.array_equal(a, d.calibration(50, 4))


# --------------------------------------------------------------------------------------------
# KWS pieces that need no espeak-ng
# --------------------------------------------------------------------------------------------

def test_parse_wav_with_streaming_placeholder_sizes() -> None:
    pcm = (np.array([0, 16384, -16384, 32767, -32768], "<i2")).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    data = b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    data += b"data" + struct.pack("<I", 0x7FFFF000) + pcm
    x, rate = ds.parse_wav(data)
    assert rate == 22050
    assert np.allclose(x, [0.0, 0.5, -0.5, 32767 / 32768, -1.0])
    with pytest.raises(ValueError):
        ds.parse_wav(b"RIFX" + data[4:])


def test_clip_placement_is_seeded_and_one_second() -> None:
    cfg = ds.KwsConfig()
    speech = np.sin(np.arange(6000) / 5.0)
    a = ds._place(speech, np.random.default_rng(5), cfg, cfg.train_stretch)
    b = ds._place(speech, np.random.default_rng(5), cfg, cfg.train_stretch)
    assert a.shape == (16000,) and np.array_equal(a, b)
    assert not np.array_equal(a, ds._place(speech, np.random.default_rng(6), cfg, cfg.train_stretch))
    long = ds._place(np.ones(30000), np.random.default_rng(0), cfg)  # longer than 1 s: cropped
    assert long.shape == (16000,)
    silence = ds._place(None, np.random.default_rng(0), cfg)
    assert np.sqrt(np.mean(silence ** 2)) < 0.2


def test_kws_cache_key_covers_every_parameter() -> None:
    base = ds.KwsConfig()
    assert base.key("v") == ds.KwsConfig().key("v")
    assert base.key("v") != base.key("w")
    assert base.key("v") != ds.KwsConfig(seed=1).key("v")
    assert base.key("v") != ds.KwsConfig(snr_db=(0.0, 30.0)).key("v")


def test_kws_voices_are_split() -> None:
    assert not set(ds.KWS_TRAIN_VARIANTS) & set(ds.KWS_TEST_VARIANTS)
    assert ds.KWS_CLASSES[:2] == ("silence", "unknown") and len(ds.KWS_CLASSES) == 12
    assert not set(ds.KWS_WORDS) & set(ds.KWS_UNKNOWN_WORDS)


# --------------------------------------------------------------------------------------------
# slow: espeak-ng, training, the benchmark
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
@needs_espeak
def test_espeak_word_is_16khz_speech() -> None:
    x = ds.speak("left", "en-us+m3", 160, 50)
    assert 0.15 < x.size / 16000 < 1.0
    assert np.array_equal(x, ds.speak("left", "en-us+m3", 160, 50))  # espeak-ng is deterministic
    assert ds.mfcc(np.pad(x, (0, 16000 - x.size))).shape == (49, 10)


@pytest.mark.slow
@needs_espeak
def test_small_kws_set_is_deterministic_cached_and_voice_split(tmp_path: Path) -> None:
    cfg = ds.KwsConfig(train_variants=("m1", "f2"), test_variants=("m8",), accents=("en", "en-us"),
                       train_accents=1, test_repeats=1)
    a = ds.kws(cfg, cache_dir=tmp_path / "a")
    b = ds.kws(cfg, cache_dir=tmp_path / "b")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.x_train.shape[1:] == (1, 49, 10) and a.x_train.dtype == np.float32
    assert set(np.unique(a.y_test)) == set(range(12))
    assert all(v.endswith("+m8") for v in a.info["voices_test"])
    assert not set(a.info["voices_train"]) & set(a.info["voices_test"])
    assert np.allclose(a.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)  # standardised on train
    cached = Path(a.info["cache"])
    stamp = cached.stat().st_mtime_ns
    assert ds.kws(cfg, cache_dir=tmp_path / "a").info["cache"] == str(cached)
    assert cached.stat().st_mtime_ns == stamp  # loaded, not regenerated


@pytest.mark.slow
def test_fit_is_deterministic() -> None:
    import torch

    from examples.fashion_mnist.train import FashionCNN, fit, single_thread
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    def once() -> dict:
        torch.manual_seed(0)  # as prepare() does before building the model
        return fit(FashionCNN(), x, y, epochs=1, batch=16, lr=1e-3, seed=0).state_dict()

    with single_thread():
        a, b = once(), once()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@needs_fmnist
def test_fashion_mnist_prepare(tmp_path: Path) -> None:
    from examples.fashion_mnist.train import prepare
    info = prepare(tmp_path)
    assert not info["cached"] and info["float_accuracy"] >= 0.88
    assert np.load(info["calib"]).shape == (500, 1, 28, 28)
    assert np.load(info["eval"]).shape == (10000, 1, 28, 28)
    assert json.loads(Path(info["meta"]).read_text())["float_accuracy"] == info["float_accuracy"]
    again = prepare(tmp_path)
    assert again["cached"] and again["float_accuracy"] == info["float_accuracy"]


@pytest.mark.slow
@needs_espeak
def test_kws_prepare(tmp_path: Path) -> None:
    from examples.kws.train import prepare
    info = prepare(tmp_path)  # the feature cache under build/cache/kws is shared
    assert info["float_accuracy"] >= 0.80
    x = np.load(info["eval"])
    assert x.shape[1:] == (1, 49, 10) and len(x) == len(np.load(info["eval_labels"]))


@pytest.mark.slow
def test_accuracy_benchmark_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--models", "digits",
                          "--methods", "minmax", "--quick", "--json", str(out), "--out", str(tmp_path / "b"),
                          "--models-root", str(tmp_path / "m")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "ORT MinMax" in res.stdout and "edgeq minmax" in res.stdout
    row = json.loads(out.read_text())["models"][0]
    assert row["best_peer"] in ("MinMax", "Entropy", "Percentile")
    assert row["edgeq"]["minmax"]["accuracy"] > 0.9 and row["ort"]["MinMax"]["accuracy"] > 0.9

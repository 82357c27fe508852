"""Targets: ONNX QDQ, TFLite int8, C for microcontrollers. See ``base.py`` for the interface."""
import importlib
from types import ModuleType

from .base import RuntimeRun, TargetProfile, list_profiles, load_profile

FORMAT_MODULES = {"onnx": "onnx_qdq", "tflite": "tflite", "c": "c"}


def target_module(profile: TargetProfile) -> ModuleType:
    return importlib.import_module(f"{__name__}.{FORMAT_MODULES[profile.format]}")


__all__ = ["RuntimeRun", "TargetProfile", "list_profiles", "load_profile", "target_module"]

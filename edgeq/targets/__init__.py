"""Targets: ONNX QDQ, TFLite int8, C for microcontrollers. See ``base.Target`` for the interface."""
import importlib
from types import ModuleType

from .base import (FORMAT_MODULES, TARGET_MEMBERS, RuntimeRun, Target, TargetProfile, list_profiles, load_profile,
                   profile_dirs)


def target_module(profile: TargetProfile) -> ModuleType:
    """The module implementing ``profile``'s format (every member of ``base.Target``)."""
    module = importlib.import_module(f"{__name__}.{FORMAT_MODULES[profile.format]}")
    missing = [m for m in TARGET_MEMBERS if not hasattr(module, m)]
    if missing:
        raise TypeError(f"target module {module.__name__} lacks {', '.join(missing)}")
    return module


__all__ = ["FORMAT_MODULES", "RuntimeRun", "Target", "TargetProfile", "list_profiles", "load_profile", "profile_dirs",
           "target_module"]

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repo root (``examples``, ``tests.helpers``) and the C target's test helpers, which the
# memory-plan tests share, importable whichever test file runs alone
for _path in (ROOT, ROOT / "tests" / "targets" / "c"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


import pytest  # noqa: E402

from edgeq.build import one_thread  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch and numpy's BLAS on one thread for a module's tests, as during a build
    (``edgeq.build.one_thread``): calibration runs small ops on small batches, where one thread
    is faster on the shared cores."""
    with one_thread():
        yield

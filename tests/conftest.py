import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repo root (``examples``, ``tests.helpers``) and the C target's test helpers, which the
# memory-plan tests share, importable whichever test file runs alone
for _path in (ROOT, ROOT / "tests" / "targets" / "c"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: calibration runs torch convs on small batches,
    and one thread is faster on the shared cores."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

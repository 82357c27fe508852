"""The output directory: checked before any work, built beside the destination in
``OUT.partial-XXXX`` and moved into place only when the build has produced its report.

A failure or Ctrl-C removes the partial directory (and any parent folder the build created), so
``-o`` never holds half a build, and a new build never leaves an old build's files beside its
own. A non-empty destination is replaced only if it is an earlier edgeq build (its report.json
lists every file in it), or with ``force``."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from .errors import EdgeqError

REPORT = "report.json"
OWN_FILES = (REPORT, "report.md")


def check_destination(out_dir: str | Path, force: bool = False) -> Path:
    """The absolute destination, after refusing what no build may write to; creates nothing."""
    if out_dir is None or not str(out_dir).strip():
        raise EdgeqError("the output directory (-o) is empty; name a directory for the build, e.g. -o build/model")
    out = Path(os.path.abspath(os.path.expanduser(str(out_dir))))
    cwd, real, home = Path.cwd().resolve(), out.resolve(), Path.home().resolve()
    if real == home or real == Path(real.anchor) or real == cwd or real in cwd.parents:
        what = "your home directory" if real == home else "the current directory or above it"
        raise EdgeqError(f"the output directory {out_dir} is {what}; a build replaces its output directory: "
                         "name a new one, e.g. -o build/model")
    if out.exists() and not out.is_dir():
        raise EdgeqError(f"the output directory {out} is a file; choose a directory path for -o")
    if out.is_dir() and any(out.iterdir()) and not force:
        foreign = foreign_files(out)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise EdgeqError(f"the output directory {out} holds files that are not from an edgeq build ({shown}); "
                             "choose another -o, or pass --force to replace the directory")
    parent = _existing_ancestor(out.parent)
    if not parent.is_dir():
        raise EdgeqError(f"cannot create output directory {out}: {parent} is a file; choose a writable -o path")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out.parent, os.W_OK | os.X_OK)):
        raise EdgeqError(f"output directory {out} is not writable (no write permission in {parent}); "
                         "choose a writable -o path")
    return out


def foreign_files(out: Path) -> list[str]:
    """Files in ``out`` that an earlier edgeq build did not write (all of them when there is no
    readable edgeq report.json)."""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir())
    try:
        report = json.loads((out / REPORT).read_text())
        known = {a["path"] for a in report["artifacts"]} | set(report.get("plots", [])) | set(OWN_FILES)
        if "edgeq_version" not in report:
            return files
    except (OSError, ValueError, KeyError, TypeError):
        return files
    return [f for f in files if f not in known]


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class Staging:
    """``with Staging(dest) as tmp:`` build into ``tmp``; ``commit()`` moves it into place;
    leaving the block without a commit (an error, Ctrl-C) removes it."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.created: list[Path] = []
        self.path: Path | None = None

    def __enter__(self) -> Path:
        missing = []
        p = self.dest.parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self.created.append(d)
            self.path = Path(tempfile.mkdtemp(prefix=f"{self.dest.name}.partial-", dir=self.dest.parent))
        except OSError as e:
            self._remove_created()
            raise write_error(e, self.dest) from None
        os.chmod(self.path, 0o755)     # mkdtemp makes 0700; a build is an ordinary directory
        return self.path

    def commit(self) -> None:
        """Replace the destination with the staged build."""
        assert self.path is not None
        old = None
        try:
            if self.dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f"{self.dest.name}.old-", dir=self.dest.parent))
                os.replace(self.dest, old / "build")
            os.replace(self.path, self.dest)
        except OSError as e:
            if old is not None and (old / "build").exists() and not self.dest.exists():
                os.replace(old / "build", self.dest)
            raise write_error(e, self.dest) from None
        self.path = None
        if old is not None:
            shutil.rmtree(old, onerror=_force_remove)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.path is not None:      # not committed: an error or an interrupt
            shutil.rmtree(self.path, ignore_errors=True)
            self._remove_created()

    def _remove_created(self) -> None:
        for d in reversed(self.created):
            try:
                d.rmdir()
            except OSError:
                break


def _force_remove(func, path, _exc) -> None:  # noqa: ANN001 - shutil's onerror signature
    """A read-only folder of the old build (e.g. plots/ made unwritable): make it writable, retry."""
    try:
        os.chmod(os.path.dirname(path), 0o755)
        func(path)
    except OSError:
        pass


def write_error(e: OSError, dest: Path) -> EdgeqError:
    """An OSError while writing the build, as one line naming the cause and the way out."""
    where = e.filename or dest
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return EdgeqError(f"no space left on the device while writing {where}; free some space or choose "
                          "another -o (nothing was left in the output directory)")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EdgeqError(f"cannot write {where}: {e.strerror}; choose a writable -o path")
    if e.errno == errno.ENAMETOOLONG:
        return EdgeqError(f"a path of the build is too long ({e.strerror}); choose a shorter -o or --name")
    return EdgeqError(f"writing the build failed at {where}: {e.strerror or e}; check the output path")

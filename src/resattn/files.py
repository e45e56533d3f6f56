"""Files written whole or not at all. Every file the library writes over one a user may already
have (checkpoints, weights, exports, run records, downloads, extracted data) goes through
`replacing`: a temporary file beside the target, flushed to disk, then renamed over it, so a
crash, a full disk or a failed check leaves the old file (or none), never a torn one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def follow_umask(path: str | Path) -> None:
    """Give a file made by mkstemp (mode 0600) the mode every other file of the user gets."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _reason(exc: BaseException) -> str:
    """The first line of an error, short: `No space left on device`."""
    return getattr(exc, "strerror", None) or (str(exc).strip().split("\n")[0][:100]
                                              or type(exc).__name__)


def _sync(path: Path) -> None:
    """fsync a file or a folder (a folder holds the rename of a file in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path, *, what: str = "", advice: str = "choose another place",
              errors: tuple[type[BaseException], ...] = (OSError,)) -> Iterator[Path]:
    """Yield an empty temporary file beside `path` (same file system, so the rename is atomic)
    for the caller to fill. When the block ends normally the file is synced, given the user's
    umask mode and renamed over `path`, and the folder is synced; when it raises, the temporary
    file is removed and `path` is untouched.

    Making the temporary file, and an exception of a class in `errors` inside the block (disk
    full, quota; a checkpoint adds torch.save's RuntimeError), end as one UserError naming
    `what` and `path`, whether the old file is kept, and `advice`. Other exceptions pass
    through unchanged (a failed check keeps its traceback). A block whose reads raise OSErrors
    of their own (a network, a compressed archive) wraps them first (data/download.py).
    """
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if path.is_dir():
        raise UserError(f"cannot write {name}: it is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:  # a file in the way, no permission, read-only file system
        raise UserError(f"cannot write {name} ({_reason(exc)}); {advice}") from None
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            _sync(tmp)
            follow_umask(tmp)
            os.replace(tmp, path)
        except errors as exc:
            kept = "the previous one is kept" if path.exists() else "nothing was written"
            raise UserError(f"cannot write {name} ({_reason(exc)}); {kept}; {advice}") from None
        with contextlib.suppress(OSError):  # the rename itself on disk (not on every platform)
            _sync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str | Path, text: str, **kwargs) -> Path:
    """`text` (UTF-8) into `path` through `replacing`; keyword arguments go to it."""
    with replacing(path, **kwargs) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

"""Checksums, downloads into a temporary file, and archive extraction that trusts no member name."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import tarfile
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ..errors import UserError
from ..files import replacing


class DataError(UserError):
    """Missing, corrupt, truncated or tampered data: the message names the file and the fix."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_md5(path: Path, expected: str, what_to_do: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise DataError(f"{path} is corrupt or tampered (MD5 {actual}, expected {expected}); "
                        f"{what_to_do}")


class _NetworkError(Exception):
    """A network error on its way through `replacing`, which takes OSErrors for the disk's."""


class _NetworkReads:
    """A response whose read errors are the network's (a dropped connection), kept apart from
    the disk's while its bytes are written; reads advance `bar`."""

    def __init__(self, response, bar):
        self.response, self.bar = response, bar

    def read(self, size: int = -1) -> bytes:
        try:
            block = self.response.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise _NetworkError(exc) from None
        self.bar.update(len(block))
        return block


def download(url: str, dest: Path, md5: str, progress: bool = True) -> Path:
    """Fetch `url` into a temporary file beside `dest`, verify its MD5, then rename it into place:
    `dest` never holds a partial or unverified file. Network errors are raised as OSErrors for
    the caller to explain; the disk's (full, read-only) are one UserError of their own."""
    from tqdm import tqdm

    try:
        with replacing(dest, what="the download", advice="free some space or choose another "
                       "data folder") as tmp, tmp.open("wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except OSError as exc:
                raise _NetworkError(exc) from None
            total = int(response.headers.get("Content-Length") or 0) or None
            with response, tqdm(total=total, unit="B", unit_scale=True,
                                desc=f"download {dest.name}", disable=not progress) as bar:
                shutil.copyfileobj(_NetworkReads(response, bar), out, 1 << 20)
            out.flush()
            check_md5(tmp, md5, f"the download from {url} was damaged; try again")
    except _NetworkError as wrapped:
        cause = wrapped.args[0]
        raise cause if isinstance(cause, OSError) else ConnectionError(f"{cause!r}") from None
    return dest


class _ArchiveReads:
    """A tar member whose read errors are the archive's (TarError), never taken for the disk's
    (OSError) while its bytes are written."""

    def __init__(self, member: IO[bytes]):
        self.member = member

    def read(self, size: int = -1) -> bytes:
        try:
            return self.member.read(size)
        except (OSError, zlib.error) as exc:  # a damaged compressed stream
            raise tarfile.ReadError(str(exc)) from None


def safe_extract(archive: Path, dest: Path, members: Iterable[str]) -> None:
    """Extract exactly the expected regular files of a tar archive. Links, devices, absolute
    paths, `..` components and unexpected names are rejected, not skipped silently."""
    wanted = set(members)
    try:
        with tarfile.open(archive, "r:*") as tar:
            found = set()
            for info in tar:
                name = info.name
                parts = Path(name).parts
                if name.startswith("/") or ".." in parts:
                    raise DataError(f"{archive} holds an unsafe member path {name!r}; "
                                    "delete the archive and download the official one")
                if name not in wanted:
                    continue
                if not info.isfile():
                    raise DataError(f"{archive}: member {name!r} is a link or special file; "
                                    "delete the archive and download the official one")
                # the archive's read errors are TarErrors here, mapped below; the disk's
                # (full, read-only) end in replacing as one line of their own
                with replacing(dest / name, advice="free some space, or extract the archive "
                               "into another folder and point the data folder at it") as tmp, \
                        tmp.open("wb") as out:
                    member = tar.extractfile(info)
                    assert member is not None  # a regular file, checked above
                    shutil.copyfileobj(_ArchiveReads(member), out, 1 << 20)
                found.add(name)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive} cannot be read as a tar archive ({exc}); "
                        "delete it and download it again") from None
    missing = sorted(wanted - found)
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}; "
                        "delete it and download the official archive")

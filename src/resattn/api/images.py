"""The user's images: which files a list of paths names, and reading one as RGB with its EXIF
rotation, refusing what is not a picture (`ImageReadError`, one line). `resattn predict`,
`visualize` and the explorer read images through here."""

from __future__ import annotations

from pathlib import Path

from ..data.images import IMAGE_EXTENSIONS, ImageReadError, load_rgb
from ..errors import UserError

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "image_files", "load_rgb"]


def image_files(paths: list[str]) -> list[Path]:
    """The image files that `paths` name: files as given (a missing or odd one is reported when
    it is read), folders searched recursively for image extensions, in sorted order."""
    files = []
    for raw in paths:
        if not raw.strip():  # Path("") is the current folder, which is not what was meant
            raise UserError("an empty path was given; name image files or folders")
        path = Path(raw).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.rglob("*")
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            files.append(path)  # a missing or odd file is reported when it is read
    return files

"""Reading any image the user has into RGB, and the resize/crop geometry of evaluation.

Shared by image-folder datasets and by prediction, so both see a file exactly the same way.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 89_478_485  # Pillow's own default decompression-bomb limit
CROP_PCT = 0.875  # evaluation: resize the shorter side to size / 0.875, centre-crop size


class ImageReadError(UserError):
    """A file that is not a readable image, or one too large to decode safely."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Grayscale, palette, RGBA/LA and 16/32-bit images to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit data scaled to 8 bits; 32-bit integer and float images by their own range
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr, top = arr - lo, max(hi - lo, 1e-12)
        arr = np.clip(np.rint(arr * 255.0 / top), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)  # 2-D uint8 -> mode "L"
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def load_rgb(path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, check the size against the decompression-bomb limit *before* decoding, decode fully,
    apply the EXIF orientation and convert to RGB. Raises ImageReadError with the reason (a
    path that is missing, or a FIFO or device, which opening would block on, is not read)."""
    if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
        raise ImageReadError("not a regular file" if Path(path).exists() else "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageReadError(f"{w}x{h} pixels exceeds the decompression-bomb limit "
                                         f"of {max_pixels} pixels")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"exceeds the decompression-bomb limit ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageReadError(f"unreadable image data ({exc})") from None


def check_header(path, max_pixels: int = MAX_PIXELS) -> None:
    """Cheap scan-time check: the header parses and the size is within the limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"exceeds the decompression-bomb limit ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"unreadable image ({exc})") from None
    if w * h > max_pixels:
        raise ImageReadError(f"{w}x{h} pixels exceeds the decompression-bomb limit "
                             f"of {max_pixels} pixels")


def resize_center_crop(img: Image.Image, size: int, crop_pct: float = CROP_PCT) -> Image.Image:
    """Evaluation geometry: shorter side to round(size / crop_pct), then the central size x size.
    Only the crop is resampled (its box in the source image), so memory stays size x size
    whatever the aspect ratio (a 1 x 1,000,000 image would otherwise be scaled whole)."""
    short = max(size, round(size / crop_pct))
    w, h = img.size
    scale = short / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    sx, sy = new_w / w, new_h / h  # the per-axis scales of the whole resize this stands for
    left, top = (new_w - size) // 2, (new_h - size) // 2
    box = (left / sx, top / sy, (left + size) / sx, (top + size) / sy)
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=None)


def random_resized_crop(img: Image.Image, size: int, rng: random.Random,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Image.Image:
    """Training geometry (Szegedy et al.): a random area fraction and aspect ratio, resized to
    size x size. Falls back to the central crop after 10 misses."""
    w, h = img.size
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return img.resize((size, size), Image.Resampling.BILINEAR,
                              box=(x0, y0, x0 + cw, y0 + ch))
    side = min(w, h)
    x0, y0 = (w - side) // 2, (h - side) // 2
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side))


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3, H, W) uint8 tensor."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()

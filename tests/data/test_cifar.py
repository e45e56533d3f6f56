"""CIFAR binary parsing, verification, safe extraction, download; the real CIFAR-10 facts."""

from __future__ import annotations

import errno
import tarfile
import zlib

import pytest
import torch
from synthetic_data import cifar10_archive, cifar100_archive, write_tar

from resattn.data import DataError, cifar, download, image_stats, load_cifar
from resattn.data.download import safe_extract
from resattn.errors import UserError


@pytest.fixture
def patched10(tmp_path, monkeypatch):
    src, files = cifar10_archive(tmp_path)
    monkeypatch.setitem(cifar.SOURCES, "cifar10", src)
    return tmp_path, src, files


@pytest.mark.slow
def test_real_cifar10_facts(cifar10_dir):
    train, test = load_cifar("cifar10", cifar10_dir)
    assert train.images.shape == (50000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert int(train.labels[0]) == 6 and train.classes[6] == "frog"
    assert int(test.labels[0]) == 3 and test.classes[3] == "cat"
    mean, _ = image_stats(train.images, "channel")
    assert torch.allclose(mean.flatten(), torch.tensor([0.4914, 0.4822, 0.4465]), atol=5e-5)


def test_archive_is_verified_extracted_and_parsed(patched10):
    root, src, files = patched10
    train, test = load_cifar("cifar10", root, download_ok=False)
    assert (root / src.folder / "data_batch_1.bin").is_file()
    assert len(train) == 100 and len(test) == 20
    raw = files["data_batch_1.bin"]
    # record 0: byte 0 is the label, then planar R, G, B planes of 32x32, row-major
    assert int(train.labels[0]) == raw[0]
    assert train.images[0, 0, 0, 1] == raw[1 + 1]
    assert train.images[0, 1, 0, 0] == raw[1 + 1024]
    assert train.images[0, 2, 31, 31] == raw[3072]
    assert int(train.labels[20]) == files["data_batch_2.bin"][0]  # files in order


def test_extracted_folder_or_data_dir_itself(patched10):
    root, src, _ = patched10
    load_cifar("cifar10", root, download_ok=False)
    (root / src.archive).unlink()
    assert len(load_cifar("cifar10", root / src.folder, download_ok=False)[0]) == 100


def test_tampered_member_stops_with_named_file(patched10):
    root, src, _ = patched10
    load_cifar("cifar10", root, download_ok=False)
    path = root / src.folder / "data_batch_3.bin"
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"data_batch_3\.bin is corrupt or tampered"):
        load_cifar("cifar10", root, download_ok=False)


def test_truncated_member(patched10):
    root, src, _ = patched10
    load_cifar("cifar10", root, download_ok=False)
    path = root / src.folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"test_batch\.bin is truncated"):
        load_cifar("cifar10", root, download_ok=False)


def test_tampered_archive(patched10):
    root, src, _ = patched10
    archive = root / src.archive
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz is corrupt or tampered"):
        load_cifar("cifar10", root, download_ok=False)
    assert not (root / src.folder).exists()  # nothing was extracted from unverified bytes


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_unsafe_archive_members_rejected(tmp_path, monkeypatch, kind):
    src, files = cifar10_archive(tmp_path)
    members = {f"{src.folder}/{f}": d for f, d in files.items()}
    if kind == "traversal":
        bad = tarfile.TarInfo(f"{src.folder}/../../evil.bin")
        bad.size = 4
    elif kind == "absolute":
        bad = tarfile.TarInfo("/tmp/evil.bin")
        bad.size = 4
    else:
        members.pop(f"{src.folder}/test_batch.bin")
        bad = tarfile.TarInfo(f"{src.folder}/test_batch.bin")
        bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive_md5 = write_tar(tmp_path / src.archive, members, [bad])
    monkeypatch.setitem(cifar.SOURCES, "cifar10",
                        cifar.CifarSource(**{**src.__dict__, "archive_md5": archive_md5}))
    with pytest.raises(DataError, match="unsafe member path|link or special file"):
        load_cifar("cifar10", tmp_path, download_ok=False)
    assert not (tmp_path.parent / "evil.bin").exists()


def test_cifar100_fine_coarse_and_recorded_hashes(tmp_path, monkeypatch):
    src, files = cifar100_archive(tmp_path)
    monkeypatch.setitem(cifar.SOURCES, "cifar100", src)
    train, test = load_cifar("cifar100", tmp_path, download_ok=False)
    assert len(train) == 40 and len(test) == 10 and len(train.classes) == 100
    assert train.classes[3] == "fine3"
    assert int(train.labels[0]) == files["train.bin"][1]  # byte 1: fine label
    coarse, _ = load_cifar("cifar100", tmp_path, label_type="coarse", download_ok=False)
    assert int(coarse.labels[0]) == files["train.bin"][0] and len(coarse.classes) == 20
    assert (tmp_path / src.folder / cifar.MANIFEST).is_file()
    path = tmp_path / src.folder / "train.bin"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train\.bin is corrupt or tampered"):
        load_cifar("cifar100", tmp_path, download_ok=False)


def test_missing_without_download_says_where_to_put_what(tmp_path):
    with pytest.raises(DataError, match=r"put cifar-10-binary\.tar\.gz .* there"):
        load_cifar("cifar10", tmp_path, download_ok=False)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar("cifar10", tmp_path / "nope")


def test_download_verifies_then_renames(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, _ = cifar10_archive(mirror)
    url = (mirror / src.archive).as_uri()
    monkeypatch.setitem(cifar.SOURCES, "cifar10",
                        cifar.CifarSource(**{**src.__dict__, "url": url}))
    data = tmp_path / "data"
    data.mkdir()
    train, _ = load_cifar("cifar10", data, progress=False)
    assert len(train) == 100 and (data / src.archive).is_file()
    assert sorted(p.name for p in data.iterdir()) == [src.folder, src.archive]  # no temporaries


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, _ = cifar10_archive(mirror)
    bad = cifar.CifarSource(**{**src.__dict__, "url": (mirror / src.archive).as_uri(),
                               "archive_md5": "0" * 32})
    monkeypatch.setitem(cifar.SOURCES, "cifar10", bad)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DataError, match="download .* was damaged"):
        load_cifar("cifar10", data, progress=False)
    assert list(data.iterdir()) == []


def test_a_full_disk_while_downloading_is_the_disks_fault_not_the_networks(tmp_path,
                                                                           monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, _ = cifar10_archive(mirror)
    monkeypatch.setitem(cifar.SOURCES, "cifar10", cifar.CifarSource(
        **{**src.__dict__, "url": (mirror / src.archive).as_uri()}))

    def full(reader, out, length):
        out.write(reader.read(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download.shutil, "copyfileobj", full)
    data = tmp_path / "data"
    data.mkdir()
    full_disk = (r"cannot write the download .*cifar-10-binary\.tar\.gz \(No space left on "
                 r"device\); nothing was written; free some space")
    with pytest.raises(UserError, match=full_disk) as info:
        load_cifar("cifar10", data, progress=False)
    assert not isinstance(info.value, DataError) and list(data.iterdir()) == []


def test_a_connection_dropped_mid_download_is_the_networks_one_line(tmp_path, monkeypatch):
    """The server closes the connection early: http.client's IncompleteRead (no OSError) used
    to escape as a traceback."""
    import http.client

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    src, _ = cifar10_archive(mirror)
    monkeypatch.setitem(cifar.SOURCES, "cifar10", cifar.CifarSource(
        **{**src.__dict__, "url": (mirror / src.archive).as_uri()}))

    def dropped(reader, out, length):
        reader.response.read = lambda size=-1: (_ for _ in ()).throw(
            http.client.IncompleteRead(b"abc", 1000))
        reader.read(length)

    monkeypatch.setattr(download.shutil, "copyfileobj", dropped)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DataError, match="cannot be downloaded .*IncompleteRead.*put "
                                        "cifar-10-binary.tar.gz in"):
        load_cifar("cifar10", data, progress=False)
    assert list(data.iterdir()) == []


def test_no_network_is_one_clear_error(tmp_path, monkeypatch):
    src = cifar.CifarSource(**{**cifar.CIFAR10.__dict__,
                               "url": "http://127.0.0.1:9/cifar-10-binary.tar.gz"})
    monkeypatch.setitem(cifar.SOURCES, "cifar10", src)
    with pytest.raises(DataError, match="cannot be downloaded.*put cifar-10-binary.tar.gz in"
                                        r".*--data-dir.*\$RESATTN_DATA_DIR.*~/.cache/resattn"):
        load_cifar("cifar10", tmp_path, progress=False)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("RESATTN_DATA_DIR", str(tmp_path / "env"))
    assert cifar.default_data_dir("/x/flag") == cifar.Path("/x/flag")
    assert cifar.default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RESATTN_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cifar.default_data_dir() == tmp_path / ".cache" / "resattn"


def test_a_full_disk_while_extracting_is_the_disks_fault_not_the_archives(patched10, monkeypatch):
    """Writing an extracted member fails (ENOSPC): one line about the disk, not 'delete the
    archive and download it again'; no partial member is left, the archive is untouched."""
    root, src, _ = patched10
    archive = (root / src.archive).read_bytes()

    def full(reader, out, length):
        out.write(reader.read(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download.shutil, "copyfileobj", full)
    with pytest.raises(UserError, match=r"cannot write .*data_batch_1\.bin \(No space left on "
                                        r"device\); nothing was written; free some space") as info:
        load_cifar("cifar10", root, download_ok=False)
    assert not isinstance(info.value, DataError)
    assert not any((root / src.folder).iterdir()) and (root / src.archive).read_bytes() == archive


def test_a_damaged_stream_while_extracting_is_the_archives_fault(tmp_path):
    """Read errors of a member (a damaged gzip stream: gzip's OSError or zlib's own error) still
    say to fetch the archive again, as one line."""
    good = tmp_path / "a.tar.gz"
    write_tar(good, {"d/x.bin": b"".join(b"%06d," % i for i in range(100_000))})
    raw, bad = good.read_bytes(), tmp_path / "bad.tar.gz"

    def gzip_fails(data: bytes) -> bool:
        bad.write_bytes(data)
        try:
            with tarfile.open(bad, "r:*") as tar:
                tar.extractfile("d/x.bin").read()
        except (OSError, zlib.error):  # BadGzipFile is an OSError: not to be taken for the disk's
            return True
        return False

    for pos in range(len(raw) // 2, len(raw)):  # a flipped byte in the member's deflate stream
        damaged = raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1:]
        if gzip_fails(damaged):
            break
    else:
        pytest.fail("no damaged stream found")
    with pytest.raises(DataError, match=r"cannot be read as a tar archive \(.*\); delete it and"):
        safe_extract(bad, tmp_path / "out", ["d/x.bin"])
    assert not (tmp_path / "out" / "d" / "x.bin").exists()

"""Files are written whole or not at all: the old file survives any failure inside the block,
no temporary file is left behind, and a write the user can fix is one line saying what to do."""

from __future__ import annotations

import errno
import os

import pytest

from resattn import files
from resattn.errors import UserError


def entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_the_new_content_lands_with_the_users_mode_and_is_synced(tmp_path, monkeypatch):
    synced = []
    real_sync = files._sync
    monkeypatch.setattr(files, "_sync", lambda p: (synced.append(p), real_sync(p)))
    old = os.umask(0o027)
    try:
        files.write_text(tmp_path / "deep" / "a.txt", "new\n")
    finally:
        os.umask(old)
    target = tmp_path / "deep" / "a.txt"
    assert target.read_text() == "new\n" and entries(tmp_path / "deep") == ["a.txt"]
    assert target.stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
    # the data before the rename, then the folder holding the rename
    assert synced[0].name.startswith("a.txt.") and synced[1] == tmp_path / "deep"


def test_the_target_keeps_its_old_content_until_the_block_ends(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with files.replacing(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


@pytest.mark.parametrize("previous", [True, False])
def test_a_full_disk_is_one_line_and_the_old_file_stays(tmp_path, previous):
    target = tmp_path / "a.txt"
    if previous:
        target.write_text("old")
    with pytest.raises(UserError) as info, files.replacing(target, what="the record",
                                                          advice="free some space") as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    message = str(info.value)
    assert message.startswith(f"cannot write the record {target} (No space left on device)")
    assert ("the previous one is kept" if previous else "nothing was written") in message
    assert message.endswith("free some space") and "\n" not in message
    assert info.value.__suppress_context__
    assert entries(tmp_path) == (["a.txt"] if previous else [])
    if previous:
        assert target.read_text() == "old"


def test_other_errors_pass_through_unchanged_and_leave_nothing(tmp_path):
    """A failed check (an internal error) keeps its traceback; only the classes in `errors`
    are taken for the disk's."""
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="check failed"), files.replacing(target) as tmp:
        tmp.write_text("wrong")
        raise RuntimeError("check failed")
    with pytest.raises(ConnectionError), files.replacing(target, errors=()):
        raise ConnectionError("network down")
    assert target.read_text() == "old" and entries(tmp_path) == ["a.txt"]


def test_a_target_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(UserError, match=r"^cannot write the export .*; choose another place$"):
        with files.replacing(tmp_path / "plain" / "model.onnx", what="the export"):
            pytest.fail("the block must not run")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="it is a directory; give a file name"):
        files.write_text(tmp_path / "folder", "x")
    assert entries(tmp_path) == ["folder", "plain"] and not any((tmp_path / "folder").iterdir())

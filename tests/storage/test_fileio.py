"""Reading and writing files a user may have planted: neuroevo.storage.fileio."""

import errno
import os
import threading
import tracemalloc

import pytest

from neuroevo.errors import NeuroevoError
from neuroevo.storage import fileio


def test_a_bounded_read_takes_memory_in_proportion_to_the_file(tmp_path):
    small = tmp_path / "weights.safetensors"
    small.write_bytes(b"w" * 1000)
    tracemalloc.start()
    try:
        data = fileio.read_bytes(small, limit=16 << 30)  # not 16 GiB asked for up front
        with open(small, "rb") as f:
            head = fileio.read_up_to(f, 16 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == head == b"w" * 1000
    assert peak < 1 << 20, peak
    with pytest.raises(fileio.UnsafeFile, match="larger than the limit of 999 bytes"):
        fileio.read_bytes(small, limit=999)
    assert fileio.read_bytes(small, limit=1000) == data


@pytest.mark.parametrize("depth", [200, 100_000])
def test_deeply_nested_json_is_one_located_error(tmp_path, depth):
    file = tmp_path / "model.json"
    file.write_text("[" * depth + "]" * depth)
    with pytest.raises(fileio.BadJSON, match=f"{file}: nests lists or objects") as info:
        fileio.read_json(file, limit=1 << 20)
    assert isinstance(info.value, NeuroevoError)
    file.write_text('{"a": [1, {"b": 2}]')
    with pytest.raises(fileio.BadJSON, match=f"{file}: is not JSON"):
        fileio.read_json(file, limit=1 << 20)
    file.write_text('{"a": [1, {"b": [2]}]}')
    assert fileio.read_json(file, limit=1 << 20) == {"a": [1, {"b": [2]}]}


def test_output_replaces_a_regular_file_through_a_unique_temporary(tmp_path):
    out = tmp_path / "x.csv"
    planted = tmp_path / "x.csv.tmp"
    planted.write_text("the user's own file")
    out.write_text("old")
    os.chmod(out, 0o640)
    fileio.write_output(out, "new\n")
    assert out.read_text() == "new\n" and (os.stat(out).st_mode & 0o777) == 0o640
    fresh = tmp_path / "fresh.csv"  # a new file gets the umask's mode, as the shell's > gives
    mask = os.umask(0o027)
    try:
        fileio.write_output(fresh, "new\n")
    finally:
        os.umask(mask)
    assert (os.stat(fresh).st_mode & 0o777) == 0o640
    fresh.unlink()
    assert planted.read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.csv.tmp"]


def test_output_writes_through_a_link_and_a_named_pipe(tmp_path, monkeypatch):
    real = tmp_path / "real.csv"
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    fileio.write_output(link, "through\n")
    assert link.is_symlink() and real.read_text() == "through\n"
    assert (os.stat(real).st_mode & 0o777) == 0o640

    def full(fd):  # a failure writes nothing: the link's target keeps its old content whole
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)
        with pytest.raises(fileio.UnsafeFile, match=f"^{link}: cannot write"):
            fileio.write_output(link, "lost\n")
    assert real.read_text() == "through\n"

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()), daemon=True)
    reader.start()
    fileio.write_output(pipe, b"to the reader\n")
    reader.join(timeout=10)
    assert got == [b"to the reader\n"]
    assert not pipe.is_file() and os.path.exists(pipe)  # still the pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe", "real.csv"]


def test_output_errors_name_the_users_path_and_leave_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "preds"
    folder.mkdir()
    with pytest.raises(fileio.UnsafeFile, match=f"^{folder}: is a directory") as info:
        fileio.write_output(folder, "x")
    assert ".tmp" not in str(info.value)
    missing = tmp_path / "nowhere" / "x.csv"
    with pytest.raises(fileio.UnsafeFile, match="no such directory") as info:
        fileio.write_output(missing, "x")
    assert str(info.value).startswith(f"{missing}: ") and ".tmp" not in str(info.value)

    out = tmp_path / "x.csv"
    out.write_text("kept")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(fileio.UnsafeFile, match=f"^{out}: cannot write .*No space left"):
        fileio.write_output(out, "new")
    assert out.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds", "x.csv"]

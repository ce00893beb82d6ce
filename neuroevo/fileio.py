"""Reading and writing files a user may have planted or edited, safely.

Every file neuroevo reads that a user gave it or may have edited (recipes, data files,
checkpoints) is read here: a **regular file** only (a FIFO, a device such as ``/dev/zero`` or a
directory is refused before anything blocks), opened **without following a symbolic link**, and
read up to a size limit. Every file neuroevo writes inside a run directory is written here:
under a temporary name opened exclusively and without following links, flushed to disk, then
published with ``os.replace`` (which replaces a link, never what it points to). So a run
directory with planted links cannot make neuroevo read or write anywhere else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from neuroevo.errors import NeuroevoError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

MiB = 1 << 20


class UnsafeFile(NeuroevoError):
    """A path that is a symbolic link, not a regular file, or too large to read."""


def _size(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n >= MiB else f"{n} bytes"


def check_regular(path: str | Path, *, what: str = "file", follow: bool = False) -> os.stat_result:
    """``lstat`` of a path that must be a regular file and not a link (with ``follow``, a link
    to a regular file will do: a file the user names); else :class:`UnsafeFile`."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        raise UnsafeFile(f"{path}: no such {what}") from None
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(f"{path}: is a symbolic link; neuroevo reads only regular files here")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path}: not a regular file ({_kind(info.st_mode)})")
    return info


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def read_bytes(path: str | Path, *, limit: int, what: str = "file", follow: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, read without following links
    unless ``follow`` (for a file the user names on the command line or in a recipe)."""
    check_regular(path, what=what, follow=follow)
    try:
        fd = os.open(path, os.O_RDONLY | (0 if follow else _NOFOLLOW) | _NONBLOCK)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot open the {what} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):  # swapped between lstat and open
            raise UnsafeFile(f"{path}: not a regular file ({_kind(info.st_mode)})")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(f"{path}: the {what} is larger than the limit of {_size(limit)}")
    return data


def read_text(path: str | Path, *, limit: int, what: str = "file", follow: bool = False) -> str:
    data = read_bytes(path, limit=limit, what=what, follow=follow)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFile(f"{path}: the {what} is not UTF-8 text ({exc.reason})") from None


def open_new(path: Path) -> int:
    """A file descriptor for writing ``path`` afresh: a link or file left there is removed
    first (removing a link never touches its target), then the file is created exclusively."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise UnsafeFile(f"{path}: is a directory where neuroevo writes a file") from None
    except PermissionError:
        if Path(path).is_dir():
            raise UnsafeFile(f"{path}: is a directory where neuroevo writes a file") from None
        raise
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``path`` afresh (see :func:`open_new`) and flush it to disk."""
    with os.fdopen(open_new(path), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    fsync_write(tmp, data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(path: Path, data: bytes) -> None:
    """Append to a regular file (created if missing) without following a link; flush to disk."""
    if path.is_symlink():
        raise UnsafeFile(f"{path}: is a symbolic link; neuroevo writes only regular files here")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    with os.fdopen(fd, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

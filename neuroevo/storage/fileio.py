"""Reading and writing files a user may have planted or edited, safely.

Every file neuroevo reads that a user gave it or may have edited (recipes, data files,
checkpoints) is read here: a **regular file** only (a FIFO, a device such as ``/dev/zero`` or a
directory is refused before anything blocks), opened **without following a symbolic link**, and
read up to a size limit. Every file neuroevo writes inside a run directory is written here:
under a temporary name opened exclusively and without following links, flushed to disk, then
published with ``os.replace`` (which replaces a link, never what it points to). So a run
directory with planted links cannot make neuroevo read or write anywhere else.

Reads take memory in proportion to the file, not to the limit. JSON is parsed by
:func:`parse_json`, which bounds how deeply it nests. A file the user names for output
(``--out``) is written by :func:`write_output`: replaced atomically when it is a regular file,
written through when it is a link, a device or a pipe.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO

from neuroevo.errors import NeuroevoError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

MiB = 1 << 20
_CHUNK = 64 << 10
#: the deepest nesting of lists and objects read from a JSON file neuroevo reads
MAX_JSON_DEPTH = 64


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
        if info.st_size > limit:
            raise UnsafeFile(f"{path}: the {what} is larger than the limit of {_size(limit)}")
        data = read_up_to(f, limit + 1, size=info.st_size)
    if len(data) > limit:  # grew while being read
        raise UnsafeFile(f"{path}: the {what} is larger than the limit of {_size(limit)}")
    return data


def read_up_to(f: BinaryIO, limit: int, *, size: int | None = None) -> bytes:
    """At most ``limit`` bytes of the open file ``f``: what the file holds (``size``, else its
    ``fstat`` size) is read in one piece, anything more in small ones, so memory follows the
    file, not the limit (``f.read(limit)`` would ask for the whole limit at once)."""
    if size is None:
        try:
            size = max(0, os.fstat(f.fileno()).st_size - f.tell())
        except (OSError, AttributeError, ValueError):
            size = 0
    parts: list[bytes] = []
    total = 0
    step = size + 1
    while total < limit:
        part = f.read(min(step, limit - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
        step = _CHUNK
    return b"".join(parts)


def count_lines(path: str | Path, n_bytes: int, *, what: str = "file") -> tuple[int, bytes]:
    """The newlines among the first ``n_bytes`` of a regular file (read without following a
    link, in small pieces, whatever its size) and the last of those bytes (``b""``: none)."""
    check_regular(path, what=what)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot open the {what} ({exc.strerror})") from None
    lines, last, left = 0, b"", n_bytes
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped after the check
            raise UnsafeFile(f"{path}: not a regular file")
        while left > 0:
            part = f.read(min(_CHUNK << 4, left))
            if not part:
                break
            lines += part.count(b"\n")
            last, left = part[-1:], left - len(part)
    return lines, last


def read_text(path: str | Path, *, limit: int, what: str = "file", follow: bool = False) -> str:
    data = read_bytes(path, limit=limit, what=what, follow=follow)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFile(f"{path}: the {what} is not UTF-8 text ({exc.reason})") from None


class BadJSON(NeuroevoError):
    """A JSON file that does not parse, or nests deeper than :data:`MAX_JSON_DEPTH`."""


def parse_json(text: str, where: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``text`` parsed as JSON, nested at most ``max_depth`` lists and objects deep; else
    :class:`BadJSON` naming ``where`` (never a bare ``RecursionError``)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise BadJSON(f"{where}: nests lists or objects too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, and a number too long to convert
        raise BadJSON(f"{where}: is not JSON ({exc})") from None
    depth = _depth(data)
    if depth > max_depth:
        raise BadJSON(
            f"{where}: nests lists or objects {depth} deep; neuroevo reads at most {max_depth}"
        )
    return data


def _depth(data: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (a scalar: 0), without recursion."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return deepest


def read_json(path: str | Path, *, limit: int, what: str = "file", follow: bool = False) -> Any:
    """A JSON file read as :func:`read_text` reads it and parsed by :func:`parse_json`."""
    return parse_json(read_text(path, limit=limit, what=what, follow=follow), str(path))


def write_output(path: str | Path, data: bytes | str, *, what: str = "output") -> None:
    """Write a file the user named (``--out``). A regular file (or none yet) is replaced whole
    or not at all, through a uniquely named temporary file beside it that takes the old file's
    mode (a new file: the umask's); a symbolic link to one is kept and its target replaced so;
    a device or a named pipe (``--out /dev/stdout``) is opened and written through, as a
    shell's ``>`` would, and left in place. Errors name ``path``, never the temporary file."""
    path = Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else data
    try:
        info = os.stat(path)  # what a link leads to
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot write the {what} there ({exc.strerror})") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UnsafeFile(f"{path}: is a directory; name the file to write the {what} to")
    if info is not None and not stat.S_ISREG(info.st_mode):  # a device, a pipe
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise UnsafeFile(f"{path}: cannot write the {what} ({exc.strerror})") from None
        return
    target = Path(os.path.realpath(path)) if os.path.islink(path) else path
    if not target.parent.is_dir():
        raise UnsafeFile(f"{path}: cannot write the {what}: no such directory {target.parent}")
    mode = 0o666 if info is None else stat.S_IMODE(info.st_mode)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot write the {what} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if info is not None:  # the old file's mode, whatever the umask
                os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot write the {what} ({exc.strerror})") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


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

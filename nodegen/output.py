"""The only module that touches output/: compare rendered files with disk, and write them atomically.

A node's folder is written whole: the new tree is built beside it (unchanged files hard-linked, so
their mtime is kept) and swapped in with one renameat2(RENAME_EXCHANGE). A process killed at any
moment leaves output/<node> either complete-old or complete-new; the staging folder it leaves is
removed by the next run. Files nodegen wrote are listed with their checksums in `.nodegen.sum`, so
a later render can tell a hand edit (refused without --force) from its own earlier output.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from nodegen.checksums import SUM_FILE, Files, digest, is_unmanaged, parse_sum
from nodegen.errors import NodegenError

if TYPE_CHECKING:  # ctypes and threads are imported by the commands that write, not by check
    import ctypes

STAGING_PREFIX = ".nodegen-staging-"
# Files that live in a node folder on purpose but are never generated (secrets stay out of Git).
EXECUTABLE_SUFFIXES = (".sh",)


class OutputError(NodegenError):
    """output/ cannot be written safely (symlinks, hand edits, I/O errors)."""


@dataclass
class Comparison:
    """How one output folder differs from what the manifests render."""

    folder: str
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)  # generated files changed by hand since

    @property
    def clean(self) -> bool:
        return not (self.stale or self.missing or self.extra)

    @property
    def changed(self) -> int:
        """How many files a write replaces, adds or removes."""
        return len(self.stale) + len(self.missing) + len(self.extra)


def mode_for(path: str) -> int:
    return 0o755 if path.endswith(EXECUTABLE_SUFFIXES) else 0o644


def git_mode(st_mode: int) -> int:
    """The mode Git keeps for a file (644 or 755, from the owner's execute bit): a clone made with
    another umask, or a read-only checkout, has other permission bits and is still current."""
    return 0o755 if st_mode & stat.S_IXUSR else 0o644


def _disk_files(folder: Path, *, recurse: bool = True) -> dict[str, Path]:
    """Relative path -> file for every regular file below folder (staging folders skipped)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(STAGING_PREFIX)) if recurse else []
        for name in names:
            path = Path(root) / name
            out[path.relative_to(folder).as_posix()] = path
    return dict(sorted(out.items()))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _guard(folder: Path, output_root: Path) -> None:
    for path in (output_root, folder):
        if path.is_symlink():
            raise OutputError(f"{path}: is a symlink; nodegen writes only real folders inside the workspace")
    if output_root.exists() and not output_root.is_dir():
        raise OutputError(f"{output_root}: exists and is not a folder")


def compare(folder: Path, files: Files, name: str, *, recurse: bool = True) -> Comparison:
    """Stale, missing, extra and hand-edited files of one output folder."""
    result = Comparison(name)
    disk = _disk_files(folder, recurse=recurse)
    recorded = parse_sum(_read(disk[SUM_FILE]) or "") if SUM_FILE in disk else {}
    for rel, text in files.items():
        if rel not in disk:
            result.missing.append(rel)
            continue
        current = _read(disk[rel])
        if current != text or git_mode(disk[rel].stat().st_mode) != mode_for(rel):
            result.stale.append(rel)
        if current is not None and current != text and rel in recorded and digest(current) != recorded[rel]:
            result.edited.append(rel)  # (a file that is what it should be is not hashed)
    for rel in disk:
        if rel in files or is_unmanaged(rel):
            continue
        result.extra.append(rel)
        current = _read(disk[rel])
        if rel not in recorded or current is None or digest(current) != recorded[rel]:
            result.edited.append(rel)  # changed by hand, or never written by nodegen
    result.edited.sort()
    return result


def unified_diff(folder: Path, files: Files, name: str, *, recurse: bool = True) -> str:
    """What writing files into folder would change, as a unified diff."""
    import difflib  # only `nodegen diff` makes one

    chunks: list[str] = []
    disk = _disk_files(folder, recurse=recurse)
    for rel in sorted(set(files) | {r for r in disk if not is_unmanaged(r)}):
        old = _read(disk[rel]) if rel in disk else None
        new = files.get(rel)
        if old == new:
            mode = git_mode(disk[rel].stat().st_mode) if rel in disk else None
            if new is not None and mode is not None and mode != mode_for(rel):  # check calls this stale too
                chunks.append(f"mode change {mode:o} => {mode_for(rel):o} {name}/{rel}\n")
            continue
        source = f"a/{name}/{rel}" if old is not None else "/dev/null"
        target = f"b/{name}/{rel}" if new is not None else "/dev/null"
        hunks = list(difflib.unified_diff((old or "").splitlines(keepends=True),
                                          (new or "").splitlines(keepends=True), fromfile=source, tofile=target))
        chunks.extend(hunks or [f"--- {source}\n+++ {target}\n"])  # an empty file appearing or going away
        if chunks and not chunks[-1].endswith("\n"):
            chunks.append("\n\\ No newline at end of file\n")
    return "".join(chunks)


# --- writing -------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once: on POSIX the process's own symbols hold it (find_library runs ldconfig)."""
    import ctypes

    if os.name == "posix":
        with contextlib.suppress(OSError):
            return ctypes.CDLL(None, use_errno=True)
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    return ctypes.CDLL(libc_name, use_errno=True) if libc_name is not None else None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    libc = _libc()
    if libc is None:
        return False
    func = getattr(libc, "renameat2", None)
    if func is None:
        return False
    rc = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(rc == 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, text: str, mode: int) -> None:
    data = memoryview(text.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        while data:  # made durable by one filesystem flush before the swap (commit_staged)
            data = data[os.write(fd, data):]
        os.fchmod(fd, mode)  # the umask may have narrowed the mode given to open
    finally:
        os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def clean_staging(output_root: Path) -> None:
    """Remove staging folders an interrupted run left behind (either side of a swap is disposable)."""
    if not output_root.is_dir():
        return
    for child in output_root.iterdir():
        if child.name.startswith(STAGING_PREFIX) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)


@dataclass
class Staged:
    """A node folder's new tree, built beside it and not yet swapped in."""

    folder: Path
    staging: Path | None  # None: the folder is already current
    before: Comparison


def stage_folder(folder: Path, files: Files, *, force: bool = False) -> Staged:
    """Build the folder's new tree in a staging folder (unchanged files hard-linked, mtime kept)."""
    output_root = folder.parent
    _guard(folder, output_root)
    before = compare(folder, files, folder.name)
    if before.edited and not force:
        from nodegen.handedits import refusal  # only a refusal explains hand edits

        raise OutputError(refusal(folder.name, before.edited, _disk_files(folder), files, node=folder.name))
    if before.clean:
        return Staged(folder, None, before)
    output_root.mkdir(parents=True, exist_ok=True)
    staging = output_root / f"{STAGING_PREFIX}{folder.name}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    disk = _disk_files(folder)
    unchanged = set(files) - set(before.stale) - set(before.missing)
    keep = [rel for rel in disk if is_unmanaged(rel)]
    folders: set[str] = set()
    for rel in [*files, *keep]:
        parent = os.path.dirname(rel)
        while parent and parent not in folders:
            folders.add(parent)
            parent = os.path.dirname(parent)
    for sub in sorted(folders):  # a folder sorts before everything inside it
        os.mkdir(staging / sub)
    for rel, text in files.items():
        if rel in unchanged:
            _link_or_copy(disk[rel], staging / rel)
        else:
            _write_file(staging / rel, text, mode_for(rel))
    for rel in keep:
        _link_or_copy(disk[rel], staging / rel)
    return Staged(folder, staging, before)


STAGING_THREADS = 4  # file creation is latency-bound: a few threads overlap the waits


def stage_folders(
    folders: Mapping[Path, Files] | Iterable[tuple[Path, Files]], *, force: bool = False
) -> list[tuple[Path, Staged | OutputError]]:
    """stage_folder for many folders at once (concurrently), in the given order, errors as values.

    folders may be an iterator that is still rendering: each folder is staged as soon as it
    arrives, so disk waits overlap the rendering. Should the iterator fail, the staging folders
    already built are removed (output/ itself too, if this call created it and it is left empty)
    and the error is raised: nothing outside staging has been touched.
    """

    def one(item: tuple[Path, Files]) -> Staged | OutputError:
        try:
            return stage_folder(item[0], item[1], force=force)
        except OutputError as exc:
            return exc

    items = folders.items() if isinstance(folders, Mapping) else folders
    if isinstance(folders, Mapping) and len(folders) <= 1:
        return [(folder, one((folder, files))) for folder, files in items]
    order: list[Path] = []
    slots: list[_Slot[Staged | OutputError]] = []
    roots: dict[Path, bool] = {}
    with _Threads(STAGING_THREADS) as pool:
        try:
            for folder, files in items:
                roots.setdefault(folder.parent, folder.parent.exists())
                order.append(folder)
                slots.append(pool.submit(one, (folder, files)))
        except BaseException:
            pool.join()
            for slot in slots:
                staged = slot.value
                if isinstance(staged, Staged) and staged.staging is not None:
                    shutil.rmtree(staged.staging, ignore_errors=True)
            for root, existed in roots.items():
                if not existed:
                    with contextlib.suppress(OSError):
                        root.rmdir()
            raise
    return list(zip(order, (slot.result() for slot in slots), strict=True))


_T = TypeVar("_T")
_A = TypeVar("_A")


class _Slot(Generic[_T]):
    """The outcome of one call run by _Threads: its value, or the exception it raised."""

    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: _T | None = None
        self.error: BaseException | None = None

    def result(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set by the worker before join() returns


class _Threads:
    """A few worker threads running calls as they are submitted; leaving the block waits for all.

    What stage_folders needs of concurrent.futures, without importing it (with logging, ~4 ms
    of every render's start).
    """

    def __init__(self, count: int) -> None:
        import queue
        import threading

        self._jobs: queue.SimpleQueue[tuple[_Slot[Any], Callable[[Any], Any], Any] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(count)]
        self._joined = False
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            slot, func, arg = job
            try:
                slot.value = func(arg)
            except BaseException as exc:  # handed to whoever reads the slot, as a Future would
                slot.error = exc

    def submit(self, func: Callable[[_A], _T], arg: _A) -> _Slot[_T]:
        slot: _Slot[_T] = _Slot()
        self._jobs.put((slot, func, arg))
        return slot

    def join(self) -> None:
        """Run what was submitted to the end, then stop the threads."""
        if self._joined:
            return
        self._joined = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> _Threads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()


def commit_staged(staged: list[Staged]) -> None:
    """Make every staged tree durable with one filesystem flush, then swap each in atomically."""
    pending = [s for s in staged if s.staging is not None]
    if not pending:
        return
    _sync_filesystem(pending[0].folder.parent)
    for item in pending:
        assert item.staging is not None
        _swap_in(item.staging, item.folder)
    _fsync_dir(pending[0].folder.parent)


def write_folder(folder: Path, files: Files, *, force: bool = False) -> Comparison:
    """Make folder hold exactly files (plus unmanaged files it already had), atomically."""
    staged = stage_folder(folder, files, force=force)
    commit_staged([staged])
    return staged.before


def _sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding path (syncfs where the system has it, else sync)."""
    libc = _libc()
    func = getattr(libc, "syncfs", None) if libc is not None else None
    if func is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if func(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(staging, folder)
        return
    if _exchange(staging, folder):
        shutil.rmtree(staging)
        return
    old = staging.with_name(staging.name + "-old")
    os.rename(folder, old)
    os.rename(staging, folder)
    shutil.rmtree(old)


def check_root_files(output_root: Path, files: Files, *, force: bool = False) -> Comparison:
    """What writing the fleet-wide files would change; OutputError when that would clobber a hand edit."""
    _guard(output_root, output_root.parent)
    before = compare(output_root, files, "output", recurse=False)
    if before.edited and not force:
        from nodegen.handedits import refusal

        raise OutputError(refusal("output", before.edited, _disk_files(output_root, recurse=False), files,
                                  node="--all"))
    return before


def write_root_files(output_root: Path, files: Files, *, force: bool = False) -> Comparison:
    """Fleet-wide files directly in output/: each replaced atomically (temp file + rename)."""
    before = check_root_files(output_root, files, force=force)
    output_root.mkdir(parents=True, exist_ok=True)
    recorded = parse_sum(_read(output_root / SUM_FILE) or "") if (output_root / SUM_FILE).exists() else {}
    ordered = sorted(files, key=lambda r: r == SUM_FILE)  # the checksum file goes last
    for rel in ordered:
        if rel in before.stale or rel in before.missing:
            tmp = output_root / f".{rel}.nodegen-tmp"
            tmp.unlink(missing_ok=True)
            _write_file(tmp, files[rel], mode_for(rel))
            os.replace(tmp, output_root / rel)
    for rel in before.extra:
        if rel in recorded or rel.endswith(".nodegen-tmp"):
            (output_root / rel).unlink(missing_ok=True)
    return before


def discard_staged(staged: list[Staged]) -> None:
    """Remove staging folders that will not be swapped in (a render that stopped writes nothing)."""
    for item in staged:
        if item.staging is not None:
            shutil.rmtree(item.staging, ignore_errors=True)


def os_error(exc: OSError) -> OutputError:
    """An I/O failure as a one-line error naming the path (a read-only output/, a full disk)."""
    where = exc.filename if exc.filename is not None else "output/"
    return OutputError(f"{where}: {exc.strerror or exc}; nothing written" if exc.strerror else f"{where}: {exc}")


def removable(folder: Path, *, force: bool = False) -> None:
    """OutputError unless the folder of a node that no longer exists may be removed."""
    _guard(folder, folder.parent)
    recorded = parse_sum(_read(folder / SUM_FILE) or "")
    if not recorded:
        raise OutputError(f"{folder}: has no {SUM_FILE}; not removing a folder nodegen did not write")
    cmp = compare(folder, {}, folder.name)
    # The checksum file does not list itself; .env and certificates are the operator's, never ours to drop.
    kept = [r for r in cmp.edited if r != SUM_FILE] + [r for r in _disk_files(folder) if is_unmanaged(r)]
    if kept and not force:
        raise OutputError("edited by hand or not written by nodegen (use --force to remove): "
                          + ", ".join(f"{folder.name}/{r}" for r in sorted(kept)))


def remove_folder(folder: Path, *, force: bool = False) -> None:
    """Remove an output folder nodegen generated for a node that no longer exists."""
    removable(folder, force=force)
    shutil.rmtree(folder)

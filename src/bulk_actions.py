"""The logic of the bulk data actions (load-keys, dump-keys), free of Juju.

Both stop Hockeypuck (its tools lock the prefix tree and fail with `resource temporarily
unavailable` while the daemon runs), run one of the snap's tools and start Hockeypuck again
whatever happened. They return the dict that becomes the Juju action's results (keys:
lower-case letters, digits, hyphens; values: strings) or raise `ActionFailedError`.

Paths: the confined snap reads and writes only its own directories, so keydumps must be under
its common directory, /var/snap/hockeypuck/common. Operators name paths as the unit sees them
(absolute, or relative to the common directory); they are checked on `common_dir`, the host
path of that directory (the machine's root may be elsewhere in tests), after resolving symlinks
and `..`, and handed to the tools as the snap sees them.

What the 2.3.3 tools do (../shared/reference/hockeypuck-2.3.3/tools.md, and their source):

- `hockeypuck-load FILE|GLOB...` inserts the keys into the database and their digests into the
  prefix tree (it subscribes the recon peer to the store's key changes), so nothing needs a
  rebuild after it; it logs, per file at INFO level, `found N keys in "F"` and `inserted N,
  updated M keys from "F"`, duplicates at ERROR level; an unreadable file is only logged (exit
  0). Here it runs once per file, so that the action log shows the progress and a failure names
  the file it stopped at.
- `hockeypuck-dump -path DIR -count N` writes `hkp-dump-NNNN.pgp` files (binary keyrings) into
  DIR, which it never creates, and logs nothing at INFO level. It exports the keys listed in
  the prefix tree, not the `keys` table: a stale tree silently drops keys from the dump, so the
  dumped count is compared with the database's.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar

from key_actions import ActionFailedError, ActionResults
from snap_layout import SNAP_COMMON

__all__ = [
    "DEFAULT_KEYS_PER_FILE",
    "ActionFailedError",
    "LoadCounts",
    "count_public_keys",
    "dump_keys",
    "load_keys",
    "parse_load_output",
]

logger = logging.getLogger(__name__)

DEFAULT_KEYS_PER_FILE = 15000
DUMP_FILE_PATTERN = "hkp-dump-*.pgp"
DUMP_PARENT = SNAP_COMMON / "dump"
PROGRESS_INTERVAL = 60.0  # seconds between progress lines while the dump tool runs
MAX_PATH_BYTES = 4095  # Linux's PATH_MAX, less the terminating NUL
MAX_NAME_BYTES = 255  # NAME_MAX: one component of a path
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GO_GLOB_META = re.compile(r"([*?\[\\])")
_GLOB_MAGIC = re.compile(r"[*?\[]")
_T = TypeVar("_T")


def _no_log(message: str) -> None:
    """Drop a progress message (the default when the caller has no action log)."""


def _where_to_put_files(unit: str) -> str:
    """How to get keydump files to where the snap can read them (juju scp runs as `ubuntu`)."""
    target = SNAP_COMMON / "import"
    return (
        f"copy the files under {SNAP_COMMON}, the only place the confined hockeypuck snap "
        f"can read, for example: `juju scp dump/*.pgp {unit}:/tmp/` then "
        f"`juju ssh {unit} -- 'sudo mkdir -p {target} && sudo mv /tmp/*.pgp {target}/'`, "
        f"and run the action with path={target}/*.pgp"
    )


# --- paths -------------------------------------------------------------------------------------


def _unit_path(text: str, what: str) -> PurePosixPath:
    """The operator's path as the unit sees it: absolute, or relative to the common dir."""
    if not text.strip():
        raise ActionFailedError(f"the {what} is empty")
    if _CONTROL.search(text):
        raise ActionFailedError(f"the {what} contains control characters")
    try:
        encoded = os.fsencode(text.strip())
    except UnicodeEncodeError:
        raise ActionFailedError(f"the {what} is not valid UTF-8 text") from None
    if len(encoded) > MAX_PATH_BYTES or any(
        len(name) > MAX_NAME_BYTES for name in encoded.split(b"/")
    ):
        raise ActionFailedError(
            f"the {what} is longer than the file system allows ({MAX_PATH_BYTES} bytes, "
            f"{MAX_NAME_BYTES} for each name in it)"
        )
    path = PurePosixPath(text.strip())
    return path if path.is_absolute() else SNAP_COMMON / path


@contextmanager
def _path_errors(text: str) -> Iterator[None]:
    """Turn what the file system says about an operator's path into a failure message.

    ENAMETOOLONG, ELOOP and the like are OSError; Python 3.11's `Path.resolve` reports a
    symlink loop as RuntimeError.
    """
    try:
        yield
    except (OSError, RuntimeError) as error:
        raise ActionFailedError(
            f"cannot use the path {text.strip()[:200]!r}: {_first_line(error)}; nothing was done"
        ) from error


def _lexically_inside(path: PurePosixPath) -> bool:
    normal = PurePosixPath(posixpath.normpath(str(path)))
    return normal.is_relative_to(SNAP_COMMON)


def _machine_root(common_dir: Path) -> Path:
    """The machine's root for `common_dir`, the host path of /var/snap/hockeypuck/common."""
    return common_dir.parents[len(SNAP_COMMON.parts) - 2]


def _on_host(path: PurePosixPath, common_dir: Path) -> Path:
    return _machine_root(common_dir) / path.relative_to("/")


def _snap_view(resolved: Path, common_real: Path) -> PurePosixPath:
    """The path the snap sees for a resolved host path under the common directory."""
    return SNAP_COMMON / resolved.relative_to(common_real).as_posix()


def go_glob_quote(path: str) -> str:
    """Quote a file name for hockeypuck-load, which expands its arguments with Go's Glob."""
    return _GO_GLOB_META.sub(r"\\\1", path)


@dataclass(frozen=True)
class _KeydumpFile:
    host: Path  # resolved
    snap: PurePosixPath  # as the tool sees it

    @property
    def name(self) -> str:
        return self.snap.name


def _keydump_files(text: str, common_dir: Path, unit: str) -> list[_KeydumpFile]:
    """The files a path or glob names, each checked to resolve under the common directory.

    A directory stands for the `*.pgp` files in it.

    Raises:
        ActionFailedError: a path outside the common directory, or no file.
    """
    unit_path = _unit_path(text, "path")
    if not _lexically_inside(unit_path):
        raise ActionFailedError(
            f"{text.strip()} is outside {SNAP_COMMON}: {_where_to_put_files(unit)}"
        )
    common_real = common_dir.resolve()
    host = _on_host(unit_path, common_dir)
    relative = str(unit_path.relative_to("/"))
    if _GLOB_MAGIC.search(relative):
        matches = glob.glob(os.path.join(glob.escape(str(_machine_root(common_dir))), relative))
    elif host.is_dir():
        matches = glob.glob(os.path.join(glob.escape(str(host)), "*.pgp"))
    elif host.exists() or host.is_symlink():
        matches = [str(host)]
    else:
        raise ActionFailedError(f"{unit_path} does not exist: {_where_to_put_files(unit)}")

    files: dict[Path, _KeydumpFile] = {}
    for match in sorted(matches):
        try:
            resolved = Path(match).resolve(strict=True)
        except (OSError, RuntimeError) as error:
            raise ActionFailedError(f"cannot resolve {match}: {error}") from error
        shown = _snap_path_for_message(Path(match), common_dir)
        if not resolved.is_relative_to(common_real):
            raise ActionFailedError(
                f"{shown} resolves to {resolved}, outside {SNAP_COMMON}: "
                + _where_to_put_files(unit)
            )
        if resolved.is_file() and resolved not in files:
            files[resolved] = _KeydumpFile(resolved, _snap_view(resolved, common_real))
    if not files:
        raise ActionFailedError(
            f"no keydump file matches {unit_path}"
            + (" (a directory stands for the *.pgp files in it)" if host.is_dir() else "")
            + "; nothing was done"
        )
    return list(files.values())


def _snap_path_for_message(host: Path, common_dir: Path) -> str:
    root = _machine_root(common_dir)
    try:
        return "/" + host.relative_to(root).as_posix()
    except ValueError:
        return str(host)


def _dump_directory(
    text: str, common_dir: Path, now: Callable[[], datetime]
) -> tuple[Path, PurePosixPath]:
    """The dump's target directory (resolved host path, snap view), checked, not yet created.

    Raises:
        ActionFailedError: outside the common directory, the common directory itself, not a
            directory, or not empty.
    """
    if text.strip():
        unit_path = _unit_path(text, "path")
    else:
        unit_path = DUMP_PARENT / f"{now().astimezone(UTC):%Y%m%dT%H%M%SZ}"
    outside = (
        f"{unit_path} is outside {SNAP_COMMON}, the only place the confined hockeypuck snap "
        f"can write: dump under it (for example {DUMP_PARENT}/<name>), then copy the files "
        f"off the unit with `juju scp`"
    )
    if not _lexically_inside(unit_path):
        raise ActionFailedError(outside)
    common_real = common_dir.resolve()
    resolved = _on_host(unit_path, common_dir).resolve()
    if not resolved.is_relative_to(common_real):
        raise ActionFailedError(f"{outside} (it resolves to {resolved})")
    if resolved == common_real:
        raise ActionFailedError(
            f"{unit_path} is the snap's common directory itself: name a new directory under "
            f"it, for example {DUMP_PARENT}/<name>"
        )
    snap = _snap_view(resolved, common_real)
    if resolved.exists():
        if not resolved.is_dir():
            raise ActionFailedError(f"{snap} exists and is not a directory")
        if any(resolved.iterdir()):
            raise ActionFailedError(
                f"{snap} is not empty: hockeypuck-dump overwrites its files and would mix two "
                "dumps; name a new (or empty) directory"
            )
    return resolved, snap


MAX_KEYS_PER_FILE = 10_000_000


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_KEYS_PER_FILE:
        raise ActionFailedError(
            f"{what} must be a positive integer up to {MAX_KEYS_PER_FILE}, not {value!r:.40}"
        )
    return value


# --- the load tool's output --------------------------------------------------------------------

_FOUND = re.compile(r"found (\d+) keys in ")
_INSERTED = re.compile(r"inserted (\d+), updated (\d+) keys from ")
_INSERT_FAILED = re.compile(r"some keys failed to insert from .*?(\d+) duplicates?, (\d+) errors?")
_INVALID = re.compile(r"validation error, ignoring")
_FILE_ERROR = re.compile(r"(error reading key|failed to open|failed to match)")
_PROCESSING = re.compile(r"processing file ")
_MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


@dataclass
class LoadCounts:
    """What hockeypuck-load reported (counts are only known when INFO lines were logged)."""

    reported: bool = False  # INFO lines seen: the counts below are the tool's
    found: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    file_errors: list[str] = field(default_factory=list)

    def add(self, other: LoadCounts) -> None:
        """Add another file's counts to these."""
        self.reported = self.reported or other.reported
        self.found += other.found
        self.inserted += other.inserted
        self.updated += other.updated
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.file_errors.extend(other.file_errors)


def parse_load_output(output: str) -> LoadCounts:
    """Read hockeypuck-load's log lines (logrus text format) into counts."""
    counts = LoadCounts()
    for line in output.splitlines():
        if _PROCESSING.search(line):
            counts.reported = True
        if found := _FOUND.search(line):
            counts.reported = True
            counts.found += int(found[1])
        elif inserted := _INSERTED.search(line):
            counts.reported = True
            counts.inserted += int(inserted[1])
            counts.updated += int(inserted[2])
        elif failed := _INSERT_FAILED.search(line):
            counts.duplicates += int(failed[1])
            counts.rejected += int(failed[2])
        elif _INVALID.search(line):
            counts.rejected += 1
        elif _FILE_ERROR.search(line):
            message = _MESSAGE.search(line)
            text = message[1].replace('\\"', '"') if message else line.strip()
            counts.file_errors.append(text[:300])
    return counts


# --- keydump files -----------------------------------------------------------------------------

PUBLIC_KEY_TAG = 6


def count_public_keys(path: Path) -> int:
    """How many keys (public-key packets) a binary OpenPGP keyring file holds.

    Raises:
        ValueError: the file is not a well-formed OpenPGP packet stream.
    """
    size = path.stat().st_size
    count = 0
    with path.open("rb") as file:
        while True:
            header = file.read(1)
            if not header:
                return count
            octet = header[0]
            if not octet & 0x80:
                raise ValueError(f"{path.name}: not an OpenPGP packet at byte {file.tell() - 1}")
            if octet & 0x40:  # new format
                tag = octet & 0x3F
                length, partial = _new_format_length(file)
                while partial:
                    _skip(file, length, size, path)
                    length, partial = _new_format_length(file)
            else:
                tag = (octet >> 2) & 0x0F
                length_type = octet & 0x03
                if length_type == 3:  # indeterminate: the packet runs to the end of the file
                    return count + (tag == PUBLIC_KEY_TAG)
                length = int.from_bytes(_read(file, 1 << length_type, path), "big")
            _skip(file, length, size, path)
            count += tag == PUBLIC_KEY_TAG


def _read(file: BinaryIO, size: int, path: Path) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError(f"{path.name}: truncated packet header")
    return data


def _new_format_length(file: BinaryIO) -> tuple[int, bool]:
    """A new-format body length: (length, whether it is a partial length)."""
    first = file.read(1)
    if not first:
        raise ValueError("truncated packet length")
    octet = first[0]
    if octet < 192:
        return octet, False
    if octet < 224:
        second = file.read(1)
        if not second:
            raise ValueError("truncated packet length")
        return ((octet - 192) << 8) + second[0] + 192, False
    if octet == 255:
        four = file.read(4)
        if len(four) != 4:
            raise ValueError("truncated packet length")
        return int.from_bytes(four, "big"), False
    return 1 << (octet & 0x1F), True


def _skip(file: BinaryIO, length: int, size: int, path: Path) -> None:
    if file.tell() + length > size:
        raise ValueError(f"{path.name}: truncated packet")
    file.seek(length, os.SEEK_CUR)


# --- shared steps ------------------------------------------------------------------------------


def _count(count_keys: Callable[[], int] | None, when: str) -> int | None:
    if count_keys is None:
        return None
    try:
        return count_keys()
    except Exception:
        logger.exception("could not count the keys in the database %s", when)
        return None


def _stop(
    stop_service: Callable[[], None],
    start_service: Callable[[], None],
    log: Callable[[str], None],
) -> None:
    """Stop Hockeypuck; if that fails, try to start it again and fail the action."""
    log("stopping Hockeypuck (its tools lock the prefix tree)")
    try:
        stop_service()
    except Exception as error:
        try:
            start_service()
        except Exception:
            logger.exception("could not start Hockeypuck after a failed stop")
        raise ActionFailedError(
            f"could not stop Hockeypuck ({_first_line(error)}); nothing was done"
        ) from error


def _start(
    start_service: Callable[[], None], failure: str | None, log: Callable[[str], None]
) -> None:
    """Start Hockeypuck again; a failure to start is added to any earlier failure."""
    log("restoring Hockeypuck's service")
    try:
        start_service()
    except Exception as error:
        started = f"could not start Hockeypuck again: {_first_line(error)}"
        raise ActionFailedError(f"{failure}; {started}" if failure else started) from error


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first[:300]


# --- load-keys ---------------------------------------------------------------------------------


def load_keys(
    path: str,
    *,
    common_dir: Path,
    stop_service: Callable[[], None],
    start_service: Callable[[], None],
    run_load: Callable[[str], str],
    count_keys: Callable[[], int] | None = None,
    log: Callable[[str], None] = _no_log,
    clock: Callable[[], float] = time.monotonic,
    other_units: int = 0,
    unit: str = "hockeypuck/0",
) -> ActionResults:
    """The load-keys action: check the files, stop, load each file, start.

    `run_load` runs the snap's load tool on one argument (a path as the snap sees it, quoted
    for Go's Glob) and returns its output; it raises when the tool exits non-zero. The load
    tool keeps the prefix tree up to date itself, so nothing is rebuilt afterwards. `unit` (this
    unit's name) goes into the instructions of a refusal. The service
    is started again whatever happened. Loading the same files again is harmless: stored keys
    are skipped as duplicates.

    Raises:
        ActionFailedError: a path refused or no file (nothing was stopped); the service could
            not be stopped; the tool failed on a file (the files before it are loaded) or
            could not read some files; the service could not be started.
    """
    with _path_errors(path):
        files = _keydump_files(path, common_dir, unit)
        total_bytes = sum(file.host.stat().st_size for file in files)
    log(
        f"{len(files)} keydump file(s), {total_bytes / 1e6:.1f} MB; a load takes hours for "
        "millions of keys (tens of thousands a minute)"
    )
    before = _count(count_keys, "before the load")
    began = clock()
    _stop(stop_service, start_service, log)

    counts = LoadCounts()
    loaded = 0
    failure: str | None = None
    unreadable: list[str] = []
    current = files[0]
    try:
        for number, file in enumerate(files, start=1):
            current = file
            log(f"loading file {number} of {len(files)}: {file.snap}")
            output = run_load(go_glob_quote(str(file.snap)))
            found = parse_load_output(output)
            counts.add(found)
            if found.file_errors:
                unreadable.append(f"{file.name}: {found.file_errors[0]}")
            else:
                loaded += 1
            log(_file_progress(file, found, counts, clock() - began))
    except Exception as error:
        failure = (
            f"the load failed on {current.snap} "
            f"({_first_line(error)}); {loaded} of {len(files)} file(s) were loaded before it"
        )
    finally:
        _start(start_service, failure, log)

    after = _count(count_keys, "after the load")
    results = _load_results(
        files, loaded, counts, before=before, after=after, duration=clock() - began
    )
    if other_units > 0:
        results["note"] = (
            "the keys are in the shared database, but only this unit's prefix tree lists them: "
            "run rebuild-prefix-tree on each other unit, one at a time"
        )
    if failure is not None:
        raise ActionFailedError(
            f"{failure}; Hockeypuck was started again. Loading the same files again is safe "
            "(stored keys are skipped as duplicates)",
            results,
        )
    if unreadable:
        raise ActionFailedError(
            f"{len(unreadable)} of {len(files)} file(s) could not be read ("
            + "; ".join(unreadable[:3])
            + ("; ..." if len(unreadable) > 3 else "")
            + f"); the other {loaded} were loaded; Hockeypuck was started again",
            results,
        )
    log(f"loaded {len(files)} file(s) in {_minutes(clock() - began)}")
    return results


def _file_progress(
    file: _KeydumpFile, found: LoadCounts, total: LoadCounts, elapsed: float
) -> str:
    if found.file_errors:
        return f"{file.name}: could not be read: {found.file_errors[0]}"
    if not found.reported:
        return f"{file.name}: done ({_minutes(elapsed)} so far)"
    return (
        f"{file.name}: {found.found} keys, {found.inserted} inserted, {found.updated} updated, "
        f"{found.duplicates} already stored; {total.inserted} inserted in {_minutes(elapsed)} "
        "so far"
    )


def _load_results(
    files: list[_KeydumpFile],
    loaded: int,
    counts: LoadCounts,
    *,
    before: int | None,
    after: int | None,
    duration: float,
) -> ActionResults:
    results: ActionResults = {
        "result": "loaded" if loaded == len(files) else "partly loaded",
        "files": str(len(files)),
        "files-loaded": str(loaded),
        "duration-seconds": f"{duration:.1f}",
    }
    if counts.reported:
        results.update(
            {
                "keys-found": str(counts.found),
                "keys-inserted": str(counts.inserted),
                "keys-updated": str(counts.updated),
                "keys-already-stored": str(counts.duplicates),
                "keys-rejected": str(counts.rejected),
                "counted-by": "the load tool",
            }
        )
    elif before is not None and after is not None:
        results.update(
            {
                "keys-inserted": str(after - before),
                "counted-by": "database key count before and after (Hockeypuck's log level "
                "hides the load tool's counts)",
            }
        )
    else:
        results["keys-inserted"] = "unknown"
    results["key-count"] = str(after) if after is not None else "unknown"
    return results


# --- dump-keys ---------------------------------------------------------------------------------


def dump_keys(
    path: str,
    keys_per_file: object = DEFAULT_KEYS_PER_FILE,
    *,
    common_dir: Path,
    stop_service: Callable[[], None],
    start_service: Callable[[], None],
    run_dump: Callable[[str, int], str],
    count_keys: Callable[[], int] | None = None,
    log: Callable[[str], None] = _no_log,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress_interval: float = PROGRESS_INTERVAL,
) -> ActionResults:
    """The dump-keys action: check the target directory, create it, stop, dump, start.

    `run_dump(directory, keys_per_file)` runs the snap's dump tool with the directory as the
    snap sees it. An empty `path` means a new directory under /var/snap/hockeypuck/common/dump
    named after the time (as the snap's dump wrapper does). The service is started again
    whatever happened; after a failure the partial dump is removed.

    Raises:
        ActionFailedError: a path refused or a bad number (nothing was stopped); the service
            could not be stopped; the dump failed; the service could not be started.
    """
    count = _positive_int(keys_per_file, "keys-per-file")
    with _path_errors(path):
        target, snap = _dump_directory(path, common_dir, now)
        created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ActionFailedError(f"cannot create {snap}: {error}") from error
    began = clock()
    try:
        _stop(stop_service, start_service, log)
    except ActionFailedError:
        _remove_dump(target, created)
        raise

    failure: str | None = None
    try:
        log(f"dumping the keys listed in the prefix tree to {snap}, {count} keys a file")
        _watched(
            lambda: run_dump(str(snap), count),
            _dump_progress(target, log, clock, began),
            progress_interval,
        )
    except Exception as error:
        failure = f"the dump failed ({_first_line(error)})"
        failure += "; " + _remove_dump(target, created)
    finally:
        _start(start_service, failure, log)
    if failure is not None:
        raise ActionFailedError(failure + "; Hockeypuck was started again")

    files = sorted(target.glob(DUMP_FILE_PATTERN))
    log(f"counting the keys in {len(files)} file(s)")
    results: ActionResults = {
        "result": "dumped",
        "path": str(snap),
        "files": str(len(files)),
        "bytes": str(sum(file.stat().st_size for file in files)),
        "keys-per-file": str(count),
    }
    dumped: int | None = 0
    for file in files:
        try:
            dumped = (dumped or 0) + count_public_keys(file)
        except (OSError, ValueError) as error:
            logger.warning("cannot count the keys in %s: %s", file, error)
            dumped = None
            break
    results["key-count"] = str(dumped) if dumped is not None else "unknown"
    stored = _count(count_keys, "after the dump")
    if stored is not None:
        results["database-key-count"] = str(stored)
        if dumped is not None and dumped != stored:
            results["warning"] = (
                f"the dump holds {dumped} keys but the database {stored}: hockeypuck-dump "
                "exports the keys listed in this unit's prefix tree, which is out of date; run "
                "rebuild-prefix-tree, then dump again"
            )
    results["duration-seconds"] = f"{clock() - began:.1f}"
    log(f"dumped {results['key-count']} keys into {len(files)} file(s) in {snap}")
    return results


def _dump_progress(
    target: Path, log: Callable[[str], None], clock: Callable[[], float], began: float
) -> Callable[[], None]:
    seen = 0

    def report() -> None:
        nonlocal seen
        files = sorted(target.glob(DUMP_FILE_PATTERN))
        if len(files) != seen:
            seen = len(files)
            log(f"{seen} file(s) written so far ({files[-1].name}), {_minutes(clock() - began)}")

    return report


def _watched(run: Callable[[], _T], watch: Callable[[], None], interval: float) -> _T:
    """Run `run` in a thread, calling `watch` here every `interval` seconds until it is done."""
    values: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            values.append(run())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="hockeypuck-tool", daemon=True)
    thread.start()
    while True:
        thread.join(interval)
        if not thread.is_alive():
            break
        try:
            watch()
        except Exception:
            logger.exception("progress report failed")
    if errors:
        raise errors[0]
    return values[0]


def _remove_dump(target: Path, created: bool) -> str:
    """Remove a partial dump (and the directory if this action made it); say what happened."""
    try:
        for file in target.glob(DUMP_FILE_PATTERN):
            file.unlink()
        if created:
            target.rmdir()
    except OSError as error:
        return f"the partial dump could not be removed ({error})"
    return "the partial dump was removed"

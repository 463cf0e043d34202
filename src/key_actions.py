"""The logic of the key actions, free of Juju: plain functions over explicit dependencies.

Each function takes the block-list store, the HKP client and the signer it needs, and returns
the dict that becomes the Juju action's results (keys: lower-case letters, digits, hyphens;
values: strings or nested dicts). A failure raises `ActionFailedError` (message plus whatever
results are worth showing) or `ServiceNotReadyError` (Hockeypuck does not answer) before
anything was changed, or after undoing what could not be completed.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from admin_key import GpgError
from blocklist import BlockedKey, BlocklistError
from hkp_client import (
    AddResult,
    HkpError,
    IndexEntry,
    KeyNotFoundError,
    ServiceNotReadyError,
    delete_keytext,
)
from state import normalise_fingerprint

__all__ = [
    "ActionFailedError",
    "ActionResults",
    "BlocklistError",
    "BlocklistStore",
    "KeyServer",
    "ServiceNotReadyError",
    "Signer",
    "block_keys",
    "list_blocked_keys",
    "lookup_key",
    "parse_fingerprints",
    "rebuild_prefix_tree",
    "unblock_keys",
]

logger = logging.getLogger(__name__)

ActionResults = dict[str, Any]

# Per-fingerprint outcomes of block-keys and unblock-keys.
BLOCKED_DELETED = "blocked+deleted"
BLOCKED_NOT_STORED = "blocked, was not stored"
ALREADY_BLOCKED = "already blocked"
ALREADY_BLOCKED_DELETED = "already blocked, deleted now"
UNBLOCKED = "unblocked"
NOT_BLOCKED = "was not blocked"
NO_KEY_FOUND = "no key found"

MAX_COMMENT_LENGTH = 4096
MAX_KEYWORD_LENGTH = 256
_HEX = re.compile(r"[0-9A-Fa-f]+")
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What Juju accepts as an action result key (each level of a nested result).
RESULT_KEY = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


class ActionFailedError(Exception):
    """The action failed: `message` says why, `results` what is worth showing anyway."""

    def __init__(self, message: str, results: ActionResults | None = None):
        super().__init__(message)
        self.message = message
        self.results: ActionResults = results or {}


class BlocklistStore(Protocol):
    """The block list (see `blocklist.PostgresBlocklist`); fingerprints lower case."""

    def block(self, fingerprints: Iterable[str], comment: str) -> list[str]:
        """Add entries; return those that were not there before."""
        ...

    def unblock(self, fingerprints: Iterable[str]) -> list[str]:
        """Remove entries; return those that were there."""
        ...

    def list(self) -> list[BlockedKey]:
        """All entries, ordered by fingerprint."""
        ...

    def purge(self, fingerprints: Iterable[str]) -> list[str]:
        """Delete these keys from the database directly; returns those that were stored."""
        ...

    def stored(self, fingerprints: Iterable[str]) -> set[str]:
        """Which of these keys Hockeypuck's database holds."""
        ...


class KeyServer(Protocol):
    """Hockeypuck over HKP (see `hkp_client.HkpClient`)."""

    def health(self) -> None:
        """Raise ServiceNotReadyError unless healthy."""
        ...

    def add_key(self, armored_key: str) -> AddResult:
        """Upload a key."""
        ...

    def index(self, search: str) -> list[IndexEntry]:
        """Keys matching a search; empty when none."""
        ...

    def get_key(self, search: str) -> str:
        """The armored key; KeyNotFoundError when none."""
        ...

    def delete_key(self, keytext: str, signature: str) -> None:
        """A signed /pks/delete."""
        ...


class Signer(Protocol):
    """The charm's admin key (see `admin_key.AdminKeySigner`)."""

    @property
    def fingerprint(self) -> str:
        """Its fingerprint (hex, any case)."""
        ...

    @property
    def public_key(self) -> str:
        """Its armored public key."""
        ...

    def sign(self, data: str) -> str:
        """An armored detached signature over `data`."""
        ...


@dataclass(frozen=True)
class ParsedFingerprints:
    """An operator's fingerprint list: valid ones (lower case, first occurrence order)."""

    valid: tuple[str, ...]
    invalid: tuple[tuple[int, str], ...]  # (1-based position in the list, why)

    def invalid_results(self) -> dict[str, str]:
        """The `invalid` part of the results: `item-<position>` -> `invalid: <why>`."""
        return {f"item-{position}": f"invalid: {why}" for position, why in self.invalid}


def parse_fingerprints(text: str) -> ParsedFingerprints:
    """Parse a comma-separated list of fingerprints.

    Spaces anywhere are ignored (so gpg's grouped form works), as are `0x` prefixes, case and
    duplicates. Each item is checked with `state.normalise_fingerprint`.

    Raises:
        ActionFailedError: the list is empty.
    """
    items = [_WHITESPACE.sub("", item) for item in text.split(",")]
    if not any(items):
        raise ActionFailedError("no fingerprint given: `fingerprints` is empty")
    valid: dict[str, None] = {}
    invalid: list[tuple[int, str]] = []
    position = 0
    for item in items:
        if not item:
            continue  # "a,,b" or a trailing comma
        position += 1
        try:
            valid[normalise_fingerprint(item).lower()] = None
        except ValueError as error:
            invalid.append((position, str(error)))
    return ParsedFingerprints(tuple(valid), tuple(invalid))


def _comment(text: str) -> str:
    comment = text.strip()
    if not comment:
        raise ActionFailedError("a comment is required: say why the keys are blocked")
    if "\x00" in comment:
        raise ActionFailedError("the comment contains a NUL character")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise ActionFailedError(f"the comment is longer than {MAX_COMMENT_LENGTH} characters")
    return comment


def block_keys(
    fingerprints: str,
    comment: str,
    *,
    store: BlocklistStore,
    keyserver: KeyServer,
    signer: Signer | None,
    apply_blocklist: Callable[[], None] | None = None,
) -> ActionResults:
    """The block-keys action: block list, signed deletes, the new `blacklist`, then a purge.

    Every valid fingerprint is added to the block list, stored or not. Hockeypuck reads a
    signed delete's key through its `blacklist` (and `maxKeyLength`): a key already in the
    running daemon's `blacklist` is silently not deleted. So the stored keys are deleted
    with the charm's admin key *before* `apply_blocklist` renders the new `blacklist` and
    restarts Hockeypuck (which keeps this unit's prefix tree right), and after it every
    blocked key still stored (one that Hockeypuck could not delete, or that recon brought
    back in between) is purged from the database directly.

    Raises:
        ActionFailedError: bad input, or the new block list could not be applied (the keys
            are deleted and listed all the same; the unit applies the list on its next hook).
        ServiceNotReadyError: Hockeypuck does not answer (nothing was changed).
        BlocklistError: the database is unreachable.
    """
    parsed = parse_fingerprints(fingerprints)
    reason = _comment(comment)
    valid = list(parsed.valid)
    invalid = parsed.invalid_results()
    if signer is not None and signer.fingerprint.lower() in valid:
        valid.remove(signer.fingerprint.lower())
        invalid["admin-key"] = (
            f"invalid: {signer.fingerprint.lower()} is the charm's own admin key: blocking it "
            "would make every signed delete fail"
        )
    if not valid:
        raise ActionFailedError("no valid fingerprint to block", {"invalid": invalid})

    stored = store.stored(valid)
    if stored and signer is not None:
        keyserver.health()
    added = store.block(valid, reason)
    if stored and signer is not None:
        _delete_all([fp for fp in valid if fp in stored], keyserver, signer)
    failure = None
    if added and apply_blocklist is not None:
        try:
            apply_blocklist()
        except Exception as error:
            failure = error
    # Whatever was stored is gone now, deleted by Hockeypuck or purged (by this call, or by
    # the reconcile that applied the list); a key that came back since is purged here.
    deleted = stored | set(store.purge(valid))
    outcome = {
        fingerprint: (
            (BLOCKED_DELETED if fingerprint in added else ALREADY_BLOCKED_DELETED)
            if fingerprint in deleted
            else (BLOCKED_NOT_STORED if fingerprint in added else ALREADY_BLOCKED)
        )
        for fingerprint in valid
    }
    results = _block_results(outcome, invalid)
    if failure is not None:
        raise ActionFailedError(
            f"the keys are blocked and deleted, but this unit could not apply the new block "
            f"list ({failure}); it tries again on its next hook",
            results,
        )
    return results


def _delete_all(to_delete: list[str], keyserver: KeyServer, signer: Signer) -> None:
    """Signed deletes through Hockeypuck, which keep its prefix tree right.

    Best effort: a key that Hockeypuck does not delete is purged from the database after.
    """
    try:
        upload = keyserver.add_key(signer.public_key)
    except (HkpError, GpgError) as error:
        logger.warning("could not upload the admin key, purging instead: %s", error)
        return
    if upload.refused:
        logger.warning("Hockeypuck refused the admin key (is it blocked?), purging instead")
        return
    for fingerprint in to_delete:
        try:
            if not _delete(fingerprint, keyserver, signer):
                logger.warning("Hockeypuck did not delete %s, purging it", fingerprint)
        except (HkpError, GpgError) as error:
            logger.warning("could not delete %s through Hockeypuck: %s", fingerprint, error)


def _delete(fingerprint: str, keyserver: KeyServer, signer: Signer) -> bool:
    """Signed delete of one key; whether it is gone afterwards.

    Hockeypuck answers 200 even when it deleted nothing (a key in its `blacklist`).
    """
    search = f"0x{fingerprint}"
    try:
        armored = keyserver.get_key(search)
    except KeyNotFoundError:
        return False
    keytext = delete_keytext(armored)
    keyserver.delete_key(keytext, signer.sign(keytext))
    try:
        keyserver.get_key(search)
    except KeyNotFoundError:
        logger.info("deleted key %s through Hockeypuck", fingerprint)
        return True
    return False


def _block_results(outcome: dict[str, str], invalid: dict[str, str]) -> ActionResults:
    counts = {
        status: sum(1 for value in outcome.values() if value == status)
        for status in (
            BLOCKED_DELETED,
            BLOCKED_NOT_STORED,
            ALREADY_BLOCKED,
            ALREADY_BLOCKED_DELETED,
        )
    }
    parts = [f"{count} {status}" for status, count in counts.items() if count]
    if invalid:
        parts.append(f"{len(invalid)} invalid")
    results: ActionResults = {"summary": "; ".join(parts), "keys": dict(outcome)}
    if invalid:
        results["invalid"] = dict(invalid)
    return results


def unblock_keys(
    fingerprints: str,
    *,
    store: BlocklistStore,
    apply_blocklist: Callable[[], None] | None = None,
) -> ActionResults:
    """The unblock-keys action: remove fingerprints from the block list.

    A key deleted when it was blocked stays deleted; it can be uploaded (or reconciled) again.

    Raises:
        ActionFailedError: no valid fingerprint.
        BlocklistError: the database is unreachable.
    """
    parsed = parse_fingerprints(fingerprints)
    invalid = parsed.invalid_results()
    if not parsed.valid:
        raise ActionFailedError("no valid fingerprint to unblock", {"invalid": invalid})
    removed = store.unblock(parsed.valid)
    if removed and apply_blocklist is not None:
        apply_blocklist()
    outcome = {
        fingerprint: (UNBLOCKED if fingerprint in removed else NOT_BLOCKED)
        for fingerprint in parsed.valid
    }
    parts = [f"{len(removed)} {UNBLOCKED}"]
    if len(removed) < len(parsed.valid):
        parts.append(f"{len(parsed.valid) - len(removed)} {NOT_BLOCKED}")
    if invalid:
        parts.append(f"{len(invalid)} invalid")
    results: ActionResults = {"summary": "; ".join(parts), "keys": outcome}
    if invalid:
        results["invalid"] = invalid
    return results


def list_blocked_keys(*, store: BlocklistStore) -> ActionResults:
    """The list-blocked-keys action.

    Raises:
        BlocklistError: the database is unreachable.
    """
    entries = store.list()
    results: ActionResults = {"count": str(len(entries))}
    if entries:
        keys: dict[str, Any] = {}
        for number, entry in enumerate(entries, start=1):
            listed = {
                "comment": entry.comment,
                "blocked-at": _iso(entry.blocked_at) if entry.blocked_at else "unknown",
            }
            key = result_key(entry.fingerprint.lower(), f"entry-{number}", keys)
            if key != entry.fingerprint.lower():
                listed["fingerprint"] = entry.fingerprint  # a row that is not a fingerprint
            keys[key] = listed
        results["keys"] = keys
    return results


def result_key(wanted: str, fallback: str, taken: Mapping[str, object]) -> str:
    """`wanted` if Juju accepts it as a result key and it is not taken yet, else `fallback`.

    Database rows and HKP answers are not checked by anyone before they get here: a row
    written by hand (`0xABC...`, spaces, any text) must not make the action fail.
    """
    if RESULT_KEY.fullmatch(wanted) and wanted not in taken:
        return wanted
    return fallback


@dataclass(frozen=True)
class _Search:
    text: str
    exact_fingerprint: str | None  # lower case, when the keyword is a full fingerprint


def _search(keyword: str) -> _Search:
    text = keyword.strip()
    if not text:
        raise ActionFailedError("the keyword is empty")
    if len(text) > MAX_KEYWORD_LENGTH:
        raise ActionFailedError(f"the keyword is longer than {MAX_KEYWORD_LENGTH} characters")
    if _CONTROL.search(text):
        raise ActionFailedError("the keyword contains control characters")
    compact = _WHITESPACE.sub("", text)
    prefixed = compact[:2] in ("0x", "0X")
    digits = compact[2:] if prefixed else compact
    if _HEX.fullmatch(digits):
        if len(digits) in (40, 64):
            fingerprint = normalise_fingerprint(digits)
            return _Search(f"0x{fingerprint}", fingerprint.lower())
        if len(digits) == 16:
            return _Search(f"0x{digits.upper()}", None)
        if prefixed and len(digits) == 8:
            raise ActionFailedError(
                "short (32-bit) key IDs are not searchable (they collide); "
                "use the 16-digit key ID, the fingerprint, an e-mail address or a name"
            )
    return _Search(text, None)


def lookup_key(keyword: str, *, keyserver: KeyServer) -> ActionResults:
    """The lookup-key action: search by fingerprint, key ID, e-mail address or text.

    Raises:
        ActionFailedError: bad keyword, or Hockeypuck failed (a 5xx: its database?).
        ServiceNotReadyError: Hockeypuck does not answer.
    """
    search = _search(keyword)
    keyserver.health()
    try:
        entries = keyserver.index(search.text)
    except ServiceNotReadyError:
        raise
    except HkpError as error:
        raise ActionFailedError(f"the search failed: {error}") from None
    if not entries:
        return {"result": NO_KEY_FOUND, "keyword": keyword.strip(), "count": "0"}
    keys: dict[str, Any] = {}
    for number, entry in enumerate(entries, start=1):
        match = _match(entry)
        fingerprint = entry.fingerprint.lower()
        if search.exact_fingerprint is not None and fingerprint == search.exact_fingerprint:
            try:
                match["armored-key"] = keyserver.get_key(f"0x{entry.fingerprint}")
            except KeyNotFoundError:
                pass  # deleted in between: the index entry is all there is
            except ServiceNotReadyError:
                raise
            except HkpError as error:
                raise ActionFailedError(f"the key could not be fetched: {error}") from None
        wanted = fingerprint or f"key-id-{entry.key_id.lower()}"
        keys[result_key(wanted, f"entry-{number}", keys)] = match
    count = len(keys)
    return {
        "result": f"{count} key{'s' if count != 1 else ''} found",
        "keyword": keyword.strip(),
        "count": str(count),
        "keys": keys,
    }


def _match(entry: IndexEntry) -> dict[str, Any]:
    match: dict[str, Any] = {
        "fingerprint": entry.fingerprint.lower(),
        "key-id": entry.key_id.lower(),
        "created": _iso(entry.created) if entry.created else "unknown",
        "expires": _iso(entry.expires) if entry.expires else "never",
        "revoked": "yes" if entry.revoked else "no",
    }
    if entry.algorithm is not None:
        match["algorithm"] = str(entry.algorithm)
    if entry.bits is not None:
        match["bits"] = str(entry.bits)
    if entry.user_ids:
        match["user-ids"] = {
            f"uid-{number}": uid.text for number, uid in enumerate(entry.user_ids, start=1)
        }
    return match


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rebuild_prefix_tree(
    tree: Path,
    *,
    stop_service: Callable[[], None],
    start_service: Callable[[], None],
    run_pbuild: Callable[[], None],
    count_keys: Callable[[], int],
    keep_old: bool = False,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ActionResults:
    """The rebuild-prefix-tree action: stop, move the tree aside, pbuild, start.

    The service is started again whatever happened. When pbuild fails, the partial tree is
    removed and the old one put back. After a success the old tree is removed unless
    `keep_old`. Takes hours on a database of millions of keys.

    Raises:
        ActionFailedError: the service could not be stopped (nothing changed), pbuild failed
            (old tree restored, service started), or the service could not be started.
    """
    began = clock()
    try:
        stop_service()
    except Exception as error:
        raise ActionFailedError(
            f"could not stop Hockeypuck ({error}); the prefix tree was not touched"
        ) from error

    aside: Path | None = None
    failure: str | None = None
    try:
        if tree.exists():
            aside = tree.with_name(f"{tree.name}.old-{now():%Y%m%dT%H%M%SZ}")
            tree.rename(aside)
        run_pbuild()
    except Exception as error:
        failure = f"the rebuild failed ({_first_line(error)})"
        failure += "; " + _restore(tree, aside)
    finally:
        try:
            start_service()
        except Exception as error:
            started = f"could not start Hockeypuck again: {error}"
            raise ActionFailedError(f"{failure}; {started}" if failure else started) from error
    if failure is not None:
        raise ActionFailedError(failure + "; Hockeypuck was started again")

    old_tree = "none (there was no tree)"
    if aside is not None:
        if keep_old:
            old_tree = str(aside)
        else:
            shutil.rmtree(aside, ignore_errors=True)
            old_tree = "removed"
    try:
        key_count = str(count_keys())
    except Exception:
        logger.exception("could not count the keys after the rebuild")
        key_count = "unknown"
    return {
        "result": "rebuilt",
        "duration-seconds": f"{clock() - began:.1f}",
        "key-count": key_count,
        "old-tree": old_tree,
    }


def _restore(tree: Path, aside: Path | None) -> str:
    try:
        if tree.exists():
            shutil.rmtree(tree)
        if aside is not None:
            aside.rename(tree)
            return "the previous tree was put back"
    except OSError as error:
        return f"the previous tree could not be put back ({error}); it is kept at {aside}"
    return "there was no previous tree"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first[:300]

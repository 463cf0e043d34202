"""How the error of a failing Hockeypuck tool is told to the operator."""

from __future__ import annotations

import pytest

from workload import tool_error

LOCKED = (
    "resource temporarily unavailable\n"
    "hockeypuck/conflux/recon/leveldb.(*prefixTree).Create\n"
    "\t/build/hockeypuck/src/hockeypuck/conflux/recon/leveldb/pt.go:98\n"
    "runtime.goexit\n"
    "\t/usr/lib/go-1.24/src/runtime/asm_amd64.s:1700\n"
)
DB_DOWN = (
    'time="2026-11-27T10:00:00Z" level=info msg="loading keys" file=a.pgp\n'
    'pq: password authentication failed for user "relation-7"\n'
    "main.load\n"
    "\t/build/hockeypuck/src/hockeypuck/server/cmd/hockeypuck-load/main.go:47\n"
)


@pytest.mark.parametrize(
    ("stderr", "error"),
    [
        (LOCKED, "resource temporarily unavailable"),
        (DB_DOWN, 'pq: password authentication failed for user "relation-7"'),
        (
            'level=info msg="start"\nlevel=error msg="cannot open dump" path=/x\n',
            "cannot open dump",
        ),
        ("", "exit code 3"),
    ],
)
def test_the_error_not_the_stack_frame(stderr: str, error: str):
    assert tool_error(stderr, 3) == error

"""Test keys (tests/data/hockeypuck/keys) and what the tests need to know about them."""

from __future__ import annotations

from pathlib import Path

KEYS = Path(__file__).resolve().parents[1] / "data/hockeypuck/keys"
ALICE = "68c5878085cd227bb9697f15f7bec0a960422c11"
BOB = "ae907dc0364d265dd9da88254380d6bca8a7b373"
CAROL = "84353343549a2c54e805afb7b8d6734eb572ad57"
DAVE = "c809341dc3af0d2e7e8eb703ed43155e5f5dc032"


def armored(name: str) -> str:
    """The armored public key of a test key (`alice`, `bob`, ...)."""
    return (KEYS / f"{name}.pub.asc").read_text()

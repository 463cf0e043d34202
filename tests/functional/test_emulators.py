"""The test-side emulators of Go text/template and lib/pq are checked against recorded facts.

They stand in for Hockeypuck's own parsers in test_dsn.py, so they must be able to fail: each
is pinned to the behaviour (and the messages) recorded from the real Hockeypuck 2.3.3, and the
lib/pq emulator is cross-checked against libpq's own parser where the two agree.
"""

from __future__ import annotations

import re

import psycopg.conninfo
import pytest

from tests.functional import go_template, lib_pq
from tests.functional.conftest import DATA

pytestmark = pytest.mark.functional
CASES = DATA / "config-cases"


# Go text/template


@pytest.mark.parametrize(
    ("template", "output"),
    [
        ("plain text, no actions\n", "plain text, no actions\n"),
        ('a{{"{{"}}b', "a{{b"),
        ("a{{`{{`}}b", "a{{b"),
        ('a{{ "{{" }}b', "a{{b"),
        ("lone }} closing braces }}", "lone }} closing braces }}"),
        ('both{{"{{"}}x}}', "both{{x}}"),
        ('{{"\\"\\\\\\n\\t\\x41\\101\\u00e9\\U0001F511"}}', '"\\\n\tAAé🔑'),
        ("{{`raw \\n stays`}}", "raw \\n stays"),
        ('text  \n {{- "x" -}} \n  more', "textxmore"),
    ],
)
def test_template_constants(template: str, output: str):
    assert go_template.render(template) == output


def test_template_rejects_recorded_case_04a_like_hockeypuck():
    text = (CASES / "04a-dsn-password-with-open-braces-unescaped.conf").read_text()

    with pytest.raises(go_template.TemplateError) as error:
        go_template.render(text)

    # Hockeypuck 2.3.3 said exactly this (config-observations.md, case 04a).
    assert str(error.value) == 'template: config:12: function "brace" not defined'


def test_template_rejects_recorded_case_04b_like_hockeypuck():
    text = (CASES / "04b-dsn-password-with-braces-pair-unescaped.conf").read_text()

    with pytest.raises(go_template.TemplateError) as error:
        go_template.render(text)

    assert str(error.value) == 'template: config:12: function "x" not defined'


@pytest.mark.parametrize(
    "case",
    [
        "04c-dsn-password-braces-escaped-quoted",
        "04d-dsn-password-braces-pair-escaped",
        "04e-dsn-password-braces-escaped-rawstring",
    ],
)
def test_template_accepts_recorded_escapes(case: str):
    text = (CASES / f"{case}.conf").read_text()

    rendered = go_template.render(text)

    expected = "password=open{{brace" if "pair" not in case else "password=both{{x}}"
    assert expected in rendered
    assert rendered.count("\n") == text.count("\n")


def test_template_environment_fields_like_hockeypuck():
    text = (CASES / "04f-dsn-password-from-env-template.conf").read_text()

    # Substituted values are not parsed again (case 04f); a missing one is `<no value>` (04g).
    assert "password=open{{brace " in go_template.render(text, {"HKP_DB_PASSWORD": "open{{brace"})
    assert "password=<no value> " in go_template.render(text, {})
    with pytest.raises(go_template.TemplateError):
        go_template.render(text)  # the charm's files must not need the environment


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{}}", "missing value for command"),
        ("{{ }}", "missing value for command"),
        ('{{"open', "unterminated quoted string"),
        ('{{"new\nline"}}', "unterminated quoted string"),
        ("{{`open", "unterminated raw quoted string"),
        ('{{"a" "b"}}', "only one string constant"),
        ('{{"a"', "unclosed action"),
        ('{{"\\q"}}', "invalid syntax"),
        ('{{"it\\\'s"}}', "invalid syntax"),
        ("{{/* a comment */}}", "beyond this emulator"),
        ('{{ printf "%s" "x" }}', "beyond this emulator"),
        ("{{ .HOME }}", "beyond this emulator"),
        ("{{ 42 }}", "unexpected"),
        # `{{-` is a trim marker only with a space after the dash: Go lexes `-"x"` and fails.
        ('{{-"x"}}', "unexpected"),
        ("line 1\nline 2 {{ nope }}", 'template: config:2: function "nope" not defined'),
    ],
)
def test_template_errors(template: str, message: str):
    with pytest.raises(go_template.TemplateError, match=re.escape(message)):
        go_template.render(template)


# lib/pq


@pytest.mark.parametrize(
    ("dsn", "options"),
    [
        ("host=h port=5432", {"host": "h", "port": "5432"}),
        ("  host = h   port=  1 ", {"host": "h", "port": "1"}),
        ("password='has space'", {"password": "has space"}),
        ('password=q"uo\\\\te', {"password": 'q"uo\\te'}),
        # Case 05b: a bare backslash escapes the next character, so `\t` is just `t`.
        ('password=q"uo\\te', {"password": 'q"uote'}),
        ("password='it\\'s'", {"password": "it's"}),
        ("password='back\\\\slash'", {"password": "back\\slash"}),
        ("password=a\\ b", {"password": "a b"}),
        ("password=''", {"password": ""}),
        ("password=", {"password": ""}),
        ("a=1\u3000b=2", {"a": "1", "b": "2"}),  # Go's unicode.IsSpace, not just ASCII
        ("password='ü 密 🔑'", {"password": "ü 密 🔑"}),
    ],
)
def test_lib_pq_parses(dsn: str, options: dict[str, str]):
    assert lib_pq.parse(dsn) == options


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        # Cases 05f and 04g: lib/pq's messages, stray quote included.
        ("user=x password=has space sslmode=disable", 'missing "=" after "space" in connection'),
        ("password=<no value> sslmode=disable", 'missing "=" after "value>" in connection'),
        ("password='open", "unterminated quoted string literal"),
        ("password='trailing\\", "unterminated quoted string literal"),
        ("password=trailing\\", "missing character after backslash"),
        ("justakey", 'missing "=" after "justakey"'),
    ],
)
def test_lib_pq_refuses(dsn: str, message: str):
    with pytest.raises(lib_pq.DsnError, match=message):
        lib_pq.parse(dsn)


def test_lib_pq_defaults_differ_from_libpq():
    # No sslmode means `require` for lib/pq (case 06g), where libpq would `prefer`.
    assert lib_pq.connect_kwargs(lib_pq.parse("host=h user=u"))["sslmode"] == "require"
    assert lib_pq.connect_kwargs(lib_pq.parse("database=d"))["dbname"] == "d"
    with pytest.raises(lib_pq.DsnError, match="unsupported sslmode"):
        lib_pq.connect_kwargs({"sslmode": "prefer"})
    with pytest.raises(lib_pq.DsnError, match="beyond this emulator"):
        lib_pq.connect_kwargs({"application_name": "x"})


@pytest.mark.parametrize(
    "dsn",
    [
        "dbname=d host=127.0.0.1 port=5432 user=u password=p sslmode=disable",
        "dbname='d' host='h' port='1' user='relation-7' password='q\"uo\\\\te'",
        "password='it\\'s a \\\\ \"test\" {{ }}' user = u",
        "password=bare\\'quote user=u",
        'password=q"uo\\te',
        "password='tab\there' user='ü'",
    ],
)
def test_lib_pq_agrees_with_libpq(dsn: str):
    # libpq's conninfo_parse is what lib/pq's parseOpts is "based on"; for ASCII white space
    # and the keys both know, the two must read the same values.
    assert lib_pq.parse(dsn) == psycopg.conninfo.conninfo_to_dict(dsn)

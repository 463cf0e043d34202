r"""The first layer Hockeypuck reads its config through: Go `text/template`, emulated.

Hockeypuck renders the whole config file as a Go template (default delimiters, Sprig functions,
the environment as `.NAME` fields) before it parses TOML. This is a faithful *subset* of Go's
lexer and parser (text/template/parse/lex.go and parse.go):

- text outside actions is copied as is (a lone `}}` is text);
- `{{` opens an action, `}}` closes it; `{{- ` and ` -}}` trim the white space (" \t\r\n")
  before and after the action;
- an action holding one string constant, interpreted (`"..."`, Go escapes) or raw (`` `...` ``),
  outputs the constant;
- with an environment given, an action `.NAME` outputs its value, or `<no value>` when unset
  (what Hockeypuck does, recorded as case 04g); without one, fields are errors;
- any other action is an error. An identifier that is not a defined function fails the way
  Hockeypuck does (`template: config:12: function "brace" not defined`, case 04a); real
  functions, keywords, pipelines and comments are reported as beyond this emulator, since the
  charm never writes them.
"""

from __future__ import annotations

from collections.abc import Mapping

LEFT = "{{"
RIGHT = "}}"
TRIM = "-"
SPACE = " \t\r\n"
NO_VALUE = "<no value>"
_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    '"': 0x22,
}
_HEX_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}


class TemplateError(Exception):
    """The template does not parse or execute (Hockeypuck exits 1 on it)."""


def render(text: str, env: Mapping[str, str] | None = None) -> str:
    """Execute `text` as Hockeypuck would before TOML parsing.

    Raises:
        TemplateError: with Go's message where the emulator knows it.
    """
    out: list[str] = []
    position = 0
    trim_next_text = False
    while True:
        start = text.find(LEFT, position)
        literal = text[position:] if start < 0 else text[position:start]
        if trim_next_text:
            literal = literal.lstrip(SPACE)
        if start < 0:
            out.append(literal)
            return "".join(out)
        inside = start + len(LEFT)
        if text.startswith(TRIM, inside) and text[inside + 1 : inside + 2] in tuple(SPACE):
            literal = literal.rstrip(SPACE)
            inside += 2
        out.append(literal)
        value, position, trim_next_text = _action(text, inside, env)
        out.append(value)


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _error(text: str, position: int, message: str) -> TemplateError:
    return TemplateError(f"template: config:{_line(text, position)}: {message}")


def _at_right(text: str, position: int) -> tuple[int, bool] | None:
    """If an action ends here, where the text after it starts and whether to trim it."""
    if text[position : position + 1] in tuple(SPACE) and text.startswith(
        TRIM + RIGHT, position + 1
    ):
        return position + 1 + len(TRIM + RIGHT), True
    if text.startswith(RIGHT, position):
        return position + len(RIGHT), False
    return None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in SPACE:
        if _at_right(text, position) is not None:
            break
        position += 1
    return position


def _action(text: str, position: int, env: Mapping[str, str] | None) -> tuple[str, int, bool]:
    """Lex and run one action; return its output, where the text resumes, and right trim."""
    if text.startswith("/*", position):
        raise _error(text, position, "comments are beyond this emulator")
    position = _skip_space(text, position)
    if position >= len(text):
        raise _error(text, position, "unclosed action")
    if _at_right(text, position) is not None:
        raise _error(text, position, "missing value for command")
    char = text[position]
    if char == '"':
        value, position = _interpreted_string(text, position)
    elif char == "`":
        value, position = _raw_string(text, position)
    elif char == "." and env is not None:
        name, position = _identifier(text, position + 1)
        if not name:
            raise _error(text, position, "only .NAME fields are emulated")
        value = env.get(name, NO_VALUE)
    elif char in {".", "$"}:
        raise _error(text, position, "fields and variables are beyond this emulator")
    elif char.isalpha() or char == "_":
        name, _ = _identifier(text, position)
        # Go's parser checks functions while it parses: the first unknown identifier wins.
        if name in _GO_KEYWORDS_AND_BUILTINS:
            raise _error(text, position, f"{name!r} is beyond this emulator")
        raise _error(text, position, f'function "{name}" not defined')
    else:
        raise _error(text, position, f"unexpected {char!r} in command")
    position = _skip_space(text, position)
    end = _at_right(text, position)
    if end is None:
        if position >= len(text):
            raise _error(text, position, "unclosed action")
        raise _error(text, position, "only one string constant per action is emulated")
    resume, trim = end
    return value, resume, trim


def _identifier(text: str, position: int) -> tuple[str, int]:
    end = position
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[position:end], end


def _raw_string(text: str, position: int) -> tuple[str, int]:
    end = text.find("`", position + 1)
    if end < 0:
        raise _error(text, position, "unterminated raw quoted string")
    return text[position + 1 : end].replace("\r", ""), end + 1


def _interpreted_string(text: str, position: int) -> tuple[str, int]:
    """Lex a Go "..." string constant (lexQuote) and unquote it (strconv.Unquote)."""
    cursor = position + 1
    while True:
        char = text[cursor] if cursor < len(text) else ""
        if char == "\\":
            following = text[cursor + 1] if cursor + 1 < len(text) else ""
            if following not in ("", "\n"):
                cursor += 2
                continue
            char = following
        if char in ("", "\n"):
            raise _error(text, position, "unterminated quoted string")
        if char == '"':
            break
        cursor += 1
    return _unquote(text, position, text[position + 1 : cursor]), cursor + 1


def _unquote(text: str, position: int, body: str) -> str:
    """Go's strconv.Unquote of a double-quoted body: bytes, then UTF-8."""
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode()
            index += 1
            continue
        escape = body[index + 1]
        index += 2
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
        elif escape in _HEX_ESCAPE_DIGITS:
            digits = body[index : index + _HEX_ESCAPE_DIGITS[escape]]
            index += len(digits)
            if len(digits) != _HEX_ESCAPE_DIGITS[escape] or not _is_hex(digits):
                raise _error(text, position, "invalid syntax")
            number = int(digits, 16)
            if escape == "x":
                out.append(number)
            elif number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
                raise _error(text, position, "invalid syntax")
            else:
                out += chr(number).encode()
        elif escape in "01234567":
            digits = body[index - 1 : index + 2]
            index += 2
            if (
                len(digits) != 3
                or any(d not in "01234567" for d in digits)
                or int(digits, 8) > 255
            ):
                raise _error(text, position, "invalid syntax")
            out.append(int(digits, 8))
        else:
            raise _error(text, position, "invalid syntax")
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise _error(
            text, position, "a constant that is not UTF-8 is beyond this emulator"
        ) from None


def _is_hex(digits: str) -> bool:
    return all(d in "0123456789abcdefABCDEF" for d in digits)


_GO_KEYWORDS_AND_BUILTINS = frozenset(
    {
        # text/template keywords
        "block",
        "break",
        "continue",
        "define",
        "else",
        "end",
        "if",
        "nil",
        "range",
        "template",
        "true",
        "false",
        "with",
        # text/template built-in functions
        "and",
        "call",
        "html",
        "index",
        "js",
        "len",
        "not",
        "or",
        "print",
        "printf",
        "println",
        "slice",
        "urlquery",
        "eq",
        "ge",
        "gt",
        "le",
        "lt",
        "ne",
        # a few Sprig functions a config might plausibly use
        "env",
        "default",
        "quote",
        "squote",
        "trim",
        "upper",
        "lower",
    }
)

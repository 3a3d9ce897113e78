"""Lines of every CSV the platform writes, safe to open in a spreadsheet (pure Python, no Django).

Excel, LibreOffice Calc, Google Sheets and Numbers run a cell as a formula when its text starts
with `=`, `+`, `-` or `@` (CSV or formula injection, OWASP): `=HYPERLINK("http://...")` as a
participant id or `+cmd|...` as a stimulus name would run on the researcher's machine. Text the
platform does not choose (participant ids, stimulus names, labels, notes, parameters) can start that
way, so every CSV line goes through `csv_line`, and every cell through `csv_cell`:

* a text cell is *neutralised* -- prefixed with a single quote `'`, which spreadsheets read as
  "this is text" and do not show -- when it starts with `=`, `+`, `-`, `@` (or their full-width
  forms `＝＋－＠`), with a tab, carriage return, line feed or NUL, or with whitespace followed by
  one of `=+-@` (some spreadsheets trim leading blanks before deciding);
* numbers (int, float, bool) are written as numbers, never quoted: a negative score -0.12 stays
  -0.12; a writer that formats its own numbers passes `number_format`, and the formatted text is
  not neutralised;
* None is an empty cell; anything else (a date, a UUID) is written as `str(value)`, neutralised.

Invariant: no cell of a line from `csv_line` starts a formula unless it holds a number the caller
passed as a number. A program reading the CSV sees the quote on the neutralised text cells only.
"""
from __future__ import annotations

import csv
import io
import numbers
from typing import Callable, Iterable

FORMULA_STARTS = frozenset("=+-@＝＋－＠")
CONTROL_STARTS = frozenset("\t\r\n\0")
NEUTRALISER = "'"


def text_neutralised(text: str) -> str:
    """`text`, prefixed with a single quote if a spreadsheet would read it as a formula."""
    if not text:
        return text
    if text[0] in CONTROL_STARTS or text.lstrip()[:1] in FORMULA_STARTS:
        return NEUTRALISER + text
    return text


def csv_cell(value: object, *, number_format: Callable[[float], str] | None = None) -> object:
    """What csv.writer should write for `value`: numbers as they are (or `number_format`ted),
    None as "", text (and anything else, as str) neutralised."""
    if value is None:
        return ""
    if isinstance(value, numbers.Real):
        if number_format is not None and isinstance(value, float):
            return number_format(value)
        return value
    return text_neutralised(value if isinstance(value, str) else str(value))


def csv_line(cells: Iterable, *, number_format: Callable[[float], str] | None = None) -> str:
    """One CSV line ("\\n"-terminated, quoted as needed) of `cells`, each through `csv_cell`."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([csv_cell(v, number_format=number_format) for v in cells])
    return buffer.getvalue()

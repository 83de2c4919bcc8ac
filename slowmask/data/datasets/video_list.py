"""List files as people write them: PySlowFast's "path label" video lists (train.csv /
val.csv / test.csv), read by `read_video_list`, on the line reader `read_list`.

The format is given in `read_video_list`'s docstring; `read_list` reads lists of more
columns by the same rules.
"""

import logging
import os
import re
from typing import List, NamedTuple, Sequence, Tuple

from iopath.common.file_io import g_pathmgr

from slowmask.utils.errors import DataError

logger = logging.getLogger(__name__)

VIDEO_LIST_COLUMNS = ("path", "label")
# An unlabelled video (PySlowFast reads a path-only line as label 0).
NO_LABEL = 0
BYTE_ORDER_MARK = "\ufeff"
# A field that reads as a number: after an unquoted path, it is a column, not the path's end.
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?")
_QUOTED_PATH = re.compile(r'"((?:[^"]|"")*)"')


class ListRow(NamedTuple):
    """One line of a list: its number (from 1), its text and its fields, the path first."""

    number: int
    text: str
    fields: List[str]


class ListNotFoundError(DataError, FileNotFoundError):
    """A list file that does not exist."""


class ListFormatError(DataError, ValueError):
    """A list file whose text does not follow its format; the message names the file and
    the line. A ValueError too, for callers that caught the parse errors before."""


def read_list_lines(list_path: str, what: str = "list") -> List[Tuple[int, str]]:
    """(line number, text without surrounding white space) of every non-blank line of the
    UTF-8 file `list_path` (any iopath path), a byte-order mark removed.

    Raises:
        ListNotFoundError: the file does not exist.
        ListFormatError: it is not UTF-8 text.
    """
    if not g_pathmgr.exists(list_path):
        folder = os.path.dirname(list_path)
        hint = "" if folder else "; DATA.PATH_TO_DATA_DIR is empty: set it to the folder that holds the lists"
        raise ListNotFoundError(f"{what} not found: {list_path}{hint}")
    with g_pathmgr.open(list_path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ListFormatError(
            f"{list_path}, line {line}: not UTF-8 text (byte {raw[error.start]:#04x}); save the list as UTF-8"
        ) from None
    lines = text.removeprefix(BYTE_ORDER_MARK).splitlines()
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]


def _separator_pattern(separator: str) -> "re.Pattern[str]":
    """A run of separators: commas, white space and `separator`."""
    if not separator:
        raise ValueError("the path-label separator is empty; use ' ' or ','")
    return re.compile(rf"(?:[\s,]|{re.escape(separator)})+")


def _split_line(text: str, columns: Sequence[str], separators: "re.Pattern[str]") -> List[str]:
    """The fields of one line (see `read_video_list` for the rules): the path, then the last
    `len(columns) - 1` fields; only the path when the line has a single field.

    Raises:
        ValueError: an unclosed quote, text glued to a closing quote, an extra column,
            or fields missing after a quoted path.
    """
    text = re.sub(rf"(?:{separators.pattern})$", "", text)
    count = len(columns)
    if text.startswith('"'):
        return _split_quoted(text, columns, separators)
    cuts = list(separators.finditer(text))
    if not cuts:
        return [text]
    if len(cuts) < count - 1:
        raise ValueError(f"{len(cuts) + 1} columns ({text!r}) where the list has {count} ({' '.join(columns)})")
    first = cuts[-(count - 1)]
    path, tail = text[: first.start()], separators.split(text[first.end():])
    path_end = separators.split(path)[-1]
    if len(cuts) >= count and _NUMBER.fullmatch(path_end):
        raise ValueError(
            f"an extra column {path_end!r} before the {columns[1]} ({text!r}); the list has {count} columns "
            f"({' '.join(columns)}): remove it, or write a path that ends in {path_end!r} in double quotes"
        )
    return [path, *tail]


def _split_quoted(text: str, columns: Sequence[str], separators: "re.Pattern[str]") -> List[str]:
    quoted = _QUOTED_PATH.match(text)
    if not quoted:
        raise ValueError(f"the quote that opens the path is not closed ({text!r}); a quote inside a quoted path is doubled")
    path, rest = quoted.group(1).replace('""', '"'), text[quoted.end():]
    if not rest:
        return [path]
    lead = separators.match(rest)
    if not lead:
        raise ValueError(f"a separator must follow the closing quote of the path ({text!r})")
    tail = separators.split(rest[lead.end():])
    if len(tail) != len(columns) - 1:
        raise ValueError(f"{len(tail) + 1} columns ({text!r}) where the list has {len(columns)} ({' '.join(columns)})")
    return [path, *tail]


def read_list(list_path: str, columns: Sequence[str] = VIDEO_LIST_COLUMNS, separator: str = " ",
              what: str = "list") -> List[ListRow]:
    """The non-blank lines of a list whose lines hold `columns`, the path first; each
    row's fields are `len(columns)`, or the path alone on a path-only line.

    Raises:
        ListNotFoundError: `list_path` does not exist.
        ListFormatError: a line that does not split into the columns, naming it.
    """
    if len(columns) < 2:
        raise ValueError(f"a list has the path and at least one more column, got columns {list(columns)}")
    separators = _separator_pattern(separator)
    rows = []
    for number, text in read_list_lines(list_path, what):
        try:
            rows.append(ListRow(number, text, _split_line(text, columns, separators)))
        except ValueError as error:
            raise ListFormatError(f"{list_path}, line {number}: {error}") from None
    return rows


def read_video_list(list_path: str, prefix: str = "", separator: str = " ") -> List[Tuple[str, int]]:
    """[(path, label)] from a list file of "path label" lines.

    The format, one video per line:

        PATH LABEL                      a.mp4 3
        PATH,LABEL                      my clips/take one.mp4,3

    - The label is the last field: the text after the line's last separator (a comma, white
      space, or DATA.PATH_LABEL_SEPARATOR); the path is everything before it, so a path may
      hold spaces and commas.
    - A line with one field is a path without a label (label 0: unlabelled data, as PySlowFast).
    - A path in double quotes is taken as it is, a quote inside it doubled (CSV's rule):
      `"take 2" 3`, `" leading space.mp4",1`, `"say ""hi"".mp4" 0`. Every path can be written
      so; it is needed for a path that ends in a separator and a number or in a separator,
      starts with a space, or starts with a quote.
    - A line with more columns than the list has (`a.mp4 0 7`) is an error naming the line:
      an unquoted path whose last field is a number is taken for an extra column. A dataset
      whose lists have more columns reads them with `read_list(path, columns=...)`.
    - A UTF-8 byte-order mark at the start (spreadsheets and Notepad write one) is not part
      of the first path; blank lines are skipped; trailing separators are ignored; there is
      no header line.

    Args:
        list_path: the file (any iopath path).
        prefix: joined in front of every path (PySlowFast's DATA.PATH_PREFIX).
        separator: between path and label besides a comma and white space
            (DATA.PATH_LABEL_SEPARATOR).
    Raises:
        ListNotFoundError (a FileNotFoundError): `list_path` does not exist.
        ListFormatError (a ValueError): no entries, a label that is not an integer, an
            extra column or a malformed quote; the message names the line.
    """
    videos = []
    for row in read_list(list_path, VIDEO_LIST_COLUMNS, separator, what="video list"):
        path, label = row.fields if len(row.fields) == 2 else (row.fields[0], str(NO_LABEL))
        try:
            videos.append((os.path.join(prefix, path) if prefix else path, int(label)))
        except ValueError:
            raise ListFormatError(_label_problem(list_path, row, first=not videos)) from None
    if not videos:
        raise ListFormatError(f"video list {list_path} is empty")
    logger.info("read %d videos from %s", len(videos), list_path)
    return videos


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_problem(list_path: str, row: ListRow, first: bool) -> str:
    label = row.fields[1]
    if _is_number(label):
        return (
            f"{list_path}, line {row.number} ({row.text!r}): label {label!r} is not an integer: a label is a class "
            "index (0, 1, ...); write it without a fraction or exponent"
        )
    if first:
        return (
            f"{list_path}, line {row.number} ({row.text!r}) looks like a header: a list has no header line, "
            "only 'path label' lines; remove it"
        )
    return (
        f"{list_path}, line {row.number}: label {label!r} is not an integer (the label is the last field; "
        "write a path without a label that holds a space or a comma in double quotes)"
    )


def missing_file_advice(path: str) -> str:
    """What to check when a listed local file `path` (prefix joined) does not exist."""
    if os.path.isabs(path):
        return "check DATA.PATH_PREFIX, which is joined in front of every listed path"
    return (f"the listed paths are relative, so they are read from the working directory {os.getcwd()}; "
            "set DATA.PATH_PREFIX to the folder they are relative to")

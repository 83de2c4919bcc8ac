"""Reading a "path label" list file (PySlowFast's train.csv / val.csv / test.csv)."""

import logging
import os
from typing import List, Tuple

from iopath.common.file_io import g_pathmgr

logger = logging.getLogger(__name__)


def _split_line(line: str, separator: str) -> Tuple[str, str]:
    """(path, label) from one line; the label is the last field, so a path may contain
    the separator. The given separator is tried first, then a comma, then whitespace;
    a line with a path only has label "0" (unlabelled data, as PySlowFast)."""
    for sep in (separator, ",", None):
        fields = line.rsplit(sep, 1)
        if len(fields) == 2 and fields[0].strip():
            return fields[0].strip(), fields[1].strip()
    return line, "0"


def read_video_list(list_path: str, prefix: str = "", separator: str = " ") -> List[Tuple[str, int]]:
    """[(path, label)] from a list file with one "path label" per line.

    Args:
        list_path: the file (any iopath path).
        prefix: joined in front of every path (PySlowFast's DATA.PATH_PREFIX).
        separator: between path and label; a comma or whitespace is read too.
    Raises:
        FileNotFoundError: `list_path` does not exist.
        ValueError: the file has no entries, or a label is not an integer.
    """
    if not g_pathmgr.exists(list_path):
        folder = os.path.dirname(list_path)
        hint = "" if folder else "; DATA.PATH_TO_DATA_DIR is empty: set it to the folder that holds the lists"
        raise FileNotFoundError(f"video list not found: {list_path}{hint}")
    with g_pathmgr.open(list_path, "r") as f:
        lines = f.read().splitlines()
    videos = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        path, label = _split_line(line.strip(), separator)
        try:
            videos.append((os.path.join(prefix, path) if prefix else path, int(label)))
        except ValueError:
            if line_number == 1 and not videos:
                raise ValueError(
                    f"{list_path}, line 1 ({line.strip()!r}) looks like a header: a list has no header line, "
                    "only 'path label' lines; remove it"
                ) from None
            raise ValueError(f"{list_path}, line {line_number}: label {label!r} is not an integer") from None
    if not videos:
        raise ValueError(f"video list {list_path} is empty")
    logger.info("read %d videos from %s", len(videos), list_path)
    return videos

"""Writing into OUTPUT_DIR when space runs out: the free space of a folder, the one
error a full disk gives, and the temporary files (`NAME.tmp-PID`) that writes leave
behind when their process dies before renaming them into place.

A full disk must end a run with one message naming the file, the bytes it needed, the
bytes free and what to do, and must not leave a partial temporary file behind that
keeps the disk full for the rerun.
"""

import errno
import logging
import os
import re
import shutil
from typing import Iterable, List, Optional

from .errors import SlowmaskError

logger = logging.getLogger(__name__)

# Errors that mean "no room": the disk is full, or this user's quota is used up.
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# NAME.tmp-PID: the temporary file of an atomic write by process PID.
_TEMPORARY = re.compile(r"\.tmp-(\d+)$")


class OutputError(SlowmaskError):
    """OUTPUT_DIR cannot be written: full, in use by another run, not a folder."""

    kind = "output"


class DiskFullError(OutputError):
    """A write that found no room; the partial file is already removed."""

    def __init__(self, path: str, needed: int, free: Optional[int], advice: str) -> None:
        free_text = "unknown" if free is None else f"{free:,}"
        super().__init__(
            f"no space left to write {path}: it needs about {needed:,} bytes and {free_text} are free in "
            f"{os.path.dirname(path) or '.'}; {advice}"
        )
        self.path, self.needed, self.free = path, needed, free


def free_bytes(folder: str) -> Optional[int]:
    """Bytes this user may still write in `folder`; None for remote storage (iopath
    URLs), whose space cannot be asked for."""
    if "://" in folder:
        return None
    return shutil.disk_usage(folder).free


def disk_full_cause(error: Optional[BaseException]) -> Optional[OSError]:
    """The ENOSPC / EDQUOT OSError behind `error`, or None. torch.save reports a failed
    write as a RuntimeError of its zip writer, the OSError only as its context."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return error
        error = error.__cause__ or error.__context__
    return None


def check_free_space(path: str, needed: int, advice: str, warn_below: int = 3) -> None:
    """Fail before writing `needed` bytes to `path` when they do not fit, and warn when
    fewer than `warn_below` more writes of that size would fit after this one.

    Raises:
        DiskFullError: less than `needed` bytes free in the folder of `path`.
    """
    free = free_bytes(os.path.dirname(path) or ".")
    if free is None or needed <= 0:
        return
    if free < needed:
        raise DiskFullError(path, needed, free, advice)
    room = free // needed - 1
    if room < warn_below:
        logger.warning(
            "the disk of %s is nearly full: %s bytes free, room for %d more file(s) of %s bytes after this one; %s",
            os.path.dirname(path), f"{free:,}", room, f"{needed:,}", advice,
        )


def remove_quietly(path: str) -> None:
    """Remove a partial file; a file already gone is fine."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folders: Iterable[str]) -> List[str]:
    """Delete the NAME.tmp-PID files in `folders` whose process is gone (a run killed
    while writing a checkpoint or the config); returns their paths. Files of living
    processes, this one included, are left alone."""
    removed = []
    for folder in folders:
        if "://" in folder or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            match = _TEMPORARY.search(name)
            if match is None or int(match.group(1)) == os.getpid() or process_alive(int(match.group(1))):
                continue
            path = os.path.join(folder, name)
            size = os.path.getsize(path)
            remove_quietly(path)
            removed.append(path)
            logger.warning("removed %s (%s bytes), left by process %s that is gone", path, f"{size:,}", match.group(1))
    return removed

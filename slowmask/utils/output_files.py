"""What a run writes into OUTPUT_DIR, and who may: the run lock, the free space of a
folder, the one error a full disk gives, and the temporary files (`NAME.tmp-PID`) that
writes leave behind when their process dies before renaming them into place.

A full disk must end a run with one message naming the file, the bytes it needed, the
bytes free and what to do, and must not leave a partial temporary file behind that
keeps the disk full for the rerun.

One run per OUTPUT_DIR: a lock the main process holds for the run's life, so that a
second run on the same folder fails at once, naming the first, instead of interleaving
its logs and overwriting its checkpoints.

The lock is OUTPUT_DIR/run.lock: a file held with flock(2) and holding one JSON line,
the holder's pid, host and start time. It is made complete and locked under a temporary
name and then hard-linked into place, so a file under the final name always names its
holder; the holder removes it when the run ends (done, failed or preempted).

What is guaranteed:
- On one host: two runs never hold the lock together. The kernel drops a flock when its
  holder dies in any way (SIGKILL included); the next run finds the file unlocked, takes
  it over and warns with the dead holder's pid and start time.
- Across hosts sharing OUTPUT_DIR (NFS): the link is atomic on the server, so two runs
  starting together cannot both create the file. A lock file written on another host is
  never taken over: where the file system passes flocks to the server (NFSv4, NFSv3 with
  NLM) a held one refuses at once; where locks are local to each client (`nolock`,
  `local_lock=flock`, many FUSE file systems) this host cannot tell a live holder from a
  dead one, so the run refuses and says to delete the file once that run is gone.
- Remote storage (iopath URLs) has no locks: the run warns that it is unprotected.
"""

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional

from .errors import SlowmaskError, expected_stop

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
    """Delete the NAME.tmp-PID files (and folders) in `folders` whose process is gone (a run
    killed while writing a checkpoint or the config); returns their paths. Files of living
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
            if os.path.isdir(path):  # a sharded checkpoint's folder (checkpoint/sharded.py)
                shutil.rmtree(path, ignore_errors=True)
            remove_quietly(path)
            removed.append(path)
            logger.warning("removed %s (%s bytes), left by process %s that is gone", path, f"{size:,}", match.group(1))
    return removed


def unwritable_problem(folder: str, name: str) -> Optional[str]:
    """Why files cannot be written in `folder` (named `name` in the message, e.g.
    "OUTPUT_DIR"), or None: a dangling symbolic link, a file where a folder belongs, or a
    folder (or, when missing, the folder it would be created in) where a probe file cannot
    be created. The probe is named like a temporary write (NAME.tmp-PID), so one left by
    a killed process is removed at the next start. Remote storage (iopath URLs) is not probed."""
    if "://" in folder:
        return None
    folder = os.path.abspath(folder)
    if os.path.islink(folder) and not os.path.exists(folder):
        return (f"{name} {folder} is a symbolic link to {os.readlink(folder)}, which does not exist; "
                "create that folder or give another OUTPUT_DIR")
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{name} {folder}: {existing} is a file, not a folder; give a folder (it is created if missing)"
    probe = os.path.join(existing, f"write-test.tmp-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.remove(probe)
    except OSError as error:
        where = "" if existing == folder else f" (it would be created in {existing})"
        return (f"{name} {folder}{where} cannot be written: {error.strerror or error}; make it writable for this "
                "user or give another OUTPUT_DIR")
    return None


# The ranks' exit statuses.

EXIT_STATUS_DIR = "exit_status"
# What a rank's status file holds while it runs: a process killed outright leaves it so.
RUNNING = "running"


def exit_status_file(output_dir: str, rank: int) -> str:
    return os.path.join(output_dir, EXIT_STATUS_DIR, f"rank_{rank:05d}")


@contextmanager
def recording_exit_status(output_dir: str, rank: int) -> Iterator[None]:
    """Keep this process's exit status in OUTPUT_DIR/exit_status/rank_RANK: "running"
    while the body runs, then 0, an expected error's status (75 preempted ...) or 1 for
    any other exception. torchrun's own status is 1 whenever a rank fails, also when every
    rank stopped with 75 after writing a checkpoint: a script that requeues reads these."""
    _write_status(output_dir, rank, RUNNING)
    try:
        yield
    except BaseException as error:
        stop = expected_stop(error)
        _write_status(output_dir, rank, str(stop[0] if stop else 1))
        raise
    _write_status(output_dir, rank, "0")


def _write_status(output_dir: str, rank: int, status: str) -> None:
    path = exit_status_file(output_dir, rank)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(status + "\n")
    os.replace(temporary, path)


# The run lock.

LOCK_FILE = "run.lock"
# Races with a holder that releases at the same moment are retried this many times.
_ATTEMPTS = 5


class OutputDirInUse(OutputError):
    """OUTPUT_DIR is held by another run (or by one this host cannot tell is gone)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    pid: int
    host: str
    started: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on host {self.host}, started {when}"

    @classmethod
    def this_process(cls) -> "Holder":
        return cls(os.getpid(), socket.gethostname(), time.time())

    @classmethod
    def parse(cls, text: str) -> Optional["Holder"]:
        try:
            fields = json.loads(text)
            return cls(int(fields["pid"]), str(fields["host"]), float(fields["started"]))
        except (ValueError, KeyError, TypeError):
            return None


class RunLock:
    """The lock of one OUTPUT_DIR; `acquire` then `release` (or `hold_output_dir`)."""

    def __init__(self, output_dir: str) -> None:
        self.path = os.path.join(output_dir, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Take the lock, taking over the file of a dead holder on this host.

        Raises:
            OutputDirInUse: another run holds it, or its file names another host.
        """
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(_ATTEMPTS):
            if self._create() or self._take_over():
                return
        raise OutputDirInUse(f"{self.path} changed hands {_ATTEMPTS} times while this run tried to take it; rerun")

    def release(self) -> None:
        """Remove the lock file (while still holding it, so no one takes a file that is
        about to vanish) and drop the lock."""
        if self._fd is None:
            return
        if self._same_file(self._fd):
            remove_quietly(self.path)
        os.close(self._fd)
        self._fd = None

    def _create(self) -> bool:
        """Link a new, locked lock file into place; False when one is there already."""
        temporary = f"{self.path}.tmp-{os.getpid()}"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._write(fd)
            os.link(temporary, self.path)
        except FileExistsError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        finally:
            remove_quietly(temporary)
        self._fd = fd
        return True

    def _take_over(self) -> bool:
        """Take the existing lock file when its holder is gone; False when the file
        vanished meanwhile (a holder that just released: try creating again)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = _in_use(self.path, fd)
            os.close(fd)
            raise OutputDirInUse(message) from None
        if not self._same_file(fd):  # released and replaced between our open and flock
            os.close(fd)
            return False
        holder = Holder.parse(os.pread(fd, 4096, 0).decode(errors="replace"))
        if holder is None or holder.host != socket.gethostname():
            os.close(fd)
            raise OutputDirInUse(
                f"{self.path} names {self._describe(holder)}, and this host cannot tell whether that run is still "
                "going: if it is not, delete the lock file and rerun; else give this run another OUTPUT_DIR"
            )
        logger.warning("took over %s from %s, which is no longer running", self.path, holder.describe())
        self._write(fd)
        self._fd = fd
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _write(fd: int) -> None:
        holder = Holder.this_process()
        line = json.dumps({"pid": holder.pid, "host": holder.host, "started": holder.started}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode(), 0)
        os.fsync(fd)

    @staticmethod
    def _describe(holder: Optional[Holder]) -> str:
        return holder.describe() if holder is not None else "a holder its content does not name"


def in_use_message(output_dir: str) -> Optional[str]:
    """Why OUTPUT_DIR is in use by a live run on this host (its lock is held), or None.
    A look, not a lock: the entry point asks it before writing anything (its log
    included); `hold_output_dir`, around the training itself, decides."""
    path = os.path.join(output_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _in_use(path, fd)
    finally:
        os.close(fd)  # closing drops a shared lock taken just to look
    return None


def _in_use(path: str, fd: int) -> str:
    """The message for a lock file `path` (open as `fd`) that a live run holds."""
    holder = Holder.parse(os.pread(fd, 4096, 0).decode(errors="replace"))
    return (f"{os.path.dirname(path)} is in use by another run ({RunLock._describe(holder)}; lock file {path}): "
            "wait for it to end, or give this run another OUTPUT_DIR")


@contextmanager
def hold_output_dir(output_dir: str) -> Iterator[None]:
    """Hold OUTPUT_DIR's run lock for the body (see the module docstring)."""
    if "://" in output_dir:
        logger.warning("%s is remote storage, which has no locks: nothing stops a second run from using it", output_dir)
        yield
        return
    lock = RunLock(output_dir)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()

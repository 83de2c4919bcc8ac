"""Expected errors, and how every entry point ends on one.

An expected error is one the user can fix (a wrong key, a missing list, an unreadable
checkpoint, a full disk) or an orderly stop (preemption). Its class subclasses
`SlowmaskError` and names its `kind`; `run_tool` turns it into one line on stderr (the
message, and where its traceback went) and the kind's exit status. Any other exception is
a bug in slowmask or in a user's plug-in and keeps its traceback. A stop signal with
nothing to checkpoint (before the first step, or a second Ctrl-C) raises StoppedBySignal,
which `run_tool` ends on alike with 128 + the signal; like KeyboardInterrupt it is no
Exception, so that no `except Exception` takes it for the failure it interrupted.

Exit statuses (README, "Exit statuses"):
   0  done
   2  config       the configuration, a command-line argument or the devices it names
   3  data         a split's list or files: missing, malformed, unreadable
   4  checkpoint   a checkpoint that is missing, unreadable, not a model's, or not finite
   5  distributed  the processes of a job could not meet or talk
   6  output       OUTPUT_DIR cannot be written: in use by another run, full, not a folder
   7  training     the training itself failed: a non-finite or exploding loss, too many skipped steps
   8  worker       a data-loader worker was killed, usually by the out-of-memory killer;
                   the mid-epoch checkpoint was written: rerun to resume
  75  preempted    stopped by a signal after writing a checkpoint: rerun to resume
 128+N            stopped by signal N before the first step (130 Ctrl-C, 143 SIGTERM)
"""

import logging
import re
import signal
import sys
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

EXIT_STATUS: Dict[str, int] = {
    "config": 2,
    "data": 3,
    "checkpoint": 4,
    "distributed": 5,
    "output": 6,
    "training": 7,
    "worker": 8,
    "preempted": 75,
}
SIGNAL_EXIT_BASE = 128
DEBUG_FLAG = "--debug"

logger = logging.getLogger(__name__)


class SlowmaskError(Exception):
    """An expected error: its message says the cause and the fix; `kind` (a key of
    EXIT_STATUS) chooses the exit status."""

    kind = "config"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.kind]

    @classmethod
    def status_of(cls, message: str) -> int:
        """The exit status of this class's error with `message`, as a spawned process relays it."""
        return EXIT_STATUS[cls.kind]


class ConfigError(SlowmaskError, ValueError):
    """A configuration that cannot run, with a message that says why; `problems` holds
    each problem it reports (one, or several found together)."""

    def __init__(self, message: str, problems: Optional[Sequence[str]] = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]

    @classmethod
    def of_all(cls, problems: Sequence[str]) -> "ConfigError":
        """One error for several problems: the problem itself when alone, else a list."""
        return cls(problems_text(problems), problems)


class UsageError(SlowmaskError):
    """A tool's command line that cannot work (a wrong argument or combination)."""


class DataError(SlowmaskError):
    """Input files a tool cannot read: missing, malformed, of the wrong kind."""

    kind = "data"


class StoppedBySignal(BaseException):
    """A stop signal ended the run without a checkpoint; exit 128 + its number. Like
    KeyboardInterrupt it is no Exception: a signal handler raises it wherever the main
    thread is, and an `except Exception` there (a video that fails to decode, a checkpoint
    that fails to load, a preflight check) must not take it for its own failure. The
    message names the signal ("by SIGTERM"), which is how a parent finds the status."""

    def __init__(self, signal_number: int, message: str) -> None:
        super().__init__(message)
        self.signal_number = signal_number

    @property
    def exit_status(self) -> int:
        return SIGNAL_EXIT_BASE + self.signal_number

    @classmethod
    def status_of(cls, message: str) -> int:
        named = re.search(r"\bby (?:a second )?(SIG[A-Z0-9]+)\b", message)
        if named is None or named.group(1) not in signal.Signals.__members__:
            return SIGNAL_EXIT_BASE
        return SIGNAL_EXIT_BASE + signal.Signals[named.group(1)].value


class StoppedBeforeStart(StoppedBySignal):
    """A stop signal arrived before the first step: nothing to checkpoint, nothing lost."""

    def __init__(self, signal_number: int, name: str) -> None:
        super().__init__(signal_number,
                         f"stopped by {name} before the first training step; nothing was trained or written")


def problems_text(problems: Sequence[str], lead: str = "") -> str:
    """One problem as itself, several as an indented list under "N problems:"; `lead`
    ("the run cannot start") goes in front of either."""
    if len(problems) == 1:
        return f"{lead}: {problems[0]}" if lead else problems[0]
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return f"{lead + ', ' if lead else ''}{len(problems)} problems:\n{listed}"


def _expected_classes(root: type) -> Iterator[type]:
    for cls in root.__subclasses__():
        yield cls
        yield from _expected_classes(cls)


# Where the message of a relayed error ends: a blank line starts the next chained one.
_CHAINED = re.compile(r"\n\s*\n")


def _relayed_from_process(error: BaseException) -> bool:
    """Whether `error` is torch's ProcessRaisedException. Looked up among the loaded
    modules, not imported: only a loaded torch.multiprocessing raises one, and this module
    stays free of torch, so that an entry point can refuse a held OUTPUT_DIR at once."""
    module = sys.modules.get("torch.multiprocessing")
    relayed = getattr(module, "ProcessRaisedException", None)
    return relayed is not None and isinstance(error, relayed)


def expected_stop(error: BaseException) -> Optional[Tuple[int, str]]:
    """(exit status, one-line message) of an expected error or a stop, else None. A
    spawned process's error arrives as ProcessRaisedException, whose text ends with the
    child's traceback, "[module.]Name: message" (after any error it chains); the class is
    found again by its name, in the last such line."""
    if isinstance(error, (SlowmaskError, StoppedBySignal)):
        return error.exit_status, f"{type(error).__name__}: {error}"
    if _relayed_from_process(error):
        roots = (SlowmaskError, StoppedBySignal)
        classes = {cls.__name__: cls for root in roots for cls in (root, *_expected_classes(root))}
        text = str(error)
        raised = [m for m in re.finditer(r"^(?:[\w.]+\.)?(\w+): ", text, re.MULTILINE) if m.group(1) in classes]
        if raised:
            name = raised[-1].group(1)
            message = _CHAINED.split(text[raised[-1].end():], maxsplit=1)[0].strip()
            return classes[name].status_of(message), f"{name}: {message}"
    return None


def keep_traceback(error: BaseException, log_file: Optional[str]) -> str:
    """Append the traceback to `log_file`; returns where it went, for the message."""
    if log_file:
        try:
            with open(log_file, "a") as log:
                log.write("".join(traceback.format_exception(error)))
            return f"traceback in {log_file}"
        except OSError:
            pass
    return f"rerun with {DEBUG_FLAG} to see the traceback"


def run_tool(main: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None,
             log_file: Callable[[], Optional[str]] = lambda: None) -> int:
    """`main(argv)`, ending on an expected error with one line on stderr and its exit
    status. `--debug` (taken out of argv) lets the traceback through instead; `log_file()`
    names the file the traceback is appended to (the run's stdout.log, once known)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        return main(argv)
    except BaseException as error:
        stop = expected_stop(error)
        if stop is None or debug:
            raise
        status, message = stop
        where = "" if status == EXIT_STATUS["preempted"] else f" ({keep_traceback(error, log_file())})"
        sys.stderr.write(f"{message}{where}\n")
        return status

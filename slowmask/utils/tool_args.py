"""The command line every tool shares: a parser whose --help lists --debug, trailing
KEY VALUE config overrides with unknown options refused, and checks of the paths a tool
is given before it does anything slow.

`run_tool` (slowmask/utils/errors.py) takes --debug out of the arguments; the parser only
lists it, so that the flag every error message names is in every tool's --help.

Config overrides are the words argparse leaves over (`parse_known_args`): KEY VALUE pairs
anywhere among the options. A left-over word that starts with "--" is no config key (keys
are written without dashes): it is a mistyped or missing option, and a usage error (exit 2)
naming the tool's options and the closest one, not an "unknown config key" from the
config loader.
"""

import argparse
import difflib
import os
from typing import List, Optional, Sequence, Tuple

from slowmask.utils.errors import DEBUG_FLAG, UsageError

DEBUG_HELP = "on an expected error, show its traceback instead of one line"
# Names that other toolkits, and this project's other tools, give one option (export.py's
# --weights is probe.py's --checkpoint): a word of a group suggests the group's option the
# tool has, which spelling alone would not find.
SYNONYMS = (
    ("--checkpoint", "--weights", "--ckpt", "--resume", "--pretrained"),
    ("--out", "--output", "--output-dir", "--output_dir", "--out-dir", "--outdir"),
    ("--cfg", "--config", "--config-file", "--config_file", "--cfg-file"),
    ("--videos", "--list", "--input", "--inputs"),
)


def tool_parser(description: Optional[str]) -> argparse.ArgumentParser:
    """An ArgumentParser for a tool: `description` (the module docstring) kept as written,
    and --debug listed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    return parser


def option_names(parser: argparse.ArgumentParser) -> List[str]:
    """The long options of `parser` ("--cfg", ...), in the order they were added."""
    return [name for action in parser._actions for name in action.option_strings if name.startswith("--")]


def unknown_option_message(parser: argparse.ArgumentParser, word: str) -> str:
    """What to say about `word`, an option `parser` does not have: the closest option and
    the list of all."""
    options = [name for name in option_names(parser) if name not in ("--help", DEBUG_FLAG)]
    name = word.split("=", 1)[0]
    same = [option for group in SYNONYMS if name in group for option in group if option in options]
    bare = {option.lstrip("-"): option for option in options}  # the dashes every name shares are no likeness
    close = same or [bare[match] for match in difflib.get_close_matches(name.lstrip("-"), bare, n=1, cutoff=0.6)]
    hint = f"did you mean {close[0]}? " if close else ""
    return (f"unknown option {word}: {hint}the options are {', '.join(options)}; config overrides are "
            "KEY VALUE pairs without dashes")


def parse_with_overrides(parser: argparse.ArgumentParser,
                         argv: Optional[Sequence[str]]) -> Tuple[argparse.Namespace, List[str]]:
    """(options, KEY VALUE overrides) of `argv`; an unknown "--option" among the
    overrides ends the tool with a usage error (exit 2) from `parser`."""
    args, overrides = parser.parse_known_args(argv)
    unknown = [word for word in overrides if word.startswith("--")]
    if unknown:
        parser.error(unknown_option_message(parser, unknown[0]))
    return args, overrides


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a count: give 1 or more")
    return value


def check_output_file(path: str, flag: str, folder_may_be_missing: bool = False) -> None:
    """A file a tool will write at `path` (given as `flag`): refused at once when it names
    a folder or lies in a folder that does not exist, unless the tool creates that folder
    (`folder_may_be_missing`) and no file is in its way (UsageError)."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder: name the file to write in it, e.g. "
                         f"{os.path.join(path, 'NAME')}")
    folder = os.path.dirname(os.path.abspath(path))
    if folder_may_be_missing:
        while not os.path.exists(folder):
            folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist (or is not a folder); create it "
                         "or name a file in an existing one")


def check_output_folder(path: str, flag: str) -> None:
    """A folder a tool will write into at `path` (created when missing): refused at once
    when a file is there (UsageError)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a file, not a folder: name a folder (it is created when missing)")

"""The commands of the documentation work: every fenced block whose info string is
`bash tested` in README.md, INSTALL.md, GETTING_STARTED.md and the projects' READMEs is run,
in the order of its file, in a fresh folder that sees the repository's configs/ and tools/."""

import glob
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ("README.md", "INSTALL.md", "GETTING_STARTED.md") + tuple(
    os.path.relpath(path, REPO) for path in sorted(glob.glob(os.path.join(REPO, "projects", "*", "README.md")))
)
TESTED_BLOCK = re.compile(r"^```bash tested[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# What the commands may use from the repository, linked into their working folder.
LINKED = ("configs", "tools", "projects")


def marked_blocks(text: str):
    return [block.strip() for block in TESTED_BLOCK.findall(text)]


def docs_with_tested_blocks():
    found = []
    for name in DOCS:
        path = os.path.join(REPO, name)
        if os.path.exists(path) and marked_blocks(open(path).read()):
            found.append(name)
    return found


def test_the_marker_finds_blocks_and_leaves_others():
    text = "a\n```bash tested\necho one\n```\n```bash\necho two\n```\n```bash tested\necho three \\\n  four\n```\n"
    assert marked_blocks(text) == ["echo one", "echo three \\\n  four"]


def test_getting_started_has_tested_commands():
    assert "GETTING_STARTED.md" in docs_with_tested_blocks()


@pytest.mark.parametrize("doc", docs_with_tested_blocks())
def test_tested_commands_of_the_docs_pass(doc, tmp_path):
    for name in LINKED:
        os.symlink(os.path.join(REPO, name), tmp_path / name)
    script = "set -euo pipefail\n" + "\n".join(marked_blocks(open(os.path.join(REPO, doc)).read())) + "\n"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=REPO)
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{doc}: a tested command failed\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"

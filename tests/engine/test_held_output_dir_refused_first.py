"""A second run on a held OUTPUT_DIR is refused before torch, the models and the data are
imported: in a fraction of a second, not after the seconds those take."""

import json
import os
import subprocess
import sys

from slowmask.utils.output_files import RunLock
from tool_scripts import DEMO_CFG, REPO

# Runs tools/run_net.py's main in a fresh interpreter and prints its status, the seconds
# main took, and whether torch got imported.
PROBE = """
import json, runpy, sys, time
tool = runpy.run_path(sys.argv[1])
start = time.monotonic()
status = tool["main"](sys.argv[2:])
print(json.dumps({"status": status, "seconds": time.monotonic() - start, "torch": "torch" in sys.modules}))
"""


def test_a_held_output_dir_is_refused_before_torch_is_imported(tmp_path):
    out = tmp_path / "out"
    holder = RunLock(str(out))
    holder.acquire()
    try:
        finished = subprocess.run(
            [sys.executable, "-c", PROBE, os.path.join(REPO, "tools", "run_net.py"), "--cfg", DEMO_CFG,
             "OUTPUT_DIR", str(out)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO}, timeout=60,
        )
    finally:
        holder.release()
    outcome = json.loads(finished.stdout.splitlines()[-1])
    assert outcome["status"] == 6
    assert outcome["torch"] is False
    assert outcome["seconds"] < 1.0  # loading torch alone takes 1-4 s
    assert finished.stderr.startswith(f"OutputDirInUse: {out} is in use by another run (pid {os.getpid()} ")
    assert os.listdir(out) == []  # the holder's lock is gone with it; the refused run wrote nothing

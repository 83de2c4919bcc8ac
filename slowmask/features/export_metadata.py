"""What a user of an exported model needs beside it (tools/export.py writes it as a json
next to every export): the input it takes (mean, std, frames, sampling rate, crop, channel
order), the output it gives and its meaning, the class names when known, the config and
weights it came from.

The input is PySlowFast's test view: the short side resized to DATA.TEST_CROP_SIZE, the
centre square of that size cut, DATA.NUM_FRAMES frames DATA.SAMPLING_RATE apart at
DATA.TARGET_FPS, pixels as (x / 255 - mean) / std per RGB channel, channels reversed after
that when DATA.REVERSE_INPUT_CHANNEL (data/transforms.py).
"""

import json
import logging
import os
from typing import Any, Dict, List, Optional

from fvcore.common.config import CfgNode

from slowmask.utils.output_files import remove_quietly

logger = logging.getLogger(__name__)

# The class list tools/prepare_kinetics.py writes beside the split lists: {class name: index}.
CLASS_IDS_FILE = "classids.json"


def input_description(cfg: CfgNode) -> Dict[str, Any]:
    """The clips an exported model of `cfg` takes, as the test loader makes them."""
    data = cfg.DATA
    size = data.TEST_CROP_SIZE
    return {
        "shape": ["B", data.INPUT_CHANNEL_NUM[0], data.NUM_FRAMES, size, size],
        "layout": "B, C, T, H, W",
        "dtype": "float32",
        "mean": list(data.MEAN),
        "std": list(data.STD),
        "normalization": "(pixel / 255 - mean) / std per RGB channel",
        "channel_order": "BGR (normalized as RGB, then reversed)" if data.REVERSE_INPUT_CHANNEL else "RGB",
        "frames": data.NUM_FRAMES,
        "sampling_rate": data.SAMPLING_RATE,
        "target_fps": data.TARGET_FPS,
        "short_side": size,
        "crop_size": size,
        "view": "short side resized to short_side, centre crop_size square; frames sampling_rate apart at target_fps",
    }


def class_names(data_dir: str, num_classes: int) -> Optional[List[str]]:
    """The class names of DATA_DIR/classids.json ({name: index}) in index order, or None
    when there is no such file, or (with a warning) when it does not name exactly the
    indices 0 .. num_classes - 1."""
    path = os.path.join(data_dir, CLASS_IDS_FILE) if data_dir else ""
    if not path or not os.path.isfile(path):
        return None
    with open(path) as f:
        ids = json.load(f)
    by_index = {int(index): name for name, index in ids.items()}
    if sorted(by_index) != list(range(num_classes)):
        logger.warning("%s names %d classes (indices %s), not the model's %d (MODEL.NUM_CLASSES): the export "
                       "metadata holds no class names", path, len(by_index), sorted(by_index)[:5], num_classes)
        return None
    return [by_index[index] for index in range(num_classes)]


def metadata_path(output: str) -> str:
    """Where the metadata of the export at `output` goes: OUTPUT.json beside a file,
    export.json inside a folder."""
    return os.path.join(output, "export.json") if os.path.isdir(output) else f"{output}.json"


def write_metadata(path: str, fields: Dict[str, Any]) -> None:
    """Write `fields` as indented json at `path`, atomically (temporary file, renamed)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as f:
            json.dump(fields, f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    finally:
        remove_quietly(temporary)

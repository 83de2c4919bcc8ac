"""Checkpoints as safetensors: a model's weights with no pickle at all (tools/export.py
--format pyth-safe), read wherever a checkpoint is read (files.read_checkpoint).

A safetensors file is an 8-byte little-endian header size, a JSON header (each tensor's
dtype, shape and byte range; `__metadata__`, a dict of strings) and the tensors' bytes:
reading it runs no code. slowmask writes the `model_state` (PySlowFast's names, as in a
.pyth) as its tensors and, in the metadata, what a reader needs: `format`
("slowmask-checkpoint"), `epoch` (0-based, as in a .pyth; absent for weights no run
trained), `cfg` (the YAML string) and `crc32` (a JSON {tensor name: CRC-32 of its bytes}).

What a read checks: the safetensors library checks the header (valid JSON; every tensor's
byte range inside the file, in order, without gaps or overlaps, and of the size its dtype
and shape need: a truncated file or an edited header is refused). Then each tensor's bytes
are checked against its CRC-32 (the guarantee a .pyth's zip CRCs give): a flipped bit is
refused naming the tensor. A safetensors file of another program carries no CRC-32s: its
header alone is checked, with a warning saying so. Errors are ValueErrors whose message
names the file, the cause and the fix; files.read_checkpoint raises them as CheckpointErrors.
"""

import json
import logging
import os
import zlib
from typing import Any, Dict, Mapping, Optional, Tuple

from iopath.common.file_io import g_pathmgr
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from slowmask.utils.output_files import remove_quietly

logger = logging.getLogger(__name__)

FORMAT = "slowmask-checkpoint"
# The header size field, and the first byte of the JSON header it announces.
_SIZE_BYTES = 8


def is_safetensors(data: bytes) -> bool:
    """Whether `data` is laid out as a safetensors file: a header size that fits the
    file, followed by a JSON object. A torch zip starts "PK", a legacy torch pickle with a
    size far beyond its file: neither passes."""
    if len(data) <= _SIZE_BYTES:
        return False
    size = int.from_bytes(data[:_SIZE_BYTES], "little")
    return 2 <= size <= len(data) - _SIZE_BYTES and data[_SIZE_BYTES : _SIZE_BYTES + 1] == b"{"


def _header(data: bytes) -> Tuple[Dict[str, Any], int]:
    """The JSON header of a safetensors file (already checked by the library) and the
    offset of its data section."""
    size = int.from_bytes(data[:_SIZE_BYTES], "little")
    return json.loads(data[_SIZE_BYTES : _SIZE_BYTES + size]), _SIZE_BYTES + size


def tensor_crcs(data: bytes) -> Dict[str, int]:
    """{tensor name: CRC-32 of its bytes} of a safetensors file's data section."""
    header, start = _header(data)
    return {
        name: zlib.crc32(data[start + entry["data_offsets"][0] : start + entry["data_offsets"][1]])
        for name, entry in header.items() if name != "__metadata__"
    }


def safetensors_bytes(model_state: Mapping[str, Tensor], epoch: Optional[int], cfg_yaml: str) -> bytes:
    """A model state as a safetensors file's bytes, with `epoch`, `cfg` and each tensor's
    CRC-32 in its metadata. The data section does not depend on the metadata, so the CRCs
    taken from a first serialization hold for the second."""
    tensors = {name: value.detach().cpu().contiguous() for name, value in model_state.items()}
    metadata = {"format": FORMAT, "cfg": cfg_yaml}
    if epoch is not None:
        metadata["epoch"] = str(int(epoch))
    metadata["crc32"] = json.dumps(tensor_crcs(save_safetensors(tensors, metadata)), sort_keys=True)
    return save_safetensors(tensors, metadata)


def write_safetensors_checkpoint(path: str, model_state: Mapping[str, Tensor], epoch: Optional[int],
                                 cfg_yaml: str) -> None:
    """Write `model_state` as a safetensors checkpoint at `path`, through a temporary file
    renamed into place (a failed write leaves nothing)."""
    data = safetensors_bytes(model_state, epoch, cfg_yaml)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with g_pathmgr.open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        remove_quietly(temporary)


def read_safetensors_checkpoint(path: str, data: bytes) -> Dict[str, Any]:
    """The checkpoint dict of a safetensors file's bytes: `model_state`, and `epoch` and
    `cfg` when its metadata holds them.

    Raises:
        ValueError: the header is malformed or does not fit the file, or a tensor fails
            its CRC-32.
    """
    try:
        model_state = load_safetensors(data)
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors checkpoint: {error} (a truncated copy, or an edited header); "
            "copy it again from its source"
        ) from None
    metadata = _header(data)[0].get("__metadata__") or {}
    _check_crcs(path, data, metadata)
    state: Dict[str, Any] = {"model_state": model_state}
    if "epoch" in metadata:
        state["epoch"] = int(metadata["epoch"])
    if "cfg" in metadata:
        state["cfg"] = metadata["cfg"]
    return state


def _check_crcs(path: str, data: bytes, metadata: Mapping[str, str]) -> None:
    """Each tensor's bytes against the CRC-32 the metadata holds for it (a warning when
    it holds none: a file of another program)."""
    if "crc32" not in metadata:
        logger.warning("%s carries no CRC-32s of its tensors (not written by slowmask): only its header was "
                       "checked, a flipped bit in its values would go unnoticed", path)
        return
    expected = {name: int(crc) for name, crc in json.loads(metadata["crc32"]).items()}
    found = tensor_crcs(data)
    damaged = sorted(name for name in set(expected) | set(found) if expected.get(name) != found.get(name))
    if damaged:
        raise ValueError(
            f"{path} is damaged: its tensor {damaged[0]} fails its CRC-32 check"
            f"{f' ({len(damaged) - 1} more)' if len(damaged) > 1 else ''} (its bytes changed after it was written: "
            "a disk, memory or copy error); copy it again from its source, or export it again"
        )

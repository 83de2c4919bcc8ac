"""Reading back what an offline W&B run wrote (tests of WANDB.ENABLE)."""

import struct
from typing import List

from wandb.proto import wandb_internal_pb2

# W&B's transaction log (.wandb): a 7-byte header, then records in 32 KiB blocks, each
# record's pieces behind a 7-byte header (CRC-32, length, piece kind), protobuf payloads.
BLOCK, HEADER, FULL, LAST = 32768, 7, 1, 4


def wandb_records(path: str) -> List[wandb_internal_pb2.Record]:
    """The protobuf Records of an offline run's .wandb file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    position, pending, records = HEADER, b"", []
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:  # the block's zero padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        if kind == 0:
            break
        pending += data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records

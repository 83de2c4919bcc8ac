"""Per-item random generators.

Every random choice a dataset makes for an item (window, crop, flip, mask, a
replacement video) comes from a `torch.Generator` seeded from (seed, epoch, index)
only. The item is then the same whichever worker, rank or process builds it, and a
resumed run sees the same data; the global RNGs are never used.
"""

import hashlib

import torch


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that mixes the three numbers (nearby triples give unrelated seeds)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded with `item_seed(seed, epoch, index)`."""
    generator = torch.Generator()
    generator.manual_seed(item_seed(seed, epoch, index))
    return generator

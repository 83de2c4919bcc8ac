"""The decoding backends the data tests run on: torchcodec, an optional extra, only where
it loads (its tests skip, saying what is missing, elsewhere)."""

import pytest

try:
    import slowmask.data.decoders.torchcodec_video  # noqa: F401  (loads torchcodec and FFmpeg's libraries)

    TORCHCODEC_MISSING = ""
except ImportError as error:
    TORCHCODEC_MISSING = str(error)

needs_torchcodec = pytest.mark.skipif(bool(TORCHCODEC_MISSING), reason=TORCHCODEC_MISSING)
TORCHCODEC = pytest.param("torchcodec", marks=needs_torchcodec)
# Every backend, for the tests whose behaviour they all share.
BACKENDS = ("pyav", "decord", TORCHCODEC)

"""With DATA.DECODING_BACKEND decord, the files decord would misread or cannot open are
read with PyAV, one warning per file, so a decord run loses no video: an animated GIF
(decord cannot measure its length) and a DVD .vob (an MPEG program stream, no timeline)."""

import logging

import av
import pytest
from counting_video import COUNTING_SIZE, counting_frames, frame_numbers

from slowmask.data.decoders import video as decoding
from slowmask.data.decoders.video import open_video
from slowmask.data.decoders.pyav_video import PyAVVideo

NUM_FRAMES = 20
# File name -> (container format, encoder, pixel format).
FILES = {"animated.gif": ("gif", "gif", "rgb8"), "dvd.vob": ("vob", "mpeg2video", "yuv420p")}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder, paths = tmp_path_factory.mktemp("decord_fallback"), {}
    for name, (container_format, codec, pixel_format) in FILES.items():
        paths[name] = str(folder / name)
        with av.open(paths[name], "w", format=container_format) as container:
            stream = container.add_stream(codec, rate=10)
            stream.height, stream.width = COUNTING_SIZE
            stream.pix_fmt = pixel_format
            stream.bit_rate = 4_000_000  # MPEG-2's default rate blurs the greys by more than a step
            for image in counting_frames(NUM_FRAMES):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    return paths


@pytest.mark.parametrize("name", sorted(FILES))
def test_decord_hands_the_file_to_pyav_and_says_so_once(files, name, caplog, monkeypatch):
    monkeypatch.setattr(decoding, "_fallbacks_warned", set())
    with caplog.at_level(logging.WARNING, logger="slowmask.data.decoders.video"):
        with open_video(files[name], "decord") as video:
            assert isinstance(video, PyAVVideo) and video.num_frames == NUM_FRAMES
            assert frame_numbers(video.get_frames([0, 7, 19, 7])) == [0, 7, 19, 7]
        with open_video(files[name], "decord", short_side=16) as video:
            assert isinstance(video, PyAVVideo)
            assert tuple(video.get_frames([3]).shape) == (1, 16, 32, 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("decord cannot ") and files[name] in warnings[0]
    assert warnings[0].endswith("; decoding it with pyav instead")


def test_a_file_no_backend_reads_is_still_a_decode_error(tmp_path):
    path = tmp_path / "noise.gif"
    path.write_bytes(b"GIF89a" + bytes(range(200)))
    with pytest.raises(decoding.DecodeError, match=r"cannot read the header of .*noise\.gif"):
        open_video(str(path), "decord")

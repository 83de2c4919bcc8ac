"""A label that is a number but not an integer is named as such, wherever its line is;
only a first line whose label is not a number is taken for a header."""

import pytest

from slowmask.data.datasets.video_list import ListFormatError, read_video_list


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "train.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, line, label", [("a.mp4 1.0\n", 1, "1.0"), ("a.mp4 1\nb.mp4 2e0\n", 2, "2e0")])
def test_a_fractional_label_is_not_an_integer(tmp_path, text, line, label):
    path = _write(tmp_path, text)
    with pytest.raises(ListFormatError) as raised:
        read_video_list(path)
    message = str(raised.value)
    assert message.startswith(f"{path}, line {line} (")
    assert f"label {label!r} is not an integer: a label is a class index (0, 1, ...)" in message
    assert "header" not in message


def test_a_first_line_of_words_is_still_a_header(tmp_path):
    path = _write(tmp_path, "path label\na.mp4 1\n")
    with pytest.raises(ListFormatError, match=r"line 1 \('path label'\) looks like a header"):
        read_video_list(path)

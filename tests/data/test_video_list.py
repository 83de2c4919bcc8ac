import pytest

from slowmask.data.video_list import read_video_list


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "train.csv"
    path.write_text(text)
    return str(path)


def test_space_comma_and_prefix(tmp_path):
    path = _write(tmp_path, "a.mp4 3\nb.mp4,1\n\nmy video.mp4 2\nunlabelled.mp4\n")
    assert read_video_list(path, prefix="/data") == [
        ("/data/a.mp4", 3),
        ("/data/b.mp4", 1),
        ("/data/my video.mp4", 2),
        ("/data/unlabelled.mp4", 0),
    ]
    assert read_video_list(path, separator=",")[1] == ("b.mp4", 1)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        read_video_list(str(tmp_path / "nothing.csv"))


def test_empty_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"train\.csv is empty"):
        read_video_list(_write(tmp_path, "\n  \n"))


def test_bad_label_names_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"train\.csv, line 2: label 'dog' is not an integer"):
        read_video_list(_write(tmp_path, "a.mp4 1\nb.mp4 dog\n"))

"""Video lists as people write them: spaces and commas in paths, quotes, a byte-order
mark, extra columns; each malformed line is named, and stops a run with the data status."""

import os
import shutil

import pytest

from slowmask.data.datasets.frame_folder import read_frame_list
from slowmask.data.datasets.video_list import ListFormatError, ListNotFoundError, read_list, read_video_list
from slowmask.utils.errors import EXIT_STATUS
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")


def _write(tmp_path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "train.csv"
    path.write_bytes(text.encode(encoding))
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


def test_the_label_is_after_the_last_separator_of_any_kind(tmp_path):
    path = _write(tmp_path, "path with spaces.mp4,1\nclips, vol 2/take one.mp4 4\nc.mp4\t5\nd.mp4, 6,\n")
    assert read_video_list(path) == [
        ("path with spaces.mp4", 1), ("clips, vol 2/take one.mp4", 4), ("c.mp4", 5), ("d.mp4", 6),
    ]


def test_a_custom_separator_splits_like_the_others(tmp_path):
    assert read_video_list(_write(tmp_path, "a b|c.mp4|7\n"), separator="|") == [("a b|c.mp4", 7)]


def test_quoted_paths_hold_anything(tmp_path):
    text = '"take 2" 3\n"say ""hi"".mp4",1\n" lead.mp4" 0\n"only a path.mp4"\n'
    assert read_video_list(_write(tmp_path, text)) == [
        ("take 2", 3), ('say "hi".mp4', 1), (" lead.mp4", 0), ("only a path.mp4", 0),
    ]


def test_a_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    assert read_video_list(_write(tmp_path, "a.mp4,3\r\nb.mp4,1\r\n", encoding="utf-8-sig")) == [
        ("a.mp4", 3), ("b.mp4", 1),
    ]
    frames = tmp_path / "frames.csv"
    frames.write_bytes("original_vido_id video_id frame_id path labels\nv 0 0 v/1.jpg 2\n".encode("utf-8-sig"))
    assert read_frame_list(str(frames)).frames == {"v": ["v/1.jpg"]}


@pytest.mark.parametrize("line, column", [("path 0 7", "'0'"), ("a.mp4,0,7", "'0'"), ("my clip.mp4 1 2 3", "'2'")])
def test_an_extra_column_is_named_with_its_line(tmp_path, line, column):
    with pytest.raises(ListFormatError) as caught:
        read_video_list(_write(tmp_path, f"a.mp4 1\n{line}\n"))
    assert str(caught.value) == (
        f"{tmp_path / 'train.csv'}, line 2: an extra column {column} before the label ({line!r}); the list has "
        f"2 columns (path label): remove it, or write a path that ends in {column} in double quotes"
    )
    assert caught.value.exit_status == EXIT_STATUS["data"]


def test_a_dataset_that_defines_more_columns_reads_them(tmp_path):
    rows = read_list(_write(tmp_path, "my clip.mp4 3 10 20\n\"b 1\" 4 0 5\n"), ("path", "label", "start", "end"))
    assert [(row.number, row.fields) for row in rows] == [
        (1, ["my clip.mp4", "3", "10", "20"]), (2, ["b 1", "4", "0", "5"]),
    ]
    with pytest.raises(ListFormatError, match=r"line 1: 3 columns \('a.mp4 3 10'\) where the list has 4"):
        read_list(_write(tmp_path, "a.mp4 3 10\n"), ("path", "label", "start", "end"))


@pytest.mark.parametrize("text, problem", [
    ('a.mp4 1\n"open.mp4 2\n', r"line 2: the quote that opens the path is not closed"),
    ('"a"b.mp4 1\n', r"line 1: a separator must follow the closing quote of the path"),
    ("a.mp4 1\nmy video.mp4\n", r"line 2: label 'video.mp4' is not an integer \(the label is the last field; "
                                r"write a path without a label that holds a space or a comma in double quotes\)"),
])
def test_malformed_lines_are_named(tmp_path, text, problem):
    with pytest.raises(ListFormatError, match=problem):
        read_video_list(_write(tmp_path, text))


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    with pytest.raises(ListFormatError, match=r"train\.csv, line 2: not UTF-8 text \(byte 0xe9\); save the list as UTF-8"):
        read_video_list(_write(tmp_path, "a.mp4 1\ncaf\u00e9.mp4 2\n", encoding="latin-1"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ListNotFoundError, match="video list not found: .*nothing.csv") as caught:
        read_video_list(str(tmp_path / "nothing.csv"))
    assert isinstance(caught.value, FileNotFoundError) and caught.value.exit_status == EXIT_STATUS["data"]


def test_empty_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"train\.csv is empty"):
        read_video_list(_write(tmp_path, "\ufeff\n  \n"))


def test_bad_label_names_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"train\.csv, line 2: label 'dog' is not an integer"):
        read_video_list(_write(tmp_path, "a.mp4 1\nb.mp4 dog\n"))


def test_a_run_reads_paths_with_spaces_and_stops_on_an_extra_column(demo_data_dir, tmp_path, capsys):
    run_net = load_tool("run_net")

    data = tmp_path / "my data"
    shutil.copytree(os.path.join(demo_data_dir, "videos"), data / "my videos")
    for split in ("train", "val", "test"):
        rows = read_video_list(os.path.join(demo_data_dir, f"{split}.csv"))[:4]
        lines = [f"{path.replace(demo_data_dir + '/videos', str(data / 'my videos'))},{label}" for path, label in rows]
        (data / f"{split}.csv").write_text("\ufeff" + "\n".join(lines) + "\n")
    args = ["--cfg", FT_CFG, "--check", "DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(tmp_path / "out"),
            "DATA_LOADER.NUM_WORKERS", "0", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
            "DATA.DECODING_SHORT_SIZE", "40", "TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.BATCH_SIZE", "4"]
    assert run_net.main(args) == 0
    first = lines[0].rsplit(",", 1)[0]
    (data / "val.csv").write_text(f"{first} 0 1\n")
    capsys.readouterr()
    assert run_net.main(args) == EXIT_STATUS["data"]
    assert "val.csv, line 1: an extra column '0' before the label" in capsys.readouterr().err

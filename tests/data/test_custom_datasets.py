"""Datasets registered from the user's own modules (DATA.CUSTOM_MODULES, imported when the
config is loaded), chosen by config only; the base class and the names kept for old code."""

import sys
import textwrap

import pytest
import torch

from slowmask.config import load_config
from slowmask.data import DATASET_REGISTRY, ClipDataset, build_dataset
from slowmask.utils.custom_modules import CustomModuleError, import_custom_modules

DATASET_FILE = """
from slowmask.data import DATASET_REGISTRY, ClipDataset, read_video_list

@DATASET_REGISTRY.register()
class {name}(ClipDataset):
    @classmethod
    def list_videos(cls, data_dir, split):
        return read_video_list(data_dir + "/" + split + ".csv")[:3]
"""


def write_dataset_module(folder, name) -> str:
    path = folder / f"{name.lower()}.py"
    path.write_text(textwrap.dedent(DATASET_FILE.format(name=name)))
    return str(path)


def test_a_file_path_registers_its_dataset_once(tmp_path, tiny_cfg):
    path = write_dataset_module(tmp_path, "FileListed")
    load_config(None, ["DATA.CUSTOM_MODULES", f"['{path}']"])
    tiny_cfg.TRAIN.DATASET = "filelisted"
    dataset = build_dataset(tiny_cfg, "train")
    assert type(dataset).__name__ == "FileListed" and len(dataset) == 3
    assert dataset[1]["clip"].shape == (3, 4, 32, 32)
    import_custom_modules([path])  # a second import does not register twice
    assert [name for name, _ in DATASET_REGISTRY].count("FileListed") == 1


def test_a_module_name_on_the_path_registers_its_dataset(tmp_path, tiny_cfg, monkeypatch):
    write_dataset_module(tmp_path, "ByName")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_config(None, ["DATA.CUSTOM_MODULES", "['byname']"])
    tiny_cfg.TRAIN.DATASET = "ByName"
    assert type(build_dataset(tiny_cfg, "train")).__name__ == "ByName"
    assert "byname" in sys.modules


def test_unregistered_name_lists_the_registered_and_says_how_to_register(tiny_cfg):
    tiny_cfg.TRAIN.DATASET = "my_missing_data"
    with pytest.raises(KeyError) as error:
        build_dataset(tiny_cfg, "train")
    message = str(error.value)
    assert "'my_missing_data'" in message and "Kinetics" in message and "video_folder" in message
    assert "@DATASET_REGISTRY.register()" in message and "DATA.CUSTOM_MODULES" in message


@pytest.mark.parametrize(
    "entry, message",
    [("no_such_module_xyz", "cannot import 'no_such_module_xyz'"), ("/nowhere/data.py", "file not found")],
)
def test_bad_custom_module_entries_fail_clearly_when_the_config_is_loaded(entry, message):
    with pytest.raises(CustomModuleError, match=message) as error:
        load_config(None, ["DATA.CUSTOM_MODULES", f"['{entry}']"])
    assert error.value.exit_status == 2 and str(error.value).startswith("DATA.CUSTOM_MODULES: ")


def test_a_subclass_without_list_videos_says_what_to_define(tiny_cfg):
    class Unfinished(ClipDataset):
        pass

    with pytest.raises(NotImplementedError, match=r"Unfinished must define .*list_videos\(data_dir, split\)"):
        Unfinished.from_config(tiny_cfg, "train")


def test_an_empty_listing_fails_clearly(tiny_cfg):
    class Empty(ClipDataset):
        @classmethod
        def list_videos(cls, data_dir, split):
            return []

    with pytest.raises(ValueError, match="Empty.list_videos.*found no videos"):
        Empty.from_config(tiny_cfg, "val")


def test_base_class_items_match_kinetics(tiny_cfg):
    from slowmask.data import Kinetics, read_video_list

    class Listed(ClipDataset):
        @classmethod
        def list_videos(cls, data_dir, split):
            return read_video_list(f"{data_dir}/{split}.csv")

    ours, reference = Listed.from_config(tiny_cfg, "test"), Kinetics.from_config(tiny_cfg, "test")
    assert len(ours) == len(reference) == 4 * 2 * 3
    assert torch.equal(ours[5]["clip"], reference[5]["clip"])


def test_the_former_names_are_the_same_classes_and_kinetics_reads_any_path_label_list(tiny_cfg):
    from slowmask.data import Kinetics, VideoDataset, VideoListDataset

    assert VideoDataset is ClipDataset and Kinetics is VideoListDataset
    tiny_cfg.TRAIN.DATASET = "kinetics"  # the name configs use, case ignored
    assert type(build_dataset(tiny_cfg, "train")) is VideoListDataset

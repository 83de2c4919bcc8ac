import glob
import os

import pytest

from slowmask.config import ConfigError, get_cfg, load_config
from slowmask.data.build import build_video_opener

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S_PT = os.path.join(REPO, "configs", "k400_MViT_S_MaskFeat_PT.yaml")
ALL_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=os.path.basename)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.is_frozen()


def test_defaults_load_and_are_mutable():
    cfg = get_cfg()
    cfg.DATA.NUM_FRAMES = 4
    assert load_config().DATA.NUM_FRAMES == 8


def test_file_then_overrides(tmp_path):
    path = write(tmp_path, "a.yaml", "DATA:\n  NUM_FRAMES: 4\nSOLVER:\n  BASE_LR: 1\n")
    cfg = load_config(path, ["DATA.SAMPLING_RATE", "2", "SOLVER.COSINE_END_LR", "1e-6"])
    assert cfg.DATA.NUM_FRAMES == 4 and cfg.DATA.SAMPLING_RATE == 2
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.COSINE_END_LR == 1e-6


def test_base_inheritance(tmp_path):
    write(tmp_path, "base.yaml", "DATA:\n  NUM_FRAMES: 4\n  SAMPLING_RATE: 2\n")
    child = write(tmp_path, "child.yaml", "_BASE_: base.yaml\nDATA:\n  SAMPLING_RATE: 3\n")
    cfg = load_config(child)
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (4, 3)


def test_unknown_key_in_file_names_key_and_suggestion(tmp_path):
    path = write(tmp_path, "bad.yaml", "DATA:\n  NUM_FRAME: 4\n")
    with pytest.raises(ConfigError, match=r"DATA\.NUM_FRAME .*bad\.yaml.*did you mean DATA\.NUM_FRAMES"):
        load_config(path)


def test_key_in_wrong_section_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"TRAIN\.NUM_FRAMES.*did you mean DATA\.NUM_FRAMES"):
        load_config(None, ["TRAIN.NUM_FRAMES", "4"])


def test_wrong_type_names_key_expected_and_given():
    with pytest.raises(ConfigError, match=r"DATA\.NUM_FRAMES .*expects int.*got str 'many'"):
        load_config(None, ["DATA.NUM_FRAMES", "many"])


def test_section_given_a_value():
    with pytest.raises(ConfigError, match="DATA .*section"):
        load_config(None, ["DATA", "3"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_config("nowhere.yaml")


def test_odd_overrides():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["DATA.NUM_FRAMES"])


def test_crop_not_divisible_by_patch_stride():
    with pytest.raises(ConfigError, match=r"TRAIN_CROP_SIZE.*MVIT\.PATCH_STRIDE"):
        load_config(S_PT, ["DATA.TRAIN_CROP_SIZE", "226"])


def test_prediction_depth_past_last_block():
    with pytest.raises(ConfigError, match=r"MASK\.PRETRAIN_DEPTH \[16\].*MVIT\.DEPTH - 1 = 15"):
        load_config(S_PT, ["MASK.PRETRAIN_DEPTH", "[16]"])


@pytest.mark.parametrize("ratio", ["0.0", "1.0", "1.5"])
def test_mask_ratio_outside_open_interval(ratio):
    with pytest.raises(ConfigError, match="AUG.MASK_RATIO must lie in"):
        load_config(S_PT, ["AUG.MASK_RATIO", ratio])


def test_mask_window_must_divide_prediction_grid():
    with pytest.raises(ConfigError, match=r"AUG\.MASK_WINDOW_SIZE \[8, 5, 5\].*prediction grid \[8, 14, 14\]"):
        load_config(S_PT, ["AUG.MASK_WINDOW_SIZE", "[8, 5, 5]"])


def test_unsupported_choice():
    with pytest.raises(ConfigError, match="SOLVER.LR_POLICY is 'steps'; supported: 'cosine', 'constant'"):
        load_config(None, ["SOLVER.LR_POLICY", "steps"])


def test_a_decoding_backend_is_checked_by_the_opener_it_builds():
    cfg = load_config(None, ["DATA.DECODING_BACKEND", "opencv"])
    with pytest.raises(ConfigError, match="DATA.DECODING_BACKEND is 'opencv'; supported: 'pyav', 'decord'"):
        build_video_opener(cfg)


def test_features_not_built_yet_fail_instead_of_being_ignored():
    with pytest.raises(ConfigError, match=r"not available yet: AUG\.RE_SPLIT"):
        load_config(S_PT, ["AUG.RE_SPLIT", "True"])


def test_warmup_longer_than_training():
    with pytest.raises(ConfigError, match=r"SOLVER.WARMUP_EPOCHS \(10.0\) must lie in \[0, SOLVER.MAX_EPOCH = 5\)"):
        load_config(S_PT, ["SOLVER.MAX_EPOCH", "5"])


def test_every_unknown_key_and_wrong_type_is_reported_at_once(tmp_path):
    path = write(tmp_path, "bad.yaml", "DATA:\n  NUM_FRAME: 4\nSOLVER:\n  BASE_LR: fast\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["TRAIN.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "often"])
    problems = caught.value.problems
    assert len(problems) == 4
    assert str(caught.value).splitlines()[0] == "4 problems:"
    for expected in ("DATA.NUM_FRAME (", "SOLVER.BASE_LR (", "TRAIN.NUM_FRAMES (command line)", "DATA.SAMPLING_RATE (command line)"):
        assert sum(expected in problem for problem in problems) == 1, expected


def test_every_failed_check_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        load_config(S_PT, ["AUG.MASK_RATIO", "1.5", "SOLVER.LR_POLICY", "steps", "SOLVER.MAX_EPOCH", "5"])
    problems = caught.value.problems
    assert [p.split(" ", 1)[0] for p in problems] == ["SOLVER.LR_POLICY", "AUG.MASK_RATIO", "SOLVER.WARMUP_EPOCHS"]

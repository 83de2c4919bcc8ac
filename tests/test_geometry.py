"""The ground floor's grids and strides, against values worked out by hand."""

import pytest

from slowmask.config import load_config
from slowmask.geometry import TokenGeometry, block_grids, token_grid, world_size


def test_token_grid_is_the_convolution_output_size():
    # (16 + 2*1 - 3) // 2 + 1 = 8 frames; (224 + 2*3 - 7) // 4 + 1 = 56 rows and columns.
    assert token_grid((16, 224, 224), (3, 7, 7), (2, 4, 4), (1, 3, 3)) == (8, 56, 56)


def test_block_grids_round_up_at_each_query_pooling():
    grids = block_grids((8, 7, 7), [[1, 1, 2, 2], [3, 1, 2, 2]], depth=4)
    assert grids == [(8, 7, 7), (8, 4, 4), (8, 4, 4), (8, 2, 2)]


def test_mvit_recipe_geometry():
    geometry = TokenGeometry.from_config(load_config("configs/k400_MViT_L_MaskFeat_PT.yaml"))
    assert geometry.token_grid == (8, 56, 56)
    # Patch stride (2, 4, 4) times the query pooling (1, 2, 2) of blocks 2 and 8, up to block 15.
    assert geometry.prediction_stride == (2, 16, 16)
    assert geometry.prediction_grid == (8, 14, 14)
    assert geometry.first_token_centre == (0, 0, 0)  # kernel // 2 - padding = 3 // 2 - 1, 7 // 2 - 3


def test_image_patch_embedding_is_the_one_frame_case():
    cfg = load_config("configs/in1k_ViT_B_MaskFeat_PT.yaml")
    geometry = TokenGeometry.from_config(cfg)
    assert (geometry.kernel, geometry.stride, geometry.padding) == ((1, 16, 16), (1, 16, 16), (0, 0, 0))
    assert geometry.token_grid == (1, 14, 14)
    assert geometry.prediction_stride == (1, 16, 16)


@pytest.mark.parametrize("gpus, shards, processes", [(0, 1, 1), (0, 3, 3), (8, 1, 8), (8, 4, 32)])
def test_world_size_counts_one_process_per_gpu_or_one_per_cpu_machine(gpus, shards, processes):
    assert world_size(gpus, shards) == processes

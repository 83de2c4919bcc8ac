"""PySlowFast's keys that slowmask accepts but does not use.

A PySlowFast yaml, or the full config dump a PySlowFast checkpoint carries, names keys
of features slowmask does not build (detection, multigrid, contrastive models, other
backbones, the demo ...). They are declared here, with PySlowFast's defaults, so such a
file loads unchanged; `load_config` reports the ones a file sets in one log line. The
switches in UNSUPPORTED_SWITCHES would change the model or the training, so they must
keep their values: a config that turns one on fails instead of being silently ignored.
"""

import logging
from typing import Any, Dict, List, Set, Tuple

from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)

# Full key -> PySlowFast's default, by the PySlowFast feature that reads it.
UNUSED_KEYS: Dict[str, Any] = {
    # Contrastive methods (MoCo, SimCLR, BYOL, SwAV): other pretraining models, not built here.
    "CONTRASTIVE.T": 0.07,
    "CONTRASTIVE.DIM": 128,
    "CONTRASTIVE.LENGTH": 239975,
    "CONTRASTIVE.QUEUE_LEN": 65536,
    "CONTRASTIVE.MOMENTUM": 0.5,
    "CONTRASTIVE.MOMENTUM_ANNEALING": False,
    "CONTRASTIVE.TYPE": "mem",
    "CONTRASTIVE.INTERP_MEMORY": False,
    "CONTRASTIVE.MEM_TYPE": "1d",
    "CONTRASTIVE.NUM_CLASSES_DOWNSTREAM": 400,
    "CONTRASTIVE.NUM_MLP_LAYERS": 1,
    "CONTRASTIVE.MLP_DIM": 2048,
    "CONTRASTIVE.BN_MLP": False,
    "CONTRASTIVE.BN_SYNC_MLP": False,
    "CONTRASTIVE.LOCAL_SHUFFLE_BN": True,
    "CONTRASTIVE.MOCO_MULTI_VIEW_QUEUE": False,
    "CONTRASTIVE.DELTA_CLIPS_MIN": float("-inf"),
    "CONTRASTIVE.DELTA_CLIPS_MAX": float("inf"),
    "CONTRASTIVE.PREDICTOR_DEPTHS": [],
    "CONTRASTIVE.SEQUENTIAL": False,
    "CONTRASTIVE.SIMCLR_DIST_ON": True,
    "CONTRASTIVE.SWAV_QEUE_LEN": 0,
    "CONTRASTIVE.KNN_ON": True,
    # Visualization of masks inside PySlowFast's training loop (slowmask: tools/visualize.py).
    "VIS_MASK.ENABLE": False,
    # ResNet / SlowFast backbones: other model families, not built here.
    "RESNET.TRANS_FUNC": "bottleneck_transform",
    "RESNET.NUM_GROUPS": 1,
    "RESNET.WIDTH_PER_GROUP": 64,
    "RESNET.INPLACE_RELU": True,
    "RESNET.STRIDE_1X1": False,
    "RESNET.ZERO_INIT_FINAL_BN": False,
    "RESNET.ZERO_INIT_FINAL_CONV": False,
    "RESNET.DEPTH": 50,
    "RESNET.NUM_BLOCK_TEMP_KERNEL": [[3], [4], [6], [3]],
    "RESNET.SPATIAL_STRIDES": [[1], [2], [2], [2]],
    "RESNET.SPATIAL_DILATIONS": [[1], [1], [1], [1]],
    # X3D backbones: not built here.
    "X3D.WIDTH_FACTOR": 1.0,
    "X3D.DEPTH_FACTOR": 1.0,
    "X3D.BOTTLENECK_FACTOR": 1.0,
    "X3D.DIM_C5": 2048,
    "X3D.DIM_C1": 12,
    "X3D.SCALE_RES2": False,
    "X3D.BN_LIN5": False,
    "X3D.CHANNELWISE_3x3x3": True,
    # Non-local blocks of ResNets: not built here.
    "NONLOCAL.LOCATION": [[[]], [[]], [[]], [[]]],
    "NONLOCAL.GROUP": [[1], [1], [1], [1]],
    "NONLOCAL.INSTANTIATION": "dot_product",
    "NONLOCAL.POOL": [[[1, 2, 2], [1, 2, 2]]] * 4,
    # Keys of the convolutional models (architecture lists, drop-connect, frozen BN); fp16 all-reduce.
    "MODEL.SINGLE_PATHWAY_ARCH": ["2d", "c2d", "i3d", "slow", "x3d", "mvit", "maskmvit"],
    "MODEL.MULTI_PATHWAY_ARCH": ["slowfast"],
    "MODEL.DROPCONNECT_RATE": 0.0,
    "MODEL.FROZEN_BN": False,
    "MODEL.FP16_ALLREDUCE": False,
    # SlowFast two-pathway models: not built here.
    "SLOWFAST.BETA_INV": 8,
    "SLOWFAST.ALPHA": 8,
    "SLOWFAST.FUSION_CONV_CHANNEL_RATIO": 2,
    "SLOWFAST.FUSION_KERNEL_SZ": 5,
    # Data options of PySlowFast's other datasets and of contrastive augmentations.
    "DATA.TRAIN_PCA_EIGVAL": [0.225, 0.224, 0.229],
    "DATA.TRAIN_PCA_EIGVEC": [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.814],
        [-0.5836, -0.6948, 0.4203],
    ],
    "DATA.PATH_TO_PRELOAD_IMDB": "",
    "DATA.TRAIN_JITTER_MOTION_SHIFT": False,
    "DATA.TRAIN_JITTER_FPS": 0.0,
    "DATA.COLOR_RND_GRAYSCALE": 0.0,
    "DATA.LOADER_CHUNK_SIZE": 0,
    "DATA.LOADER_CHUNK_OVERALL_SIZE": 0,
    "DATA.SKIP_ROWS": 0,
    "DATA.TIME_DIFF_PROB": 0.0,
    "DATA.SSL_COLOR_JITTER": False,
    "DATA.SSL_COLOR_BRI_CON_SAT": [0.4, 0.4, 0.4],
    "DATA.SSL_COLOR_HUE": 0.1,
    "DATA.SSL_MOCOV2_AUG": False,
    "DATA.SSL_BLUR_SIGMA_MIN": [0.0, 0.1],
    "DATA.SSL_BLUR_SIGMA_MAX": [0.0, 2.0],
    "DATA.IN22K_TRAINVAL": False,
    "DATA.IN22k_VAL_IN1K": "",
    "DATA.IN_VAL_CROP_RATIO": 0.875,
    "DATA.DUMMY_LOAD": False,
    # Step learning-rate schedules and LARS.
    "SOLVER.GAMMA": 0.1,
    "SOLVER.STEP_SIZE": 1,
    "SOLVER.STEPS": [],
    "SOLVER.LRS": [],
    "SOLVER.LARS_ON": False,
    # PySlowFast's loader benchmark (slowmask: tools/benchmark.py).
    "BENCHMARK.NUM_EPOCHS": 5,
    "BENCHMARK.LOG_PERIOD": 100,
    "BENCHMARK.SHUFFLE": True,
    # Action detection (ROI heads): not built here.
    "DETECTION.ENABLE": False,
    "DETECTION.ALIGNED": True,
    "DETECTION.SPATIAL_SCALE_FACTOR": 16,
    "DETECTION.ROI_XFORM_RESOLUTION": 7,
    # The AVA detection dataset: not built here.
    "AVA.FRAME_DIR": "/mnt/fair-flash3-east/ava_trainval_frames.img/",
    "AVA.FRAME_LIST_DIR": "/mnt/vol/gfsai-flash3-east/ai-group/users/haoqifan/ava/frame_list/",
    "AVA.ANNOTATION_DIR": "/mnt/vol/gfsai-flash3-east/ai-group/users/haoqifan/ava/frame_list/",
    "AVA.TRAIN_LISTS": ["train.csv"],
    "AVA.TEST_LISTS": ["val.csv"],
    "AVA.TRAIN_GT_BOX_LISTS": ["ava_train_v2.2.csv"],
    "AVA.TRAIN_PREDICT_BOX_LISTS": [],
    "AVA.TEST_PREDICT_BOX_LISTS": ["ava_val_predicted_boxes.csv"],
    "AVA.DETECTION_SCORE_THRESH": 0.9,
    "AVA.BGR": False,
    "AVA.TRAIN_USE_COLOR_AUGMENTATION": False,
    "AVA.TRAIN_PCA_JITTER_ONLY": True,
    "AVA.TEST_FORCE_FLIP": False,
    "AVA.FULL_TEST_ON_VAL": False,
    "AVA.LABEL_MAP_FILE": "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
    "AVA.EXCLUSION_FILE": "ava_val_excluded_timestamps_v2.2.csv",
    "AVA.GROUNDTRUTH_FILE": "ava_val_v2.2.csv",
    "AVA.IMG_PROC_BACKEND": "cv2",
    # Multigrid training schedules: not built here.
    "MULTIGRID.EPOCH_FACTOR": 1.5,
    "MULTIGRID.SHORT_CYCLE": False,
    "MULTIGRID.SHORT_CYCLE_FACTORS": [0.5, 0.5**0.5],
    "MULTIGRID.LONG_CYCLE": False,
    "MULTIGRID.LONG_CYCLE_FACTORS": [[0.25, 0.5**0.5], [0.5, 0.5**0.5], [0.5, 1], [1, 1]],
    "MULTIGRID.BN_BASE_SIZE": 8,
    "MULTIGRID.EVAL_FREQ": 3,
    "MULTIGRID.LONG_CYCLE_SAMPLING_RATE": 0,
    "MULTIGRID.DEFAULT_B": 0,
    "MULTIGRID.DEFAULT_T": 0,
    "MULTIGRID.DEFAULT_S": 0,
    # PySlowFast's TensorBoard visualizations beyond scalars.
    "TENSORBOARD.PREDICTIONS_PATH": "",
    "TENSORBOARD.CLASS_NAMES_PATH": "",
    "TENSORBOARD.CATEGORIES_PATH": "",
    "TENSORBOARD.CONFUSION_MATRIX.ENABLE": False,
    "TENSORBOARD.CONFUSION_MATRIX.FIGSIZE": [8, 8],
    "TENSORBOARD.CONFUSION_MATRIX.SUBSET_PATH": "",
    "TENSORBOARD.HISTOGRAM.ENABLE": False,
    "TENSORBOARD.HISTOGRAM.SUBSET_PATH": "",
    "TENSORBOARD.HISTOGRAM.TOPK": 10,
    "TENSORBOARD.HISTOGRAM.FIGSIZE": [8, 8],
    "TENSORBOARD.MODEL_VIS.ENABLE": False,
    "TENSORBOARD.MODEL_VIS.MODEL_WEIGHTS": False,
    "TENSORBOARD.MODEL_VIS.ACTIVATIONS": False,
    "TENSORBOARD.MODEL_VIS.INPUT_VIDEO": False,
    "TENSORBOARD.MODEL_VIS.LAYER_LIST": [],
    "TENSORBOARD.MODEL_VIS.TOPK_PREDS": 1,
    "TENSORBOARD.MODEL_VIS.COLORMAP": "Pastel2",
    "TENSORBOARD.MODEL_VIS.GRAD_CAM.ENABLE": True,
    "TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST": [],
    "TENSORBOARD.MODEL_VIS.GRAD_CAM.USE_TRUE_LABEL": False,
    "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP": "viridis",
    "TENSORBOARD.WRONG_PRED_VIS.ENABLE": False,
    "TENSORBOARD.WRONG_PRED_VIS.TAG": "Incorrectly classified videos.",
    "TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH": "",
    # PySlowFast's webcam / video demo: not built here.
    "DEMO.ENABLE": False,
    "DEMO.LABEL_FILE_PATH": "",
    "DEMO.WEBCAM": -1,
    "DEMO.INPUT_VIDEO": "",
    "DEMO.DISPLAY_WIDTH": 0,
    "DEMO.DISPLAY_HEIGHT": 0,
    "DEMO.DETECTRON2_CFG": "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "DEMO.DETECTRON2_WEIGHTS": (
        "detectron2://COCO-Detection/faster_rcnn_R_50_FPN_3x/137849458/model_final_280758.pkl"
    ),
    "DEMO.DETECTRON2_THRESH": 0.9,
    "DEMO.BUFFER_SIZE": 0,
    "DEMO.OUTPUT_FILE": "",
    "DEMO.OUTPUT_FPS": -1,
    "DEMO.INPUT_FORMAT": "BGR",
    "DEMO.CLIP_VIS_SIZE": 10,
    "DEMO.NUM_VIS_INSTANCES": 2,
    "DEMO.PREDS_BOXES": "",
    "DEMO.THREAD_ENABLE": False,
    "DEMO.NUM_CLIPS_SKIP": 0,
    "DEMO.GT_BOXES": "",
    "DEMO.STARTING_SECOND": 900,
    "DEMO.FPS": 30,
    "DEMO.VIS_MODE": "thres",
    "DEMO.COMMON_CLASS_THRES": 0.7,
    "DEMO.UNCOMMON_CLASS_THRES": 0.3,
    "DEMO.COMMON_CLASS_NAMES": [
        "watch (a person)",
        "talk to (e.g., self, a person, a group)",
        "listen to (a person)",
        "touch (an object)",
        "carry/hold (an object)",
        "walk",
        "sit",
        "lie/sleep",
        "bend/bow (at the waist)",
    ],
    "DEMO.SLOWMO": 1,
}

# Keys that switch on what slowmask does not build -> the only value accepted.
UNSUPPORTED_SWITCHES: Dict[str, Any] = {
    "DETECTION.ENABLE": False,
    "MULTIGRID.LONG_CYCLE": False,
    "MULTIGRID.SHORT_CYCLE": False,
    "DEMO.ENABLE": False,
    "SOLVER.LARS_ON": False,
    "DATA.TRAIN_JITTER_MOTION_SHIFT": False,
    "DATA.TRAIN_JITTER_FPS": 0.0,
    "DATA.TIME_DIFF_PROB": 0.0,
    "DATA.COLOR_RND_GRAYSCALE": 0.0,
    "DATA.SSL_COLOR_JITTER": False,
    "DATA.SSL_MOCOV2_AUG": False,
    "DATA.DUMMY_LOAD": False,
}

_reported: Set[Tuple[str, ...]] = set()


def _node(cfg: CfgNode, parents: List[str]) -> CfgNode:
    """The section at `parents`, created (empty) where missing."""
    node = cfg
    for part in parents:
        if part not in node:
            node[part] = CfgNode()
        node = node[part]
    return node


def add_unused_keys(cfg: CfgNode) -> None:
    """Add every UNUSED_KEYS entry that `cfg` does not define yet (a key slowmask
    defines itself keeps its own default and meaning)."""
    for key, default in UNUSED_KEYS.items():
        *parents, leaf = key.split(".")
        node = _node(cfg, parents)
        if leaf not in node:
            node[leaf] = default


def _value(cfg: CfgNode, key: str) -> Any:
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value == default


def unused_keys_set(cfg: CfgNode) -> List[str]:
    """The UNUSED_KEYS whose value in `cfg` differs from PySlowFast's default."""
    return [key for key, default in UNUSED_KEYS.items() if not _same(_value(cfg, key), default)]


def report_unused_keys(cfg: CfgNode) -> None:
    """Log, once per distinct set, the accepted-but-unused keys `cfg` sets."""
    keys = tuple(unused_keys_set(cfg))
    if keys and keys not in _reported:
        _reported.add(keys)
        logger.info(
            "accepted but not used (PySlowFast features slowmask does not build): %s",
            ", ".join(f"{key}={_value(cfg, key)!r}" for key in keys),
        )


def unsupported_switches_on(cfg: CfgNode) -> List[str]:
    """`KEY=value (must be ...)` for every UNSUPPORTED_SWITCHES key not at its value."""
    return [
        f"{key}={_value(cfg, key)!r} (must be {needed!r})"
        for key, needed in UNSUPPORTED_SWITCHES.items()
        if not _same(_value(cfg, key), needed)
    ]

"""PySlowFast's keys that slowmask accepts, and what it does with each.

A PySlowFast yaml, or the full config dump a PySlowFast checkpoint carries, names keys
of features slowmask does not build (detection, multigrid, contrastive models, other
backbones, the demo ...). They are declared here, with PySlowFast's defaults, so such a
file loads unchanged. Every key has one decision (docs/pyslowfast_keys.md is the table,
`audit_rows` its source):

- mapped: defined in defaults.py and translated into what slowmask builds (MAPPED);
- ignored: read only by features slowmask does not build, so no value changes the run;
  the ones a file sets are listed in one log line when the run's logging is set up;
- refused: a value other than PySlowFast's default would change the model, the data or
  the training, so the config fails, naming the key and what to do (REFUSED).
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
    # Loader prefetching of PySlowFast's SSv2 yaml (unknown to PySlowFast's defaults too).
    "PREFETCH.NUM_LOADERS": 0,
}

# Keys whose non-default value would change the run -> what to do instead. The only value
# accepted is the key's PySlowFast default (UNUSED_KEYS).
REFUSED: Dict[str, str] = {
    "DETECTION.ENABLE": "action detection (ROI heads, AVA) is not built; train a classifier or pretrain",
    "MULTIGRID.LONG_CYCLE": "multigrid schedules are not built; use a fixed batch, clip size and SOLVER schedule",
    "MULTIGRID.SHORT_CYCLE": "multigrid schedules are not built; use a fixed batch, clip size and SOLVER schedule",
    "MULTIGRID.LONG_CYCLE_SAMPLING_RATE": "a random sampling rate per clip (multigrid) is not built; "
    "set DATA.SAMPLING_RATE",
    "MULTIGRID.DEFAULT_S": "a multigrid base crop rescales PySlowFast's jitter scales; set DATA.TRAIN_JITTER_SCALES",
    "DEMO.ENABLE": "the webcam / video demo is not built; use tools/run_net.py with TEST.ENABLE",
    "VIS_MASK.ENABLE": "mask visualization replaces PySlowFast's test; use tools/visualize.py",
    "SOLVER.LARS_ON": "LARS is not built; use SOLVER.OPTIMIZING_METHOD sgd, adam or adamw",
    "MODEL.FP16_ALLREDUCE": "gradients are all-reduced in float32 (fp16 compression changes them); remove the key",
    "CONTRASTIVE.DELTA_CLIPS_MIN": "each clip of a video is placed independently; remove the bound on their gap",
    "CONTRASTIVE.DELTA_CLIPS_MAX": "each clip of a video is placed independently; remove the bound on their gap",
    "DATA.TRAIN_JITTER_MOTION_SHIFT": "motion-shift crops are not built; remove the key",
    "DATA.TRAIN_JITTER_FPS": "frame-rate jitter is not built; remove the key (DATA.TARGET_FPS is fixed)",
    "DATA.TIME_DIFF_PROB": "temporal-difference input is not built; remove the key",
    "DATA.COLOR_RND_GRAYSCALE": "random grayscale is not built; remove the key",
    "DATA.SSL_COLOR_JITTER": "contrastive colour jitter is not built; use AUG.COLOR_JITTER or AUG.AA_TYPE",
    "DATA.SSL_MOCOV2_AUG": "MoCo v2 augmentation is not built; use AUG.AA_TYPE",
    "DATA.DUMMY_LOAD": "dummy data is not built; use the synthetic demo data (configs/demo/)",
    "DATA.LOADER_CHUNK_SIZE": "reading the train list in chunks changes the videos of an epoch; "
    "slowmask reads the whole list: cut the csv instead",
    "DATA.LOADER_CHUNK_OVERALL_SIZE": "reading the train list in chunks changes the videos of an epoch; "
    "slowmask reads the whole list: cut the csv instead",
    "DATA.SKIP_ROWS": "slowmask reads every row of the list; remove the skipped rows from the csv",
    "DATA.PATH_TO_PRELOAD_IMDB": "a preloaded ImageNet index is not read; point DATA.PATH_TO_DATA_DIR at the image folders",
    "DATA.IN22K_TRAINVAL": "ImageNet-22K train+val is not built; list the images in DATA.PATH_TO_DATA_DIR",
    "DATA.IN22k_VAL_IN1K": "ImageNet-22K to 1K validation is not built; remove the key",
}

# Section prefixes -> why their keys cannot change what slowmask builds (longest prefix wins).
IGNORED_WHY: Dict[str, str] = {
    "CONTRASTIVE.": "contrastive models (MoCo, SimCLR, BYOL, SwAV) are not built; MODEL.MODEL_NAME cannot name one",
    "RESNET.": "ResNet backbones are not built; MODEL.MODEL_NAME builds MViT / ViT",
    "X3D.": "X3D backbones are not built; MODEL.MODEL_NAME builds MViT / ViT",
    "NONLOCAL.": "non-local blocks belong to ResNets, which are not built",
    "SLOWFAST.": "two-pathway SlowFast models are not built",
    "MODEL.SINGLE_PATHWAY_ARCH": "PySlowFast's list of architecture names; MODEL.MODEL_NAME picks the model",
    "MODEL.MULTI_PATHWAY_ARCH": "PySlowFast's list of architecture names; MODEL.MODEL_NAME picks the model",
    "MODEL.DROPCONNECT_RATE": "read only by X3D",
    "MODEL.FROZEN_BN": "freezes batch norm, which MViT and ViT do not have",
    "DATA.TRAIN_PCA_": "PCA lighting jitter of PySlowFast's ImageNet without AUG and of AVA; not applied here",
    "DATA.SSL_": "read only with DATA.SSL_COLOR_JITTER / DATA.SSL_MOCOV2_AUG, which are refused",
    "DATA.IN_VAL_CROP_RATIO": "ImageNet evaluation crop; slowmask's imagenet evaluates a DATA.TEST_CROP_SIZE "
    "centre crop of the short side resized to it",
    "SOLVER.GAMMA": "read only by step schedules; SOLVER.LR_POLICY accepts cosine and constant",
    "SOLVER.STEP": "read only by step schedules; SOLVER.LR_POLICY accepts cosine and constant",
    "SOLVER.LRS": "read only by step schedules; SOLVER.LR_POLICY accepts cosine and constant",
    "BENCHMARK.": "PySlowFast's loader benchmark; slowmask's is tools/benchmark.py",
    "DETECTION.": "read only with DETECTION.ENABLE, which is refused",
    "AVA.": "the AVA detection dataset is not built",
    "MULTIGRID.": "read only by multigrid schedules, which are refused",
    "TENSORBOARD.": "PySlowFast's TensorBoard figures (outputs only; scalars: TENSORBOARD.ENABLE)",
    "DEMO.": "read only by the demo (DEMO.ENABLE, refused)",
    "PREFETCH.": "loader prefetching; unknown to PySlowFast's defaults too, no effect on the recipe",
}

# PySlowFast keys defined in defaults.py whose meaning needed a translation -> how slowmask serves it.
MAPPED: Dict[str, str] = {
    "DATA.TRAIN_CROP_NUM_TEMPORAL": "training windows per decoded video, each at its own random start "
    "(the dataset's num_samples)",
    "DATA.TRAIN_CROP_NUM_SPATIAL": "clips cut from each window's frames with their own crop, flip, "
    "augmentation and mask; multiplies AUG.NUM_SAMPLE (crops_per_window)",
    "AUG.NUM_SAMPLE": "as PySlowFast: repeated augmentation of each window's frames (crops_per_window = "
    "TRAIN_CROP_NUM_SPATIAL x NUM_SAMPLE); clips per video = TRAIN_CROP_NUM_TEMPORAL x that",
    "DATA.USE_OFFSET_SAMPLING": "test views spread from the first to the last window (one view: the "
    "centre one) instead of starting at delta * k / views (OffsetClipSampler)",
    "DATA.REVERSE_INPUT_CHANNEL": "the clip's channels reversed after normalization, as PySlowFast "
    "(RGB <-> BGR; SSv2 frames are read in OpenCV's BGR order, so True feeds RGB)",
    "TRAIN.KILL_LOSS_EXPLOSION_FACTOR": "the run stops when a step's loss exceeds this factor times the "
    "mean of the epoch's 5 steps before it (LossExplosionStop)",
    "TRAIN.DATASET": "PySlowFast's dataset names: kinetics, ssv2 (Ssv2), imagenet; case is ignored",
    "TEST.DATASET": "PySlowFast's dataset names: kinetics, ssv2 (Ssv2), imagenet; case is ignored",
}

_reported: Set[Tuple[str, Tuple[str, ...]]] = set()


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


def ignored_why(key: str) -> str:
    """Why an accepted, unused key cannot change the run (KeyError for other keys)."""
    prefixes = [p for p in IGNORED_WHY if key.startswith(p)]
    if key in REFUSED or not prefixes:
        raise KeyError(f"{key} is not an ignored PySlowFast key")
    return IGNORED_WHY[max(prefixes, key=len)]


def audit_rows() -> List[Tuple[str, str, str]]:
    """(key, decision, why) of every PySlowFast key this module declares or maps;
    decision is "mapped", "ignored" or "refused unless <default>"."""
    rows = [(key, "mapped", why) for key, why in MAPPED.items()]
    for key, default in UNUSED_KEYS.items():
        if key in REFUSED:
            rows.append((key, f"refused unless {default!r}", REFUSED[key]))
        else:
            rows.append((key, "ignored", ignored_why(key)))
    return rows


def unused_keys_set(cfg: CfgNode) -> List[str]:
    """The UNUSED_KEYS whose value in `cfg` differs from PySlowFast's default."""
    return [key for key, default in UNUSED_KEYS.items() if not _same(_value(cfg, key), default)]


def report_unused_keys(cfg: CfgNode) -> None:
    """Log the accepted-but-unused keys `cfg` sets, in one line, once per output
    directory and set of keys. Called by a run after its logging is set up."""
    keys = tuple(unused_keys_set(cfg))
    if keys and (cfg.OUTPUT_DIR, keys) not in _reported:
        _reported.add((cfg.OUTPUT_DIR, keys))
        logger.info(
            "accepted but not used (PySlowFast features slowmask does not build): %s",
            ", ".join(f"{key}={_value(cfg, key)!r}" for key in keys),
        )


def refused_keys_set(cfg: CfgNode) -> List[str]:
    """`KEY=value (must be default): what to do` for every REFUSED key not at its default."""
    return [
        f"{key}={_value(cfg, key)!r} (must be {UNUSED_KEYS[key]!r}: {advice})"
        for key, advice in REFUSED.items()
        if not _same(_value(cfg, key), UNUSED_KEYS[key])
    ]

"""Every configuration key slowmask knows, with its default and one comment.

Key names and meanings follow PySlowFast's wherever the concept is the same, so that
its MViTv2 and masked-SSL yaml files load unchanged. A yaml file only overrides these.
"""

from fvcore.common.config import CfgNode

from .unused_keys import add_unused_keys

_C = CfgNode()

# Name of the task, kept for PySlowFast compatibility ("ssl" for pretraining, "" otherwise).
_C.TASK = ""
# Number of GPUs per machine (0 runs on the CPU).
_C.NUM_GPUS = 1
# Number of machines in the job.
_C.NUM_SHARDS = 1
# Index of this machine in the job.
_C.SHARD_ID = 0
# Directory for checkpoints, logs and results.
_C.OUTPUT_DIR = "."
# Seed of every random generator (data order, masks, augmentation, initialization).
_C.RNG_SEED = 1
# Log a training line every this many iterations; its figures are medians over these iterations.
_C.LOG_PERIOD = 10
# Log the model's parameter count at start.
_C.LOG_MODEL_INFO = True
# Backend of torch.distributed ("nccl" on GPUs, "gloo" on CPUs).
_C.DIST_BACKEND = "nccl"
# Seconds each process waits for the others at set-up: the rendezvous at the init address, then the collective self-test.
_C.DIST_RENDEZVOUS_TIMEOUT_S = 300.0
# Seconds a collective (gradient all-reduce) waits for a late rank before the job fails (rank 0 may be validating).
_C.DIST_COLLECTIVE_TIMEOUT_S = 1800.0

# ---------------------------------------------------------------------------- #
# Training
# ---------------------------------------------------------------------------- #
_C.TRAIN = CfgNode()
# Run training.
_C.TRAIN.ENABLE = True
# Registered name of the training dataset (DATASET_REGISTRY; case ignored: kinetics, ssv2, imagenet, frame_folder ...).
_C.TRAIN.DATASET = "kinetics"
# Total mini-batch size over all processes.
_C.TRAIN.BATCH_SIZE = 64
# Evaluate every this many epochs.
_C.TRAIN.EVAL_PERIOD = 10
# Write a checkpoint every this many epochs.
_C.TRAIN.CHECKPOINT_PERIOD = 10
# Also write a checkpoint every this many iterations within an epoch, to resume from mid-epoch (0: off).
_C.TRAIN.CHECKPOINT_PERIOD_ITERS = 0
# Keep only the newest this many end-of-epoch and mid-epoch checkpoints (0: keep all); never deletes the best.
_C.TRAIN.CHECKPOINT_KEEP_LAST = 0
# Resume from the newest checkpoint in OUTPUT_DIR/checkpoints when there is one.
_C.TRAIN.AUTO_RESUME = True
# Resume even when the recipe (model, batch, LR, schedule, masking, augmentation, input) differs from the checkpoint's config.
_C.TRAIN.AUTO_RESUME_ALLOW_CHANGES = False
# When every checkpoint in OUTPUT_DIR/checkpoints is unreadable: False stops the run (status 4, naming them);
# True renames them NAME.unreadable and trains from the start (or from TRAIN.CHECKPOINT_FILE_PATH).
_C.TRAIN.AUTO_RESUME_START_OVER = False
# Checkpoint whose weights initialize the model (ignored once the run has its own).
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# Format of CHECKPOINT_FILE_PATH; only "pytorch" is supported.
_C.TRAIN.CHECKPOINT_TYPE = "pytorch"
# PySlowFast's inflation switch (accepted; 2-D kernels and tables are always fitted to the model when initializing).
_C.TRAIN.CHECKPOINT_INFLATE = False
# Initialize from CHECKPOINT_FILE_PATH (weights only; pretraining heads dropped, geometry fitted) and start at epoch 0.
_C.TRAIN.CHECKPOINT_EPOCH_RESET = False
# Name prefixes removed from the keys of CHECKPOINT_FILE_PATH before loading.
_C.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN = ()
# Initialize from CHECKPOINT_FILE_PATH (weights only, fitted to the model, epoch 0), as CHECKPOINT_EPOCH_RESET.
_C.TRAIN.CHECKPOINT_IN_INIT = False
# Run the forward pass under autocast (mixed precision); the dtype is MIXED_PRECISION_DTYPE.
_C.TRAIN.MIXED_PRECISION = False
# "auto" (bfloat16 on CPUs and GPUs that support it, else float16 with a GradScaler), "bfloat16" or "float16".
_C.TRAIN.MIXED_PRECISION_DTYPE = "auto"
# Batches whose gradients add up before each optimizer update (effective batch = BATCH_SIZE x this).
_C.TRAIN.GRAD_ACCUM_STEPS = 1
# How the processes hold the model: "none" (each a whole copy, DDP), "fsdp" (FSDP2: each transformer block's and
# the rest's parameters, gradients and optimizer state split over all processes), "hsdp" (split inside a machine,
# copied across the NUM_SHARDS machines); sharded runs write checkpoint folders (torch.distributed.checkpoint).
_C.TRAIN.SHARDING = "none"
# On a non-finite loss: "stop" the run (naming epoch and iteration) or "skip" the step (no backward, no update).
_C.TRAIN.NONFINITE_LOSS = "stop"
# With NONFINITE_LOSS "skip": stop (exit status 7) when more than this share of an epoch's steps, or all of them, are skipped; in [0, 1].
_C.TRAIN.NONFINITE_SKIP_MAX_SHARE = 0.1
# Stop when a step's loss exceeds this factor times the mean of the epoch's 5 steps before it (0 disables).
_C.TRAIN.KILL_LOSS_EXPLOSION_FACTOR = 0.0

# ---------------------------------------------------------------------------- #
# Augmentation and masking
# ---------------------------------------------------------------------------- #
_C.AUG = CfgNode()
# Enable the augmentation pipeline (RandAugment, random erasing, masks in the loader).
_C.AUG.ENABLE = False
# Repeated augmentation (PySlowFast): clips cut from each training window's frames, each with its own crop and mask; batch grows by this factor.
_C.AUG.NUM_SAMPLE = 1
# Colour jitter strength when RandAugment is off (None disables).
_C.AUG.COLOR_JITTER = 0.4
# RandAugment policy string ("" disables).
_C.AUG.AA_TYPE = "rand-m9-mstd0.5-inc1"
# Interpolation used by the augmentations.
_C.AUG.INTERPOLATION = "bicubic"
# Probability of random erasing.
_C.AUG.RE_PROB = 0.25
# Random erasing fill ("pixel", "rand" or "const").
_C.AUG.RE_MODE = "pixel"
# Number of erased rectangles.
_C.AUG.RE_COUNT = 1
# Leave the first of the repeated samples unerased.
_C.AUG.RE_SPLIT = False
# Draw the mask in the loader worker (PySlowFast flag; slowmask always does when masking).
_C.AUG.GEN_MASK_LOADER = False
# Mask generator ("cube", "block", "tube", "frame", "frame_block", "random", "multiblock"); "" derives it from the flags below and MASK.MAE_RND_MASK.
_C.AUG.MASK_TYPE = ""
# PySlowFast flag: tube masks instead of cube masks.
_C.AUG.MASK_TUBE = False
# PySlowFast flag: frame masks instead of cube masks.
_C.AUG.MASK_FRAMES = False
# Size (t, h, w) of the mask grid on which masks are drawn.
_C.AUG.MASK_WINDOW_SIZE = [8, 7, 7]
# Fraction of mask-grid units that are masked (ignored by "multiblock", whose MASK.MULTIBLOCK_* blocks decide it).
_C.AUG.MASK_RATIO = 0.0
# Largest block (in mask units) a block/cube mask may add at once (None: no limit).
_C.AUG.MAX_MASK_PATCHES_PER_BLOCK = None

# ---------------------------------------------------------------------------- #
# MixUp / CutMix
# ---------------------------------------------------------------------------- #
_C.MIXUP = CfgNode()
# Enable mixup / cutmix.
_C.MIXUP.ENABLE = False
# Mixup's Beta distribution parameter.
_C.MIXUP.ALPHA = 0.8
# Cutmix's Beta distribution parameter.
_C.MIXUP.CUTMIX_ALPHA = 1.0
# Probability of applying mixup or cutmix to a batch.
_C.MIXUP.PROB = 1.0
# Probability of cutmix instead of mixup when both are on.
_C.MIXUP.SWITCH_PROB = 0.5
# Label smoothing applied with mixup.
_C.MIXUP.LABEL_SMOOTH_VALUE = 0.1

# ---------------------------------------------------------------------------- #
# Testing
# ---------------------------------------------------------------------------- #
_C.TEST = CfgNode()
# Run testing.
_C.TEST.ENABLE = True
# Registered name of the test dataset.
_C.TEST.DATASET = "kinetics"
# Total mini-batch size over all processes.
_C.TEST.BATCH_SIZE = 8
# Checkpoint to test.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Temporal clips per video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
# Spatial crops per clip.
_C.TEST.NUM_SPATIAL_CROPS = 3
# Format of TEST.CHECKPOINT_FILE_PATH; only "pytorch" is supported.
_C.TEST.CHECKPOINT_TYPE = "pytorch"
# Where to save the per-video scores, relative to OUTPUT_DIR ("" does not save): a dict with
# "scores" (videos, classes), "labels" (videos,) and "paths"; a ".pkl" name is a plain pickle
# (numpy arrays, a list of str: pickle.load reads it), any other (".pt", ".pyth") a torch.save file.
_C.TEST.SAVE_RESULTS_PATH = ""
# PySlowFast's list of temporal clip counts to test with (accepted, unused).
_C.TEST.NUM_TEMPORAL_CLIPS = []
# Weights the test after training uses when CHECKPOINT_FILE_PATH is "": "last" (the newest checkpoint), "best"
# (checkpoint_best.pyth, the best validation top-1) or "ema" (checkpoint_ema.pyth, MODEL.EMA's average).
_C.TEST.CHECKPOINT = "last"

# ---------------------------------------------------------------------------- #
# Batch norm (MViT has none; kept so PySlowFast files load)
# ---------------------------------------------------------------------------- #
_C.BN = CfgNode()
# Recompute batch-norm statistics before evaluation.
_C.BN.USE_PRECISE_STATS = False
# Batches used for precise statistics.
_C.BN.NUM_BATCHES_PRECISE = 200
# Weight decay of batch-norm parameters.
_C.BN.WEIGHT_DECAY = 0.0
# Batch-norm type: "batchnorm" (per-process statistics) or "sync_batchnorm" (over all GPU processes).
_C.BN.NORM_TYPE = "batchnorm"
# Splits of sub-batch norm.
_C.BN.NUM_SPLITS = 1
# Devices synchronised by naive sync batch norm.
_C.BN.NUM_SYNC_DEVICES = 1
# Synchronise batch norm across all machines.
_C.BN.GLOBAL_SYNC = False

# ---------------------------------------------------------------------------- #
# Model
# ---------------------------------------------------------------------------- #
_C.MODEL = CfgNode()
# Architecture family ("mvit", "maskmvit"); informative, MODEL_NAME picks the class.
_C.MODEL.ARCH = "mvit"
# A pretraining method (METHOD_REGISTRY: "MaskFeat", "SimMIM", "MAE", "VideoMAEv2", "MVD", "MaskDistill"), an
# architecture (MODEL_REGISTRY: "MViT" classifies), or PySlowFast's "MaskMViT" (dense) / "MAE" (sparse), whose
# method MASK.MAE_ON, MASK.DECODER_MASK_TYPE and MASK.TARGET pick (slowmask/methods/build.py).
_C.MODEL.MODEL_NAME = "MViT"
# Number of classes of the classifier.
_C.MODEL.NUM_CLASSES = 400
# Loss ("cross_entropy", "soft_cross_entropy"; "mse" / PySlowFast's "multi_mse" or "l1" for pretraining).
_C.MODEL.LOSS_FUNC = "cross_entropy"
# Dropout before the classifier's projection.
_C.MODEL.DROPOUT_RATE = 0.5
# Standard deviation of the classifier's initial weights.
_C.MODEL.FC_INIT_STD = 0.01
# Activation of the classifier's output at test time.
_C.MODEL.HEAD_ACT = "softmax"
# Recompute each block's activations in the backward pass to save memory.
_C.MODEL.ACT_CHECKPOINT = False
# Train only the final projection (gradient stops before it).
_C.MODEL.DETACH_FINAL_FC = False
# Linear probing (MAE's protocol): frozen encoder in eval mode, BatchNorm without affine before the head, head trained.
_C.MODEL.LINEAR_PROBE = False
# Run the model through torch.compile.
_C.MODEL.COMPILE = False
# An exponential moving average of the classifier's weights in fine-tuning (VideoMAE's --model_ema), validated
# beside the raw weights; engine/hooks/model_ema.py.
_C.MODEL.EMA = CfgNode()
# Keep the average, updated after every optimizer update; written as OUTPUT_DIR/checkpoints/checkpoint_ema.pyth.
_C.MODEL.EMA.ENABLE = False
# Weight of the average at each update: average = DECAY * average + (1 - DECAY) * weights (VideoMAE: 0.9999).
_C.MODEL.EMA.DECAY = 0.9999
# Epochs of updates over which the decay rises linearly from WARMUP_START_DECAY to DECAY (0: DECAY from the start).
_C.MODEL.EMA.WARMUP_EPOCHS = 0.0
# The decay of the first update when WARMUP_EPOCHS > 0 (0.0: the first update copies the weights).
_C.MODEL.EMA.WARMUP_START_DECAY = 0.0
# Where the average lives: "" the model's device, or "cpu" (saves device memory; its validation then runs on the CPU).
_C.MODEL.EMA.DEVICE = ""

# ---------------------------------------------------------------------------- #
# MViTv2 (ViT is MViT without pooling)
# ---------------------------------------------------------------------------- #
_C.MVIT = CfgNode()
# Pooling operator in attention ("conv", "conv_unshared", "max", "avg").
_C.MVIT.MODE = "conv"
# Pool before the q/k/v projection instead of after.
_C.MVIT.POOL_FIRST = False
# Prepend a class token.
_C.MVIT.CLS_EMBED_ON = True
# Kernel (t, h, w) of the patch embedding.
_C.MVIT.PATCH_KERNEL = [3, 7, 7]
# Stride (t, h, w) of the patch embedding.
_C.MVIT.PATCH_STRIDE = [2, 4, 4]
# Padding (t, h, w) of the patch embedding ([1, 3, 3] keeps the grid at input / stride for a 3x7x7 kernel).
_C.MVIT.PATCH_PADDING = [1, 3, 3]
# Use a 2-D patch embedding (images).
_C.MVIT.PATCH_2D = False
# Width of the first stage.
_C.MVIT.EMBED_DIM = 96
# Heads of the first stage.
_C.MVIT.NUM_HEADS = 1
# Hidden width of the MLP relative to its input.
_C.MVIT.MLP_RATIO = 4.0
# Bias in the q/k/v projection.
_C.MVIT.QKV_BIAS = True
# Largest stochastic depth rate (linear over blocks).
_C.MVIT.DROPPATH_RATE = 0.1
# Initial value of layer scale (0 disables).
_C.MVIT.LAYER_SCALE_INIT_VALUE = 0.0
# Number of blocks.
_C.MVIT.DEPTH = 16
# Normalization layer; only "layernorm".
_C.MVIT.NORM = "layernorm"
# Width multipliers, [[block index, factor], ...].
_C.MVIT.DIM_MUL = []
# Head-count multipliers, [[block index, factor], ...].
_C.MVIT.HEAD_MUL = []
# Key/value pooling strides, [[block index, s_t, s_h, s_w], ...].
_C.MVIT.POOL_KV_STRIDE = []
# Key/value pooling stride of block 0, divided by the query strides later on (overrides POOL_KV_STRIDE).
_C.MVIT.POOL_KV_STRIDE_ADAPTIVE = None
# Query pooling strides, [[block index, s_t, s_h, s_w], ...].
_C.MVIT.POOL_Q_STRIDE = []
# Pooling kernel for q, k and v (None: stride + 1 where the stride is above 1).
_C.MVIT.POOL_KVQ_KERNEL = None
# Exempt position embeddings and the class token from weight decay.
_C.MVIT.ZERO_DECAY_POS_CLS = True
# Normalize the tokens after the patch embedding.
_C.MVIT.NORM_STEM = False
# Separate spatial and temporal absolute position embeddings.
_C.MVIT.SEP_POS_EMBED = False
# Dropout after the position embedding.
_C.MVIT.DROPOUT_RATE = 0.0
# Add absolute position embeddings.
_C.MVIT.USE_ABS_POS = True
# Decomposed relative position bias over height and width.
_C.MVIT.REL_POS_SPATIAL = False
# Decomposed relative position bias over time.
_C.MVIT.REL_POS_TEMPORAL = False
# Initialise relative position tables with zeros.
_C.MVIT.REL_POS_ZERO_INIT = False
# Add the pooled query to the attention output (MViTv2's residual pooling).
_C.MVIT.RESIDUAL_POOLING = False
# Change the width in the attention's q/k/v projection instead of the MLP.
_C.MVIT.DIM_MUL_IN_ATT = False
# Separate q, k and v projections instead of one qkv layer.
_C.MVIT.SEPARATE_QKV = False
# Attention path: "sdpa" (relative positions as extra q/k channels), "sdpa_padded" (the same with q, k, v
# zero-padded to one width, a multiple of 8, which FlashAttention / cuDNN need), "plain" (matmul-softmax with
# the full bias); "auto" takes the faster per device (models/layers/attention.py PADDING_IS_FASTER: padded on CPU and CUDA).
_C.MVIT.ATTENTION = "auto"
# Scale of the classifier head's initial weights.
_C.MVIT.HEAD_INIT_SCALE = 1.0
# Classify the mean of the patch tokens instead of the class token.
_C.MVIT.USE_MEAN_POOLING = False
# Fixed sine-cosine absolute position embeddings.
_C.MVIT.USE_FIXED_SINCOS_POS = False
# Layout of that fixed table (models/layers/position.py): "pyslowfast" (a quarter time, then w, h), "vjepa"
# (V-JEPA's: half time, a quarter h, a quarter w), "vjepa_uniform" (V-JEPA's video recipes: a third each).
_C.MVIT.SINCOS_LAYOUT = "pyslowfast"
# 3-D rotary position embeddings on q and k in every block (V-JEPA 2; a ViT: no pooling, no relative positions).
_C.MVIT.USE_ROPE = False
# Rotary pairs turned at one frequency (a true rotation: q.k depends on relative positions only); False keeps
# V-JEPA 2's layout, in which a pair's channels take neighbouring frequencies (its published weights need it).
_C.MVIT.ROPE_EXACT = False
# Reversible MViT (not supported; must stay off).
_C.MVIT.REV = CfgNode()
# Enable reversible blocks (not supported).
_C.MVIT.REV.ENABLE = False
# Reversible path fusion (accepted, unused).
_C.MVIT.REV.RESPATH_FUSE = "concat"
# Reversible buffered layers (accepted, unused).
_C.MVIT.REV.BUFFER_LAYERS = []
# Reversible residual path operator (accepted, unused).
_C.MVIT.REV.RES_PATH = "conv"
# Reversible pre-pooling fusion (accepted, unused).
_C.MVIT.REV.PRE_Q_FUSION = "avg"

# ---------------------------------------------------------------------------- #
# Masked pretraining
# ---------------------------------------------------------------------------- #
_C.MASK = CfgNode()
# Masked pretraining is on.
_C.MASK.ENABLE = False
# PySlowFast flag: MAE (sparse encoder and decoder).
_C.MASK.MAE_ON = False
# PySlowFast flag: MAE's uniform random mask.
_C.MASK.MAE_RND_MASK = False
# Random masking per frame in MAE.
_C.MASK.PER_FRAME_MASKING = False
# Pixel targets only on temporally strided frames.
_C.MASK.TIME_STRIDE_LOSS = True
# Normalize each pixel-target patch to zero mean and unit variance.
_C.MASK.NORM_PRED_PIXEL = True
# Rescale block output projections by depth at initialisation.
_C.MASK.SCALE_INIT_BY_DEPTH = False
# Width of the MAE decoder.
_C.MASK.DECODER_EMBED_DIM = 512
# Separate spatial/temporal position embeddings in the decoder.
_C.MASK.DECODER_SEP_POS_EMBED = False
# Key/value pooling kernel in the decoder.
_C.MASK.DEC_KV_KERNEL = []
# Key/value pooling stride in the decoder.
_C.MASK.DEC_KV_STRIDE = []
# Block indices whose outputs feed the prediction head (the prediction grid).
_C.MASK.PRETRAIN_DEPTH = [15]
# Prediction head type ("separate": norm + linear per depth; "separate_xformer": MAE's decoder blocks + norm + linear).
_C.MASK.HEAD_TYPE = "separate"
# Depth of the MAE decoder.
_C.MASK.DECODER_DEPTH = 0
# PySlowFast flag: regress HOG instead of pixels.
_C.MASK.PRED_HOG = False
# Registered target ("hog", "pixel"); "" derives it from PRED_HOG ("pixel" when False).
_C.MASK.TARGET = ""
# HOG from the temporally centred frame of each token (False: the token's first frame, as PySlowFast).
_C.MASK.HOG_CENTER_FRAME = True
# Side of a HOG histogram cell in pixels (MaskFeat: 8; a prediction token's patch sides must be multiples of it).
_C.MASK.HOG_CELL_SIZE = 8
# HOG orientation bins over [0, pi) (MaskFeat: 9).
_C.MASK.HOG_NBINS = 9
# Decoder mask of dual masking (VideoMAE V2): a registered mask ("running_cell") on the token grid; "" = none.
_C.MASK.DECODER_MASK_TYPE = ""
# Fraction of the tokens the decoder mask drops (VideoMAE V2: 0.5), used with DECODER_MASK_TYPE.
_C.MASK.DECODER_MASK_RATIO = 0.5
# Tokens the pretraining loss is on: "masked", "visible" (UMT's unmasked-token alignment), or "all" of them.
_C.MASK.LOSS_TOKENS = "masked"
# Multi-block mask sets (V-JEPA 2; AUG.MASK_TYPE "multiblock" masks their union), one entry per set: blocks per mask.
_C.MASK.MULTIBLOCK_NUM_BLOCKS = [8, 2]
# One entry per set: a block's area as a fraction of the grid's h x w.
_C.MASK.MULTIBLOCK_SPATIAL_SCALE = [0.15, 0.7]
# [low, high] range of a block's height / width, drawn uniformly (all sets).
_C.MASK.MULTIBLOCK_ASPECT_RATIO = [0.75, 1.5]
# One entry per set: a block's temporal span as a fraction of the grid's t (1.0: every t).
_C.MASK.MULTIBLOCK_TEMPORAL_SCALE = [1.0, 1.0]

# ---------------------------------------------------------------------------- #
# V-JEPA / V-JEPA 2 (MODEL.MODEL_NAME "VJEPA", methods/vjepa.py): predictor and target encoder
# ---------------------------------------------------------------------------- #
_C.JEPA = CfgNode()
# Blocks of the predictor (V-JEPA 2 ViT-L: 12).
_C.JEPA.PRED_DEPTH = 12
# Width of the predictor's tokens (V-JEPA 2: 384).
_C.JEPA.PRED_EMBED_DIM = 384
# Attention heads of the predictor (V-JEPA 2: 12).
_C.JEPA.PRED_NUM_HEADS = 12
# Learned mask tokens of the predictor; mask set i uses token i mod this (V-JEPA 2: one per mask set).
_C.JEPA.PRED_NUM_MASK_TOKENS = 2
# Momentum of the target encoder's moving average [start, end] (V-JEPA 2: 0.99925 throughout; V-JEPA: 0.998 -> 1.0).
_C.JEPA.EMA = [0.99925, 0.99925]
# Optimizer updates over which the momentum goes linearly from start to end (then stays at end); unused when equal.
_C.JEPA.EMA_STEPS = 1
# Exponent p of the loss mean |prediction - target|^p / p (V-JEPA 2: 1.0, an L1 loss).
_C.JEPA.LOSS_EXP = 1.0
# Which context and predicted positions an item keeps when a batch's counts are evened out: "first" (its
# first ones in (t, h, w) order, as vjepa2's collator; on a small grid its last frames lose most) or
# "random" (a uniform draw of them).
_C.JEPA.EVEN_COUNTS = "first"

# ---------------------------------------------------------------------------- #
# Teacher of the "teacher" target (MVD / UMT / MaskDistill feature distillation)
# ---------------------------------------------------------------------------- #
_C.TEACHER = CfgNode()
# Yaml of the teacher's architecture (its own pretraining or fine-tuning recipe); relative paths from the working directory.
_C.TEACHER.CFG_FILE = ""
# KEY VALUE overrides of the teacher's yaml (its input size is set to the student's clips).
_C.TEACHER.OPTS = []
# Local checkpoint of the teacher (slowmask or PySlowFast format: a dict with "model_state").
_C.TEACHER.CHECKPOINT_FILE_PATH = ""
# False: the teacher's architecture only, with random weights and a warning (what
# tools/model_info.py builds to count a recipe without its teacher's checkpoint); never train so.
_C.TEACHER.LOAD_WEIGHTS = True
# Block whose output is the target (before any final norm, class token dropped); -1 is the last block.
_C.TEACHER.LAYER = -1
# Normalization of each target token: "layernorm" (parameter-free, MVD), "l2" (UMT) or "none".
_C.TEACHER.NORMALIZE = "layernorm"

# ---------------------------------------------------------------------------- #
# Data
# ---------------------------------------------------------------------------- #
_C.DATA = CfgNode()
# Directory holding train.csv, val.csv and test.csv.
_C.DATA.PATH_TO_DATA_DIR = ""
# Separator between path and label in the csv files (space and comma are both read).
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Prefix joined to every video path in the csv files.
_C.DATA.PATH_PREFIX = ""
# Modules (names, or .py file paths, relative to the yaml that names them) imported when the config is loaded,
# before anything is built, so the datasets, masks, targets, models and methods they register can be chosen.
_C.DATA.CUSTOM_MODULES = []
# Frames per clip.
_C.DATA.NUM_FRAMES = 8
# Distance between sampled frames, at TARGET_FPS.
_C.DATA.SAMPLING_RATE = 8
# Mean of the raw pixels (0-1 scale) per RGB channel.
_C.DATA.MEAN = [0.45, 0.45, 0.45]
# Standard deviation of the raw pixels per RGB channel.
_C.DATA.STD = [0.225, 0.225, 0.225]
# Channels of the input pathway(s).
_C.DATA.INPUT_CHANNEL_NUM = [3, 3]
# Short-side range of the scale jitter when the relative jitter below is empty.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Area range (fraction of the frame) of the random-resized crop.
_C.DATA.TRAIN_JITTER_SCALES_RELATIVE = []
# Aspect-ratio range of the random-resized crop.
_C.DATA.TRAIN_JITTER_ASPECT_RELATIVE = []
# Test views from the first to the last window (one view: the centre one) instead of starting at delta * k / views.
_C.DATA.USE_OFFSET_SAMPLING = False
# Crop size for training.
_C.DATA.TRAIN_CROP_SIZE = 224
# Crop size for testing.
_C.DATA.TEST_CROP_SIZE = 256
# Frame rate the sampling rate refers to; videos at other rates are resampled.
_C.DATA.TARGET_FPS = 30
# Decoder ("pyav", "decord" or "torchcodec"; PySlowFast's "torchvision" reads with PyAV). A file
# decord would misread or cannot open (MPEG-PS/TS, raw streams, .vob, GIF, .swf) is read with PyAV, with a warning.
_C.DATA.DECODING_BACKEND = "pyav"
# Short side the frames are resized to while decoding (0 keeps the native size).
_C.DATA.DECODING_SHORT_SIZE = 256
# Where videos are decoded: "cpu", or "cuda" (torchcodec's NVDEC on this process's GPU; loads in the training process).
_C.DATA.DECODING_DEVICE = "cpu"
# Largest frame (width x height, from the video's header) decoded; a larger video is refused before decoding
# and counted as unreadable (0: no limit). 4096 x 4096 admits 4K video (3840 x 2160, 4096 x 2160), refuses 8K.
_C.DATA.MAX_FRAME_PIXELS = 4096 * 4096
# Sample the jitter scale as the inverse of a uniform draw.
_C.DATA.INV_UNIFORM_SAMPLE = False
# Random horizontal flip in training.
_C.DATA.RANDOM_FLIP = True
# Multi-label classification (mAP).
_C.DATA.MULTI_LABEL = False
# How views are combined at test time ("sum" or "max").
_C.DATA.ENSEMBLE_METHOD = "sum"
# Reverse the clip's channels after normalization (RGB <-> BGR; SSv2 frames are read as BGR, as PySlowFast).
_C.DATA.REVERSE_INPUT_CHANNEL = False
# Training clips leave the loader as uint8 and are normalized on the training device (a quarter of the copy).
_C.DATA.NORMALIZE_ON_DEVICE = False
# Training windows cut from one decoded video, each at its own random start (repeated sampling).
_C.DATA.TRAIN_CROP_NUM_TEMPORAL = 1
# Clips cut from each training window's frames (multiplies AUG.NUM_SAMPLE).
_C.DATA.TRAIN_CROP_NUM_SPATIAL = 1

# ---------------------------------------------------------------------------- #
# Optimizer and schedule
# ---------------------------------------------------------------------------- #
_C.SOLVER = CfgNode()
# Peak learning rate (multiplied by NUM_SHARDS when BASE_LR_SCALE_NUM_SHARDS).
_C.SOLVER.BASE_LR = 0.1
# Learning-rate policy ("cosine" or "constant").
_C.SOLVER.LR_POLICY = "cosine"
# Learning rate at the end of the cosine.
_C.SOLVER.COSINE_END_LR = 0.0
# Cosine runs over the epochs after warm-up rather than all epochs.
_C.SOLVER.COSINE_AFTER_WARMUP = False
# Number of epochs.
_C.SOLVER.MAX_EPOCH = 300
# SGD momentum.
_C.SOLVER.MOMENTUM = 0.9
# SGD dampening.
_C.SOLVER.DAMPENING = 0.0
# SGD Nesterov momentum.
_C.SOLVER.NESTEROV = True
# Weight decay.
_C.SOLVER.WEIGHT_DECAY = 1e-4
# Warm-up length in epochs (linear from WARMUP_START_LR).
_C.SOLVER.WARMUP_EPOCHS = 0.0
# Learning rate at the start of warm-up.
_C.SOLVER.WARMUP_START_LR = 0.01
# Warm-up start as a fraction of BASE_LR (PySlowFast; unused when WARMUP_START_LR is set).
_C.SOLVER.WARMUP_FACTOR = 0.1
# Optimizer ("sgd", "adam", "adamw").
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# Multiply BASE_LR, WARMUP_START_LR and COSINE_END_LR by NUM_SHARDS.
_C.SOLVER.BASE_LR_SCALE_NUM_SHARDS = False
# No weight decay on one-dimensional parameters (norms, biases) and relative position tables.
_C.SOLVER.ZERO_WD_1D_PARAM = False
# Clip each gradient element to this absolute value (None disables).
_C.SOLVER.CLIP_GRAD_VAL = None
# Clip the gradient's global L2 norm to this value (None disables).
_C.SOLVER.CLIP_GRAD_L2NORM = None
# Layer-wise learning-rate decay (1.0 disables).
_C.SOLVER.LAYER_DECAY = 1.0
# Adam betas.
_C.SOLVER.BETAS = (0.9, 0.999)

# ---------------------------------------------------------------------------- #
# Data loader
# ---------------------------------------------------------------------------- #
_C.DATA_LOADER = CfgNode()
# Loader worker processes per training process.
_C.DATA_LOADER.NUM_WORKERS = 8
# Pin host memory for faster copies to the GPU.
_C.DATA_LOADER.PIN_MEMORY = True
# Let the decoder use several threads.
_C.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = False
# Other videos tried when one cannot be read, before the item fails.
_C.DATA_LOADER.NUM_RETRIES = 10
# Seconds a video's open + decode may take before it is abandoned and counted as unreadable (0: no limit).
_C.DATA_LOADER.DECODE_TIMEOUT = 60.0
# Largest fraction of an epoch's items that may need a replacement video before the run stops.
_C.DATA_LOADER.MAX_BAD_FRACTION = 0.1

# ---------------------------------------------------------------------------- #
# TensorBoard
# ---------------------------------------------------------------------------- #
_C.TENSORBOARD = CfgNode()
# Write TensorBoard scalars (the optional tensorboard package must be installed).
_C.TENSORBOARD.ENABLE = False
# TensorBoard directory ("" means OUTPUT_DIR/runs).
_C.TENSORBOARD.LOG_DIR = ""

# ---------------------------------------------------------------------------- #
# Weights & Biases (the optional wandb package: pip install -e ".[wandb]")
# ---------------------------------------------------------------------------- #
_C.WANDB = CfgNode()
# Log json_stats.log's figures, the config and the test to a W&B run; its id is kept in OUTPUT_DIR/wandb_run_id.
_C.WANDB.ENABLE = False
# W&B project ("" : W&B's default, or its WANDB_PROJECT environment variable).
_C.WANDB.PROJECT = ""
# W&B entity, a user or team ("": your default entity).
_C.WANDB.ENTITY = ""
# Run name ("": the OUTPUT_DIR folder's name).
_C.WANDB.NAME = ""
# Tags of the run, e.g. ["k400", "vit-b"].
_C.WANDB.TAGS = []
# "online", "offline" (files under OUTPUT_DIR/wandb, `wandb sync` later), "disabled", or "" (W&B's WANDB_MODE, else online).
_C.WANDB.MODE = ""

# ---------------------------------------------------------------------------- #
# Representation probe (k-NN / linear / attentive top-1 of frozen encoder features)
# ---------------------------------------------------------------------------- #
_C.PROBE = CfgNode()
# Probe the encoder during pretraining (k-NN; the linear probe with PROBE.LINEAR, the attentive with PROBE.ATTENTIVE).
_C.PROBE.ENABLE = False
# Probe after every PERIOD-th epoch and after the last.
_C.PROBE.PERIOD = 5
# Folder of the labelled lists ({split}.csv or class folders {split}/); "" means DATA.PATH_TO_DATA_DIR.
_C.PROBE.PATH_TO_DATA_DIR = ""
# Split whose features are the k-NN memory and the probes' training set.
_C.PROBE.TRAIN_SPLIT = "train"
# Split scored during pretraining.
_C.PROBE.EVAL_SPLIT = "val"
# At most this many items of TRAIN_SPLIT, evenly spread over its list (0: all).
_C.PROBE.TRAIN_MAX_ITEMS = 0
# Number of classes of the lists (0: the largest label of TRAIN_SPLIT plus one).
_C.PROBE.NUM_CLASSES = 0
# Clips per forward pass when encoding the probe sets.
_C.PROBE.BATCH_SIZE = 16
# Decode the probe sets once, before training, and keep the clips in memory (N x 3 x T x S x S float32: small sets).
_C.PROBE.CACHE_CLIPS = False
# Neighbours that vote in the k-NN probe.
_C.PROBE.KNN_K = 20
# Temperature of the k-NN votes' weights exp(cosine similarity / T).
_C.PROBE.KNN_TEMPERATURE = 0.07
# Standardize the pooled features with the labelled set's per-dimension mean and std before the k-NN's cosine.
_C.PROBE.KNN_STANDARDIZE = True
# Also train a linear probe on the cached pooled features at each probe during pretraining.
_C.PROBE.LINEAR = False
# Most L-BFGS iterations of the linear probe (a logistic regression on the cached features).
_C.PROBE.LINEAR_MAX_ITERS = 200
# L2 penalty (LINEAR_L2 / 2 * |W|^2) of the linear probe's weights.
_C.PROBE.LINEAR_L2 = 0.1
# A grid of L2 penalties: the linear probe takes the one of best PROBE.LINEAR_FOLDS-fold cross-validated top-1 on
# the labelled set (never the scored split), named in the output; empty: PROBE.LINEAR_L2.
_C.PROBE.LINEAR_L2S = []
# Folds of that cross-validation (an item's views stay in one fold).
_C.PROBE.LINEAR_FOLDS = 5
# Epochs of the attentive probe (tools/probe.py) over the cached tokens.
_C.PROBE.ATTENTIVE_EPOCHS = 100
# AdamW learning rate of the attentive probe (cosine to zero).
_C.PROBE.ATTENTIVE_LR = 0.003
# Weight decay of the attentive probe.
_C.PROBE.ATTENTIVE_WEIGHT_DECAY = 0.01
# Attention heads of the attentive probe's cross-attention (must divide the feature width).
_C.PROBE.ATTENTIVE_HEADS = 1
# Cached token sets per step when training the attentive probe.
_C.PROBE.HEAD_BATCH_SIZE = 64
# Also train the attentive probe (PROBE.ATTENTIVE_*) at each probe during pretraining (keeps the tokens in memory).
_C.PROBE.ATTENTIVE = False
# Attentive probe: "query" (one learned query cross-attends the tokens) or "blocks" (V-JEPA 2's: blocks, then cross-attention).
_C.PROBE.ATTENTIVE_POOLER = "query"
# Blocks of the "blocks" attentive probe: DEPTH - 1 self-attention blocks, then the cross-attention block (V-JEPA 2: 4).
_C.PROBE.ATTENTIVE_DEPTH = 4
# Hidden width of the "blocks" attentive probe's MLPs, over the feature width.
_C.PROBE.ATTENTIVE_MLP_RATIO = 4.0
# Learning rates of attentive heads trained together, one per (lr, wd) pair; [] for ATTENTIVE_LR (V-JEPA 2: 0.005 to 0.0001).
_C.PROBE.ATTENTIVE_LRS = []
# Weight decays crossed with ATTENTIVE_LRS; the best head is reported with its pair; [] for ATTENTIVE_WEIGHT_DECAY.
_C.PROBE.ATTENTIVE_WEIGHT_DECAYS = []
# Temporal clips per scored item, spread over the video, as TEST.NUM_ENSEMBLE_VIEWS; scores averaged over clips x crops.
_C.PROBE.NUM_ENSEMBLE_VIEWS = 1
# Spatial crops per clip of a scored item, along the long side, as TEST.NUM_SPATIAL_CROPS (V-JEPA 2 on K400: 8 x 3).
_C.PROBE.NUM_SPATIAL_CROPS = 1
# Features probed: "mean" of the last block's tokens, "cls" token, "mean_last_k" / "concat_last_k" of POOL_LAST_K blocks.
_C.PROBE.POOLING = "mean"
# Blocks the "*_last_k" poolings read, each layer-normalized (DINO's linear evaluation: 4).
_C.PROBE.POOL_LAST_K = 4

# ---------------------------------------------------------------------------- #
# Several datasets in one run (TRAIN.DATASET mixed; OmniMAE's images + videos)
# ---------------------------------------------------------------------------- #
_C.MULTI_DATASET = CfgNode()
# One [KEY, VALUE, ...] list per dataset, merged onto this config to build it, e.g. [[TRAIN.DATASET, imagenet, DATA.NUM_FRAMES, 1]].
_C.MULTI_DATASET.OVERRIDES = []
# Each dataset's batches per epoch = int(factor x its batches per pass over its items); [] for 1 each (omnivore's repeat_factors).
_C.MULTI_DATASET.REPEAT_FACTORS = []
# Frames each clip of a dataset is repeated to (set 2 in an image dataset's overrides for a 2-frame patch).
_C.MULTI_DATASET.REPEAT_FRAMES = 1
# One sampling weight per dataset: every batch mixes their items in these proportions (V-JEPA 2: [0.335, 0.1, 0.565]); [] = each batch from one dataset (REPEAT_FACTORS).
_C.MULTI_DATASET.WEIGHTS = []

# PySlowFast's keys of features slowmask does not build: accepted, reported, unused.
add_unused_keys(_C)


def get_defaults() -> CfgNode:
    """A fresh, mutable copy of the defaults."""
    return _C.clone()

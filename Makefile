# Everything a fresh clone needs: `make demo` runs the main job on generated demo
# data, `make test` runs the test suite. Both create .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := demo_data
DEMO_OUT := output/demo
# Seed of the demo's videos and of its runs (make demo SEED=1 DEMO_DATA=demo_data_1 DEMO_OUT=output/demo_1).
SEED ?= 0

.PHONY: install demo demo-vjepa demo-real test clean bench gpu-check

install: $(VENV)/.installed

# torch 2.14.1 / torchvision 0.29.1 are the builds this project is tested with.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(DEMO_DATA)/train.csv: $(VENV)/.installed
	$(PY) tools/make_demo_data.py $(DEMO_DATA) --classes motion_axis --videos-per-class 8 \
		--unlabelled-per-class 120 --val-per-class 8 --test-per-class 32 --seed $(SEED)

# Videos of a circle or a square moving along one of 4 axes (the class). Pretraining on all
# 512 training videos (32 of them labelled), then random initialization against it: k-NN,
# linear and attentive probes of the frozen encoder and fine-tuning on the 32 labelled
# videos, all scored on the 128 test videos; the table ends the output and is written to
# $(DEMO_OUT)/summary.json.
PT_CFG := configs/demo/MViT_tiny_MaskFeat_unlabelled_PT.yaml
FT_CFG := configs/demo/MViT_tiny_few_labels_FT.yaml
PT_CHECKPOINT := $(DEMO_OUT)/pretrain/checkpoints/checkpoint_epoch_00012.pyth
SEEDED := RNG_SEED $(SEED)
# The final probes use every labelled video (the probe during pretraining, at most 32).
PROBED := PROBE.PATH_TO_DATA_DIR $(DEMO_DATA) PROBE.TRAIN_MAX_ITEMS 0 $(SEEDED)

demo: $(DEMO_DATA)/train.csv
	rm -rf $(DEMO_OUT)
	$(PY) tools/run_net.py --cfg $(PT_CFG) DATA.PATH_TO_DATA_DIR $(DEMO_DATA)/videos \
		PROBE.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/pretrain $(SEEDED)
	$(PY) tools/probe.py --cfg $(PT_CFG) --json $(DEMO_OUT)/probe_random_init.json $(PROBED)
	$(PY) tools/probe.py --cfg $(PT_CFG) --checkpoint $(PT_CHECKPOINT) --json $(DEMO_OUT)/probe_pretrained.json \
		$(PROBED)
	$(PY) tools/run_net.py --cfg $(FT_CFG) DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/finetune \
		TRAIN.CHECKPOINT_FILE_PATH $(PT_CHECKPOINT) $(SEEDED)
	$(PY) tools/run_net.py --cfg $(FT_CFG) DATA.PATH_TO_DATA_DIR $(DEMO_DATA) \
		OUTPUT_DIR $(DEMO_OUT)/finetune_random_init TRAIN.CHECKPOINT_FILE_PATH "" $(SEEDED)
	$(PY) tools/visualize.py --cfg $(PT_CFG) DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/pretrain
	$(PY) tools/plot.py $(DEMO_OUT)/pretrain
	$(PY) tools/plot.py $(DEMO_OUT)/finetune $(DEMO_OUT)/finetune_random_init
	$(PY) tools/demo_summary.py $(DEMO_OUT)

# V-JEPA 2 at toy size on the same data (configs/demo/ViT_tiny_VJEPA_PT.yaml on all 512
# videos, 12 epochs), then k-NN, linear and attentive probes of its frozen encoder against
# its random initialization on the 128 test videos; the two probe tables end the output.
VJEPA_CFG := configs/demo/ViT_tiny_VJEPA_PT.yaml
VJEPA_OUT := $(DEMO_OUT)_vjepa
VJEPA_CHECKPOINT := $(VJEPA_OUT)/pretrain/checkpoints/checkpoint_epoch_00012.pyth

demo-vjepa: $(DEMO_DATA)/train.csv
	rm -rf $(VJEPA_OUT)
	$(PY) tools/run_net.py --cfg $(VJEPA_CFG) TRAIN.DATASET video_folder DATA.PATH_TO_DATA_DIR $(DEMO_DATA)/videos \
		OUTPUT_DIR $(VJEPA_OUT)/pretrain $(SEEDED)
	$(PY) tools/probe.py --cfg $(VJEPA_CFG) --json $(VJEPA_OUT)/probe_random_init.json $(PROBED)
	$(PY) tools/probe.py --cfg $(VJEPA_CFG) --checkpoint $(VJEPA_CHECKPOINT) --json $(VJEPA_OUT)/probe_pretrained.json \
		$(PROBED)

# The demo on real pixels: scikit-learn's 1797 scans of handwritten digits (nothing downloaded).
# Images: the scans at 64x64 (1199 train / 299 val / 299 test, a fixed split); pretraining on the
# training images, then random initialization against it: k-NN, linear and attentive probes of the
# frozen encoder fitted on the 1199 training images, fine-tuning on 10 labelled per digit, all scored
# on the 299 test images; the same k-NN and linear probe on the raw pixels of the views are a row
# too. Videos: moving digits (the class is the digit, so only appearance tells
# the classes apart; 500 training videos of 64x64 frames, 100 labelled, 100 test videos), the same rows
# with the video demo's MaskFeat MViT, pretrained by its moving-digit recipe (the loss on the visible tokens).
# Tables end the output and go to $(REAL_OUT)/{images,videos}/summary.json.
REAL_DATA := demo_data_real
REAL_OUT := output/demo_real
IMAGE_PT_CFG := configs/demo/ViT_tiny_image_MAE_PT.yaml
IMAGE_FT_CFG := configs/demo/ViT_tiny_image_few_labels_FT.yaml
IMAGE_CHECKPOINT := $(REAL_OUT)/images/pretrain/checkpoints/checkpoint_epoch_00060.pyth
VIDEO_PT_CFG := configs/demo/MViT_tiny_MaskFeat_moving_digits_PT.yaml
VIDEO_CHECKPOINT := $(REAL_OUT)/videos/pretrain/checkpoints/checkpoint_epoch_00012.pyth
REAL_PROBED := PROBE.TRAIN_MAX_ITEMS 0 $(SEEDED)

$(REAL_DATA)/images/few_labels/train.csv: $(VENV)/.installed
	$(PY) tools/make_demo_images.py $(REAL_DATA)/images --source digits --size 64 --labelled-per-class 10

$(REAL_DATA)/moving_digits/train.csv: $(VENV)/.installed
	$(PY) tools/make_demo_data.py $(REAL_DATA)/moving_digits --classes moving_digits --videos-per-class 10 \
		--unlabelled-per-class 40 --val-per-class 2 --test-per-class 10 --height 64 --width 64 --seed $(SEED)

# $(call pretrain_and_compare,OUT,PT_CFG,PT_DATA,PROBE_DATA,CHECKPOINT,FT_CFG,FT_DATA,FT_KEYS)
define pretrain_and_compare
	rm -rf $(1)
	$(PY) tools/run_net.py --cfg $(2) DATA.PATH_TO_DATA_DIR $(3) PROBE.PATH_TO_DATA_DIR $(4) OUTPUT_DIR $(1)/pretrain \
		$(SEEDED)
	$(PY) tools/probe.py --cfg $(2) --eval-split test --json $(1)/probe_random_init.json PROBE.PATH_TO_DATA_DIR $(4) $(REAL_PROBED)
	$(PY) tools/probe.py --cfg $(2) --eval-split test --checkpoint $(5) --json $(1)/probe_pretrained.json PROBE.PATH_TO_DATA_DIR $(4) \
		$(REAL_PROBED)
	$(PY) tools/probe.py --cfg $(2) --eval-split test --pixels --probes knn linear --json $(1)/probe_pixels.json \
		PROBE.PATH_TO_DATA_DIR $(4) $(REAL_PROBED)
	$(PY) tools/run_net.py --cfg $(6) DATA.PATH_TO_DATA_DIR $(7) OUTPUT_DIR $(1)/finetune TRAIN.CHECKPOINT_FILE_PATH $(5) \
		$(8) $(SEEDED)
	$(PY) tools/run_net.py --cfg $(6) DATA.PATH_TO_DATA_DIR $(7) OUTPUT_DIR $(1)/finetune_random_init \
		TRAIN.CHECKPOINT_FILE_PATH "" $(8) $(SEEDED)
	$(PY) tools/demo_summary.py $(1)
endef

demo-real: $(REAL_DATA)/images/few_labels/train.csv $(REAL_DATA)/moving_digits/train.csv
	$(call pretrain_and_compare,$(REAL_OUT)/images,$(IMAGE_PT_CFG),$(REAL_DATA)/images,$(REAL_DATA)/images,\
		$(IMAGE_CHECKPOINT),$(IMAGE_FT_CFG),$(REAL_DATA)/images/few_labels,)
	$(call pretrain_and_compare,$(REAL_OUT)/videos,$(VIDEO_PT_CFG),$(REAL_DATA)/moving_digits/videos,\
		$(REAL_DATA)/moving_digits,$(VIDEO_CHECKPOINT),$(FT_CFG),$(REAL_DATA)/moving_digits,MODEL.NUM_CLASSES 10)

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

clean:
	rm -rf $(DEMO_DATA) $(DEMO_OUT) $(REAL_DATA) $(REAL_OUT)

# Loader, HOG target and MaskMViT-S training step, each beside its baseline (CPU; a few
# minutes on 2 cores; the benchmark's videos are written once into output/bench_videos).
bench: $(VENV)/.installed
	$(PY) tools/benchmark.py --cfg configs/k400_MViT_S_MaskFeat_PT.yaml \
		--video-dir output/bench_videos --json output/bench/benchmark.json

# On a GPU machine: the gpu-marked tests, MaskFeat MViTv2-S/-L steps (MFU), MAE's sparse speed-up,
# the SDPA backend of every attention shape, HOG and the loader, as one table (at most 8 minutes);
# the JSON goes to output/gpu_check/gpu_check.json. PEAK_TFLOPS=X overrides the device's bf16 peak.
gpu-check: $(VENV)/.installed
	$(PY) tools/gpu_check.py --json output/gpu_check/gpu_check.json $(if $(PEAK_TFLOPS),--peak-tflops $(PEAK_TFLOPS))

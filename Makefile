# Everything a fresh clone needs: `make demo` runs the main job on generated demo
# data, `make test` runs the test suite. Both create .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := demo_data
DEMO_OUT := output/demo

.PHONY: install demo test clean bench gpu-check

install: $(VENV)/.installed

# torch 2.14.1 / torchvision 0.29.1 are the builds this project is tested with.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(DEMO_DATA)/train.csv: $(VENV)/.installed
	$(PY) tools/make_demo_data.py $(DEMO_DATA) --videos-per-class 16

demo: $(DEMO_DATA)/train.csv
	rm -rf $(DEMO_OUT)/pretrain
	$(PY) tools/run_net.py --cfg configs/demo/MViT_tiny_MaskFeat_PT.yaml \
		DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/pretrain
	rm -rf $(DEMO_OUT)/finetune
	$(PY) tools/run_net.py --cfg configs/demo/MViT_tiny_FT.yaml \
		DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/finetune \
		TRAIN.CHECKPOINT_FILE_PATH $(DEMO_OUT)/pretrain/checkpoints/checkpoint_epoch_00020.pyth
	$(PY) tools/visualize.py --cfg configs/demo/MViT_tiny_MaskFeat_PT.yaml \
		DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/pretrain
	$(PY) tools/plot.py $(DEMO_OUT)/pretrain
	$(PY) tools/plot.py $(DEMO_OUT)/finetune

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

clean:
	rm -rf $(DEMO_DATA) $(DEMO_OUT)

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

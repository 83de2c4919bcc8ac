# Everything a fresh clone needs: `make demo` runs the main job on generated demo
# data, `make test` runs the test suite. Both create .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := demo_data
DEMO_OUT := output/demo

.PHONY: install demo test clean

install: $(VENV)/.installed

# torch 2.14.1 / torchvision 0.29.1 are the builds this project is tested with.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(DEMO_DATA)/train.csv: $(VENV)/.installed
	$(PY) tools/make_demo_data.py $(DEMO_DATA)

demo: $(DEMO_DATA)/train.csv
	rm -rf $(DEMO_OUT)/pretrain
	$(PY) tools/run_net.py --cfg configs/demo/MViT_tiny_MaskFeat_PT.yaml \
		DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)/pretrain

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

clean:
	rm -rf $(DEMO_DATA) $(DEMO_OUT)

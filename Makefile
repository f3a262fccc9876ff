# xaikit: `make lab` opens the workbook, `make test` runs every test. Both set up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xaikit-installed
# The committed outputs and CI use the embedded offline model; override for ImageNet:
#   make lab XAIKIT_MODEL=vgg16
XAIKIT_MODEL ?= vgg16-shapes
export XAIKIT_MODEL

.PHONY: setup lab test unit notebooks test-imagenet-path train figures clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup
	XAIKIT_OFFLINE=1 $(PY) -m pytest tests notebooks --nbval --sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=300

unit: setup
	XAIKIT_OFFLINE=1 $(PY) -m pytest tests

notebooks: setup
	XAIKIT_OFFLINE=1 $(PY) -m pytest notebooks --nbval --sanitize-with notebooks/sanitize.cfg

# The ImageNet code path offline: every notebook runs (not compared) on torchvision's VGG-16
# architecture with random weights at 224x224. Slow (VGG-16 on a CPU); not part of `make test`.
test-imagenet-path: setup
	XAIKIT_MODEL=vgg16-untrained XAIKIT_OFFLINE=1 $(PY) -m pytest notebooks --nbval-lax

train: setup
	$(PY) -m xaikit.train

# Every figure of the workbook as PNG and PDF plus manifest.json/.csv (identical bytes on a
# rerun). Offline model by default; `make figures XAIKIT_MODEL=vgg16 FIGURES=out` for ImageNet.
FIGURES ?= figures
figures: setup
	$(PY) -m xaikit figures --model $(XAIKIT_MODEL) --out $(FIGURES)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# xaikit: `make lab` opens the workbook, `make test` runs every test. Both set up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xaikit-installed
# The committed outputs and CI use the embedded offline model; override for ImageNet:
#   make lab XAIKIT_MODEL=vgg16
XAIKIT_MODEL ?= vgg16-shapes
export XAIKIT_MODEL
# The committed outputs are CPU outputs: tests and nbval compare on the CPU even where a GPU
# is present (`make lab` uses the GPU when there is one; XAIKIT_DEVICE=cpu there to compare).
TEST_ENV := XAIKIT_OFFLINE=1 XAIKIT_DEVICE=cpu
# The shipped models `make train` retrains (xaikit.train.RECIPES)
TRAIN_MODELS := vgg16-shapes vgg16-shapes-watermark

.PHONY: setup lab book test lint unit notebooks notebooks-other-machine execute test-imagenet-path test-imagenet-path-small train $(addprefix train-,$(TRAIN_MODELS)) figures clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

# As root (containers) it adds --allow-root; without a display it opens no browser and
# JupyterLab prints the address with its token. `make lab LAB_OPTIONS=--port=9999` passes options on.
lab: setup
	$(PY) -m xaikit lab notebooks $(LAB_OPTIONS)

NBVAL := --nbval --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=300
# What another machine computes: torch's default (non-vectorised) CPU kernels, oneDNN limited to
# AVX2, one thread (reductions in another order). The committed outputs must hold under both.
OTHER_MACHINE := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Lint, then unit tests and strict nbval twice: natively, then as on another machine.
test: setup lint
	$(TEST_ENV) $(PY) -m pytest tests notebooks $(NBVAL)
	@echo "== again with other CPU kernels and one thread: $(OTHER_MACHINE)"
	$(TEST_ENV) $(OTHER_MACHINE) $(PY) -m pytest tests notebooks $(NBVAL) -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check xaikit tests benchmarks book

unit: setup
	$(TEST_ENV) $(PY) -m pytest tests

notebooks: setup
	$(TEST_ENV) $(PY) -m pytest notebooks $(NBVAL)

notebooks-other-machine: setup
	$(TEST_ENV) $(OTHER_MACHINE) $(PY) -m pytest notebooks $(NBVAL) -p no:cacheprovider

# Re-execute every notebook in place on the offline model (then commit the outputs).
execute: setup
	for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	    $(TEST_ENV) $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; done
	$(PY) -m xaikit strip-widgets notebooks/[0-9][0-9]_*.ipynb

# The ImageNet code path offline: every notebook runs (not compared) on torchvision's VGG-16
# architecture with random weights at 224x224. Slow (VGG-16 on a CPU); not part of `make test`.
test-imagenet-path: setup
	XAIKIT_MODEL=vgg16-untrained XAIKIT_OFFLINE=1 $(PY) -m pytest notebooks --nbval-lax

# The same at 64x64 inputs (XAIKIT_INPUT_SIZE): every notebook on the ImageNet code path in
# minutes, so that the path cannot rot; .ci/run runs it after make test.
test-imagenet-path-small: setup
	XAIKIT_MODEL=vgg16-untrained XAIKIT_INPUT_SIZE=64 $(TEST_ENV) $(PY) -m pytest notebooks --nbval-lax -p no:cacheprovider

# The three shipped models (xaikit.train.RECIPES), two at a time on one thread each: about
# 50 minutes on 2 cores (times in data/*.json). Each writes data/NAME.safetensors and .json.
train: setup
	@echo "make train: $(TRAIN_MODELS), both at once on one thread each; about 70 minutes on 2 cores (data/*.json: train_seconds)"
	$(MAKE) -j2 $(addprefix train-,$(TRAIN_MODELS))

$(addprefix train-,$(TRAIN_MODELS)): train-%: setup
	OMP_NUM_THREADS=1 $(PY) -m xaikit.train --model $*

# Every figure of the workbook as PNG and PDF plus manifest.json/.csv (identical bytes on a
# rerun). Offline model by default; `make figures XAIKIT_MODEL=vgg16 FIGURES=out` for ImageNet.
FIGURES ?= figures
figures: setup
	$(PY) -m xaikit figures --model $(XAIKIT_MODEL) --out $(FIGURES) --force

# The workbook as a website in book/_build/html (Sphinx + myst-nb, config in book/): the committed
# notebooks with their stored outputs (nothing executed), the README's quickstart and the learning
# path; MathJax is bundled, so it builds and reads offline. Fresh and warning-free every time.
book: setup
	$(PY) -m sphinx -b html --fresh-env --write-all --fail-on-warning --keep-going --quiet book book/_build/html
	@echo "book: open book/_build/html/index.html"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info book/_build book/notebooks

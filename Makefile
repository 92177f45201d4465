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
	# Coverage in every Python process a test starts, when COVERAGE_PROCESS_START is set (make test).
	echo "import os; 'COVERAGE_PROCESS_START' in os.environ and __import__('coverage').process_startup()" \
		> "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/callmanager-coverage.pth"
	touch $(STAMP)

run: install
	$(BIN)/callmanager up $(ARGS)

# The whole suite also checks the coverage floors of authentication, jobs and backups (pyproject's
# [tool.coverage.run] says what is measured); a run of some tests (ARGS) only reports nothing.
COVERAGE_ENV := COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml COVERAGE_FILE=$(CURDIR)/.coverage
FLOOR_AUTH    ?= 90
FLOOR_JOBS    ?= 85
FLOOR_BACKUPS ?= 85

test: install
	rm -f .coverage .coverage.*
	$(COVERAGE_ENV) $(BIN)/python -m pytest $(ARGS)
ifeq ($(strip $(ARGS)),)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report --precision=1 --fail-under=$(FLOOR_AUTH) \
		--include='*/gateway/auth.py,*/gateway/users.py,*/gateway/roles.py,*/kernel/roles.py'
	$(BIN)/coverage report --precision=1 --fail-under=$(FLOOR_JOBS) \
		--include='*/kernel/jobqueue.py,*/system/jobregistry.py'
	$(BIN)/coverage report --precision=1 --fail-under=$(FLOOR_BACKUPS) --include='*/system/backup.py'
endif

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

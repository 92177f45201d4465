# The README's two commands are `make run` and `make test`; both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PACKAGES := kernel services/contacts services/generator services/importexport services/gateway \
            services/dialer-agent client system
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench mutation lock clean

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

# Mutation testing of the auth and jobs modules (docs/MUTATION.md; not part of `make test` or CI). mutmut
# names a mutant by its file's path under src/, so it runs from var/mutation, where src/ links the three
# packages ([tool.mutmut] in pyproject.toml says what is mutated and which tests run). One worker process.
# ARGS: mutant names or globs (e.g. 'kernel.jobqueue*'), to run only those.
MUTATION_DIR := var/mutation

mutation: install
	mkdir -p $(MUTATION_DIR)/src
	ln -sfn $(CURDIR)/kernel/src/kernel $(MUTATION_DIR)/src/kernel
	ln -sfn $(CURDIR)/services/gateway/src/gateway $(MUTATION_DIR)/src/gateway
	ln -sfn $(CURDIR)/system/src/system $(MUTATION_DIR)/src/system
	ln -sfn $(CURDIR)/tests $(MUTATION_DIR)/tests
	ln -sfn $(CURDIR)/pyproject.toml $(MUTATION_DIR)/pyproject.toml
	cd $(MUTATION_DIR) && env -u CALLMANAGER_REQUIRE_SERVICES $(CURDIR)/$(BIN)/mutmut run --max-children 1 $(ARGS)
	cd $(MUTATION_DIR) && $(CURDIR)/$(BIN)/mutmut results --all true > results.txt
	@printf '%-19s %7s %6s %8s %8s %9s %11s %6s\n' module mutants killed survived "no tests" "timed out" "not checked" score
	@awk -F': ' 'NF == 2 { split($$1, p, ".x"); m = p[1]; gsub(/ /, "", m); n[m]++; s[m, $$2]++ } \
	END { for (m in n) { checked = n[m] - s[m, "not checked"]; \
	printf "%-19s %7d %6d %8d %8d %9d %11d %5.1f%%\n", m, n[m], s[m, "killed"], s[m, "survived"], \
	s[m, "no tests"], s[m, "timeout"], s[m, "not checked"], checked ? 100 * s[m, "killed"] / checked : 0 } }' \
	$(MUTATION_DIR)/results.txt | sort

# Re-resolve the lock file from the ranges in every pyproject.toml (needs network access).
lock:
	bash requirements/compile.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

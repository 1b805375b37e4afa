# The two commands a new user needs (see README):
#   make run   - set up (virtualenv, project, system packages when root) and start the app on the samples
#   make test  - same set-up, then run every test
PY      := .venv/bin/python
STAMP   := .venv/.msus-installed
PORT    ?= 8501

.PHONY: run test setup bench samples

setup: $(STAMP)
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: setup
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks

samples: setup
	$(PY) -m msus samples

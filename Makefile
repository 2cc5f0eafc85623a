# MNIST report: `make report` builds everything, `make test` checks everything.
# Both create the virtual environment they need first (idempotent).
# ACCEL=cuda (e.g. `make setup ACCEL=cuda`) installs TensorFlow's GPU build, tensorflow[and-cuda],
# at the version requirements.txt pins, instead of tensorflow-cpu; everything else is the same.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the build installed last (.venv/.installed-cuda after `make setup ACCEL=cuda`) stays the default
ACCEL  ?= $(if $(wildcard $(VENV)/.installed-cuda),cuda,cpu)
STAMP  := $(VENV)/.installed-$(ACCEL)
REQUIREMENTS := $(VENV)/requirements-$(ACCEL).txt
KERNEL := mnist-report
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# make report and make run record what each chapter reads; the ledger is rebuilt from it
RECORD := .cache/ledger-record
RECORDING = MNIST_PROFILE=full MNIST_LEDGER_RECORD=$(abspath $(RECORD))
EXECUTE := MNIST_PROGRESS=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	--ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=$(KERNEL)

# The student's own versions (requirements-student.txt, from ts-39/MNIST), for the control runs
# of the student's programs (mnist_report/student_runner.py); make test never needs them.
STUDENT_VENV := .venv-student

.PHONY: help setup data report run retrain smoke-ledger check-ledger student-env html bench bench-notebooks test unit notebooks-test lint lab clean \
	clean-cache distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv with the pinned packages and a Jupyter kernel

$(STAMP): requirements.txt pyproject.toml
	@case "$(ACCEL)" in cpu|cuda) ;; *) echo "ACCEL must be cpu or cuda, not '$(ACCEL)'"; exit 2;; esac
	$(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	@# cuda: the same pins, with TensorFlow's GPU build in place of tensorflow-cpu (Linux x86-64)
	if [ "$(ACCEL)" = cuda ]; then \
		sed -e 's/^tensorflow-cpu==\([^;]*\);.*/tensorflow[and-cuda]==\1; sys_platform == "linux" and platform_machine == "x86_64"/' \
			requirements.txt > $(REQUIREMENTS); \
		$(BIN)/python -m pip uninstall -y -q tensorflow-cpu || true; \
	else \
		cp requirements.txt $(REQUIREMENTS); \
		if [ "$$(uname -sm)" = "Linux x86_64" ]; then \
			$(BIN)/python -m pip uninstall -y -q tensorflow 2>/dev/null || true; fi; \
	fi
	$(BIN)/python -m pip install --disable-pip-version-check -r $(REQUIREMENTS)
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
		--display-name "Python (mnist-report)"
	touch $(STAMP)

student-env: $(STUDENT_VENV)/.installed  ## a second environment with the student's versions (TensorFlow 2.17.0, Keras 3.5.0, NumPy 1.26.4)

$(STUDENT_VENV)/.installed: requirements-student.txt
	$(PYTHON) -m venv $(STUDENT_VENV)
	@# tensorflow-cpu on Linux x86-64 (the same code without CUDA), tensorflow elsewhere
	if [ "$$(uname -sm)" = "Linux x86_64" ]; then cp requirements-student.txt $(STUDENT_VENV)/pins.txt; \
	else sed 's/^tensorflow-cpu=/tensorflow=/' requirements-student.txt > $(STUDENT_VENV)/pins.txt; fi
	$(STUDENT_VENV)/bin/python -m pip install --disable-pip-version-check -r $(STUDENT_VENV)/pins.txt
	$(STUDENT_VENV)/bin/python -c "import keras, numpy, sklearn, tensorflow; \
		print('student environment: TensorFlow', tensorflow.__version__, 'Keras', keras.__version__)"
	touch $@

data: $(STAMP)  ## fetch MNIST into data/mnist.npz and verify its digests
	$(BIN)/python -c "import helpers; helpers.load_mnist(); print('MNIST verified:', helpers.MNIST_CACHE)"

report: $(STAMP) data  ## execute every notebook (full profile, from cache and ledger), rewrite the ledger, export HTML
	@rm -rf $(RECORD)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; start=$$(date +%s); \
		$(RECORDING) MNIST_CHAPTER=$$(basename $$nb .ipynb) $(EXECUTE) $$nb || exit 1; \
		echo "   $$(( $$(date +%s) - start )) s"; \
	done
	$(BIN)/python -m mnist_report.ledger build $(RECORD) --replace
	$(MAKE) html

# each `make run` records in its own folder, so that runs of two chapters never clear each other's
run: RECORD := $(RECORD)-$(NB)
run: $(STAMP) data  ## execute one notebook in place (full profile) and rewrite its ledger file: make run NB=01
	@rm -rf $(RECORD)
	@nb=$(firstword $(wildcard notebooks/$(NB)*.ipynb)); test -n "$$nb" || { echo "no notebook notebooks/$(NB)*"; exit 2; }; \
	$(RECORDING) MNIST_CHAPTER=$$(basename $$nb .ipynb) $(EXECUTE) $$nb
	$(BIN)/python -m mnist_report.ledger build $(RECORD)

retrain: $(STAMP) data  ## a true cold run: `make report` ignoring the ledger and the local cache (hours; .cache/ is kept)
	MNIST_LEDGER=off MNIST_CACHE_DIR=$${MNIST_RETRAIN_CACHE:-.cache/retrain} $(MAKE) report

smoke-ledger: $(STAMP) data  ## record what `make test` trains (the smoke profile) into results/ledger/smoke/, so a fresh clone's tests replay it
	@rm -rf $(RECORD)-smoke
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb (smoke)"; \
		MNIST_PROFILE=smoke MNIST_LEDGER_RECORD=$(abspath $(RECORD))-smoke \
		MNIST_CHAPTER=$$(basename $$nb .ipynb) MNIST_PROGRESS=0 $(BIN)/jupyter nbconvert \
			--to notebook --execute --stdout --ExecutePreprocessor.timeout=-1 \
			--ExecutePreprocessor.kernel_name=$(KERNEL) $$nb > /dev/null || exit 1; \
	done
	MNIST_PROFILE=smoke $(BIN)/python -m mnist_report.ledger build $(RECORD)-smoke --replace

check-ledger: $(STAMP) data  ## every chapter replayed from the ledger alone (no cache, nothing computed) equals the committed one
	MNIST_REPLAY=all $(BIN)/python -m pytest -p no:cacheprovider tests/test_replay.py

html: $(STAMP)  ## export report/index.html (every chapter, contents) and report/NN_name.html
	$(BIN)/python -c "import helpers; print('Report:', helpers.build_report())"

bench: $(STAMP) data  ## time training (helper vs plain fit), inference, time to 99 % -> results/bench.json
	MNIST_PROFILE=full $(BIN)/python bench.py

bench-notebooks: $(STAMP) data  ## `make report` cold (cache deleted, ledger off), then warm, per notebook -> results/bench.json
	$(MAKE) clean-cache
	@start=$$(date +%s); MNIST_LEDGER=off $(MAKE) report || exit 1; \
	MNIST_PROFILE=full $(BIN)/python bench.py --notebooks cold --total $$(( $$(date +%s) - start ))
	@cache="$${MNIST_CACHE_DIR:-.cache}"; touch "$$cache/.warm-start"; \
	start=$$(date +%s); $(MAKE) report || exit 1; \
	MNIST_PROFILE=full $(BIN)/python bench.py --notebooks warm --total $$(( $$(date +%s) - start )); \
	echo "warm run: $$(find "$$cache" -name '*.joblib' -newer "$$cache/.warm-start" | wc -l) new cache entries (0: every result was served from the cache)"

test: $(STAMP) data lint unit notebooks-test  ## lint, unit and hygiene tests, every notebook via nbval (smoke)

# unit tests in parallel (pytest-xdist; TEST_WORKERS=1 runs them in one process); the notebooks in
# order, one kernel, because chapter 05 reads what 02-04 just wrote
TEST_WORKERS ?= 2
unit: $(STAMP)
	MNIST_PROFILE=smoke $(BIN)/python -m pytest -n $(TEST_WORKERS) tests

notebooks-test: $(STAMP)
	MNIST_PROFILE=smoke $(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

lint: $(STAMP)  ## ruff over mnist_report/, helpers.py, bench.py, tests/ and the notebooks
	$(BIN)/ruff check mnist_report helpers.py bench.py conftest.py tests notebooks \
		docs/chapter_template.ipynb

lab: $(STAMP)  ## open the notebooks in JupyterLab, with this project's kernel
	$(BIN)/jupyter lab notebooks

clean:  ## remove build outputs and tool caches; keeps the training cache (see clean-cache)
	rm -rf report .pytest_cache .ruff_cache __pycache__ tests/__pycache__ mnist_report/__pycache__
	rm -rf "$${MNIST_SMOKE_DIR:-$${TMPDIR:-/tmp}/mnist-report-smoke}"

clean-cache:  ## delete the local training cache (weights); chapters in the ledger replay from it, the rest retrain
	rm -rf "$${MNIST_CACHE_DIR:-.cache}"

distclean: clean clean-cache  ## also remove the training cache, .venv, .venv-student and data/
	rm -rf $(VENV) $(STUDENT_VENV) data

# The two commands: `make demo` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The console's front-end libraries (map, charts), from the npm registry by its lock file.
WEB       := console/web
WEB_STAMP := $(WEB)/node_modules/.installed-stamp
# The JVM programs (Apache Kafka's broker), resolved from Maven Central by pom.xml.
JVM_STAMP := .jvm/.resolved-stamp

.PHONY: setup java chromium postgresql docker-compose web jvm demo test bench bench-lake lint clean

setup: java chromium postgresql docker-compose web jvm $(STAMP)

java:
	@scripts/ensure-java

chromium:
	@scripts/ensure-chromium

postgresql:
	@scripts/ensure-postgresql

docker-compose:
	@scripts/ensure-docker-compose

web: $(WEB_STAMP)

jvm: java $(JVM_STAMP)

$(JVM_STAMP): pom.xml scripts/ensure-jvm-artifacts
	@scripts/ensure-jvm-artifacts
	@touch $(JVM_STAMP)

# Like $(STAMP): `npm ci` runs again only when the package files change.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: the console's pages need npm (Node.js) to install their" \
		"libraries from $(WEB)/package-lock.json. Install it, then run make again:" \
		"sudo apt-get install nodejs npm" >&2; exit 1; }
	@echo "setup: installing the console's front-end libraries into $(WEB)/node_modules"
	@cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

# Reinstalled only when the dependencies change: a second run with nothing changed takes seconds.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "error: citybrain needs Python 3.11+ (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing citybrain and its dependencies into $(VENV)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,fast]'
	@touch $(STAMP)

demo: setup
	$(BIN)/citybrain demo

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/ingest.py --records 200000 --invalid-fraction 0.01 --rounds 5

# About 25 minutes on 2 cores: 7 days of city-sized bronze (2.4 GB), fused as one day and as seven.
bench-lake: setup
	$(BIN)/python benchmarks/lake.py --days 7

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .jvm var .pytest_cache .ruff_cache *.egg-info $(WEB)/node_modules

# LENS: `make demo` runs the end-to-end demo, `make test` runs every test.
# Both run `make setup` first, which is idempotent: a second run only checks stamps.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.lens-installed
PROTOS := $(wildcard protos/lens/v1/*.proto)
GENERATED := $(patsubst protos/%.proto,%_pb2.py,$(PROTOS))
KAFKA_JARS := deploy/kafka/lib/.resolved
# The Prometheus server the monitoring integration test runs (Debian package).
PROMETHEUS := /usr/bin/prometheus
# The headless browser the report test opens `lens report` pages in (Debian package).
CHROMIUM := /usr/bin/chromium

.PHONY: setup demo test unit integration bench clean help

help:
	@echo "make demo   - set up, then run the end-to-end demo"
	@echo "make test   - set up, then run all tests (unit + integration with a real Kafka broker)"
	@echo "make setup  - create .venv, install pinned dependencies, generate protobuf code, resolve Kafka jars"
	@echo "make unit / make integration - one half of the suite"
	@echo "make bench  - the funnel worker under load (after one make demo); results in bench/results/funnel-load.json"
	@echo "make clean  - remove .venv, generated code, Kafka jars and .run/"

setup: $(INSTALLED) $(GENERATED) $(KAFKA_JARS) $(PROMETHEUS) $(CHROMIUM)

$(INSTALLED): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: LENS needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@command -v java >/dev/null || { echo "error: java not found: install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "error: mvn not found: install Maven (apt-get install maven)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==26.3
	$(PY) -m pip install -q -r requirements.lock
	@# tensorflow-serving-api requires the full tensorflow wheel, a second copy of tensorflow-cpu.
	$(PY) -m pip install -q --no-deps tensorflow-serving-api==2.21.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lens/v1/%_pb2.py: protos/lens/v1/%.proto | $(INSTALLED)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. $<

$(KAFKA_JARS): deploy/kafka/pom.xml | $(INSTALLED)
	$(PY) -c "from services.stack import resolve_kafka_jars; print('Kafka jars in', resolve_kafka_jars())"

$(PROMETHEUS):
	@command -v apt-get >/dev/null || { echo "error: install Prometheus (Debian package prometheus) by hand"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "error: install Chromium (Debian package chromium) by hand"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

demo: setup
	$(VENV)/bin/lens demo $(if $(FOLLOW),--follow)

# The funnel worker under load (bench/funnel_load.py), on the model `make demo` exported.
bench: setup
	@test -d .run/demo/models/lens || { echo "run 'make demo' once first: the load benchmark serves its model"; exit 1; }
	$(VENV)/bin/python bench/funnel_load.py --out bench/results/funnel-load.json

test: setup
	$(PY) -m pytest tests

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

clean:
	rm -rf $(VENV) $(GENERATED) $(patsubst %.py,%.pyi,$(GENERATED)) deploy/kafka/lib .run

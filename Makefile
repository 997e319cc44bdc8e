# Two entry points: `make dev` starts a dev node, `make test` runs the whole suite.
# Each sets up what it needs first (a virtual environment, the Node.js test clients).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: dev test demo bench bench-call bench-logs bench-confidential bench-consensus compile-contracts clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Hardhat 3 example pins Node.js 22 (the `node` package). npm skips optional packages
# whose engines the running Node.js does not meet, as Hardhat's native EDR binding (Node
# 22+), so a second pass runs npm on the pinned Node.js to add them (lockfile untouched).
HARDHAT_EXAMPLE := examples/hardhat
$(HARDHAT_EXAMPLE)/node_modules/.installed: $(HARDHAT_EXAMPLE)/package.json $(HARDHAT_EXAMPLE)/package-lock.json
	npm ci --prefix $(HARDHAT_EXAMPLE) --no-audit --no-fund --loglevel=error
	PATH="$(CURDIR)/$(HARDHAT_EXAMPLE)/node_modules/.bin:$$PATH" \
		npm install --prefix $(HARDHAT_EXAMPLE) --no-save --no-audit --no-fund --loglevel=error
	touch $@

dev: $(BIN)/.installed
	$(BIN)/conclave dev $(ARGS)

test: $(BIN)/.installed node_modules/.installed $(HARDHAT_EXAMPLE)/node_modules/.installed
	$(BIN)/pytest -n 2 $(ARGS)

bench: $(BIN)/.installed node_modules/.installed
	$(BIN)/python -m bench.erc20_throughput $(ARGS)

bench-call: $(BIN)/.installed
	$(BIN)/python -m bench.eth_call_throughput $(ARGS)

bench-logs: $(BIN)/.installed
	$(BIN)/python -m bench.get_logs $(ARGS)

bench-confidential: $(BIN)/.installed
	$(BIN)/python -m bench.confidential $(ARGS)

bench-consensus: $(BIN)/.installed
	$(BIN)/python -m bench.consensus $(ARGS)

# The purchase-order story (examples/purchase_orders) on a throw-away dev node, stopped after.
demo: $(BIN)/.installed
	$(BIN)/python examples/purchase_orders/demo.py --start-node $(ARGS)

compile-contracts: node_modules/.installed
	node scripts/compile-contracts.mjs

clean:
	rm -rf $(VENV) node_modules $(HARDHAT_EXAMPLE)/node_modules .pytest_cache .hypothesis

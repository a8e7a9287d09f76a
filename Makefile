# Pushcart: `make run` serves the service with a demo shop; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000

# `make run` is a local trial: a placeholder contact (the service warns about it) and the
# scheduler inside the web process. Set VAPID_SUBJECT to a real mailto:/https: URL in production.
export VAPID_SUBJECT ?= mailto:admin@localhost
export PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: run test venv dev-venv system-deps node-deps bench clean vendor widget readme-config plugin

venv: $(VENV)/.runtime
dev-venv: $(VENV)/.dev

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: venv
	$(FLASK) db upgrade
	$(FLASK) vapid init
	$(FLASK) demo init
	RUN_SCHEDULER=1 $(FLASK) run --host $(HOST) --port $(PORT) --no-reload --no-debugger --with-threads

# Debian packages the tests use, installed (in one apt run) when missing and root: chromium +
# chromium-driver (browser tests), php-cli (the WooCommerce plugin's tests), wordpress +
# php-mysql (the plugin on real WordPress, with the MariaDB at 127.0.0.1:3306), wrk (load runs).
# Each is package:command; a package without a command (package:) is looked up with dpkg.
DEBIAN_PACKAGES := chromium:chromium chromium-driver:chromedriver php-cli:php wordpress: php-mysql: wrk:wrk
system-deps:
	@missing=""; for pair in $(DEBIAN_PACKAGES); do \
	  pkg="$${pair%%:*}"; cmd="$${pair#*:}"; \
	  if [ -n "$$cmd" ]; then command -v "$$cmd" >/dev/null; \
	  else dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "ok installed"; fi \
	  || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then echo "system packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "missing and not root:$$missing (the tests that need them are skipped)" >&2; \
	fi

# The npm packages the tests use: web-push-testing (the mock push service), web-push (bench),
# @shopify/theme-check-node (Shopify's checks on integrations/shopify's theme app extension), liquidjs
# (renders its app-embed block in the tests).
node-deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: dev-venv system-deps node-deps
	$(BIN)/lint-imports .importlinter
	$(BIN)/python -m pytest

# Chart.js for the dashboard, from the npm package pinned in package.json (served locally, no CDN).
vendor: node-deps
	cp node_modules/chart.js/dist/chart.umd.js server/static/vendor/chart.umd.js

# The served widget: widget/pushcart.js minified (terser, pinned in package.json) into
# widget/dist/pushcart.min.js, and the on-site messages' script widget/onsite.js into
# widget/dist/pushcart-onsite.min.js; both are committed; the tests check they are the builds of the sources.
widget: node-deps
	npm run --silent build:widget
	npm run --silent build:onsite

# The WordPress plugin as dist/pushcart-for-woocommerce-<version>.zip, reproducible (sorted
# entries, fixed timestamps): the same bytes as the dashboard's Install page serves.
plugin: venv
	$(BIN)/python -m server.merchant.plugin_zip dist

bench: dev-venv node-deps
	$(BIN)/python bench/send_bench.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache

# The README's configuration tables, generated from the declared settings (server/core/config.py);
# a test holds the README equal to them.
readme-config: venv
	@$(BIN)/python -c 'from server.core.config import settings_tables; print(settings_tables(), end="")'

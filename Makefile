# The two commands of README.md. Each does its own set-up first.
.PHONY: demo test lint setup

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/reconciler demo

lint: setup
	.venv/bin/ruff check reconciler tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache

test: lint
	.venv/bin/pytest -q -n 2 --dist loadfile --durations=25

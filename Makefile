# histocrowd: `make demo` runs the main job, `make test` the tests (see README.md).
.PHONY: demo test test-smoke bench lint synthetic simulate simulate-ci

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

test-smoke:
	SKIP_SMOKE=1 TEST_BROKER_URL=filesystem:// ./scripts/test.sh -m smoke

bench:
	REQUIREMENTS=requirements-dev.txt bash -c 'source scripts/setup-env.sh && python bench/tiles.py && python bench/consensus.py && python bench/learning.py --device auto'

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

synthetic:
	.venv/bin/python manage.py make_synthetic_slide var/slides/synthetic --name synthetic-20k --size 20000 --seed 7

simulate:
	./scripts/simulate.sh $(if $(PROFILE),--$(PROFILE),--quick) $(ARGS)

simulate-ci:
	./scripts/simulate.sh --ci $(ARGS)

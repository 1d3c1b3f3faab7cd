# Reproducible recipes. Every target sets the project up first (scripts/setup.sh, idempotent).
.PHONY: setup test demo train-default

setup:
	scripts/setup.sh

test:
	scripts/test.sh

# The main job: the shipped model in LIBERO through ROS 2 (scripts/run.sh).
demo:
	scripts/run.sh

# The embedded default model (models/para_libero_spatial_t0): demos -> rotation basis -> train
# -> export -> closed-loop evaluation -> model card; its three tracks (in-distribution, left ->
# right, near -> far) two side by side on 2 cores.
# Resumable: re-running skips finished stages. Work folder runs/default.
train-default: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/para-train-default -o runs/default --matrix-episodes 2 \
		--install models/para_libero_spatial_t0

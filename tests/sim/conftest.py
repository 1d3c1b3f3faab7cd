"""LIBERO fixtures: one simulator per test module (creation takes ~4-7 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sim():
    from para_ros.sim.libero_sim import LiberoSim, SimConfig

    s = LiberoSim(SimConfig(image_size=224))
    yield s
    s.close()

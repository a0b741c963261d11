"""What the suite builds and how many requests each loop sends: full and smoke sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.suite.data import VARIABLE, CubeSpec

CAPS_VARIABLES = (VARIABLE, "tmax", "tmin", "tdew")


@dataclass(frozen=True)
class Counts:
    """Requests per load (a prefix of the seeded list) for one server."""

    tile_c1: int
    tile_c8: int
    map_c1: int
    map_c4: int
    large_tile_c1: int
    large_tile_c8: int
    large_map_c1: int
    large_map_c4: int
    capabilities: int
    legend: int
    featureinfo: int
    timeseries: int


@dataclass(frozen=True)
class Plan:
    name: str
    eu: CubeSpec
    large: CubeSpec
    caps_runs: CubeSpec
    caps_layers: tuple[CubeSpec, ...]
    fewsmap: Counts
    xpublish: Counts
    mapserver: Counts
    warm_tiles: int
    warm_maps: int
    max_seconds: float  # per load: no new request starts after this
    peer_max_seconds: float
    floor_tiles: int
    floor_maps: int
    worker_configs: tuple[int | None, ...] = (None, 1)  # default: one per core
    # Wait for a started server to go idle (its JIT warm-up) before measuring it.
    settle: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def maps_stores(self) -> list[CubeSpec]:
        return [self.eu, self.large]


def full_plan(large_runs: int) -> Plan:
    """Europe 0.05° (1400 × 900) 10 runs × 73 steps, large 4000 × 3000 with ``large_runs``
    runs × 73 steps, 100 runs × 73 steps for capabilities and 20 layers."""
    return Plan(
        name="full",
        eu=CubeSpec("eu", 900, 1400, 10, 73),
        large=CubeSpec("large", 3000, 4000, large_runs, 73, seed=7),
        caps_runs=CubeSpec("runs100", 24, 32, 100, 73, seed=11),
        caps_layers=tuple(CubeSpec(f"set{i}", 24, 32, 10, 73, CAPS_VARIABLES, seed=20 + i)
                          for i in range(5)),
        fewsmap=Counts(400, 1200, 40, 60, 200, 600, 20, 30, 30, 200, 200, 60),
        xpublish=Counts(60, 120, 8, 12, 20, 40, 3, 4, 10, 30, 40, 8),
        mapserver=Counts(200, 400, 20, 30, 40, 80, 6, 6, 20, 100, 50, 0),
        warm_tiles=20,
        warm_maps=3,
        max_seconds=60.0,
        peer_max_seconds=90.0,
        floor_tiles=400,
        floor_maps=40,
    )


def smoke_plan() -> Plan:
    """Tiny sizes: every code path once, in well under a minute, without peers."""
    return Plan(
        name="smoke",
        eu=CubeSpec("eu", 90, 140, 2, 6),
        large=CubeSpec("large", 150, 200, 1, 6, seed=7),
        caps_runs=CubeSpec("runs100", 8, 10, 5, 6, seed=11),
        caps_layers=tuple(CubeSpec(f"set{i}", 8, 10, 2, 6, CAPS_VARIABLES[:2], seed=20 + i)
                          for i in range(2)),
        fewsmap=Counts(12, 24, 3, 4, 6, 8, 2, 2, 3, 5, 5, 3),
        xpublish=Counts(4, 8, 1, 2, 2, 2, 1, 1, 2, 2, 2, 1),
        mapserver=Counts(4, 8, 1, 2, 2, 2, 1, 1, 2, 2, 2, 0),
        warm_tiles=3,
        warm_maps=1,
        max_seconds=10.0,
        peer_max_seconds=10.0,
        floor_tiles=12,
        floor_maps=3,
        worker_configs=(None,),
        settle=False,
    )

import pytest
import torch

from modeling_speechct.data.benchmark_build import BuildConfig, build_benchmark


@pytest.fixture(autouse=True)
def _deterministic():
    """Every test starts from the same seed; one thread per xdist worker keeps the 2-core CI machine uncontended."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def small_spoken_build(tmp_path_factory):
    """`small_spoken_build(seed=…, **settings) → (BuildConfig, build stats)`: an 8-volume spoken benchmark at the
    teacher's grid, built once per distinct settings for the whole session (building is the slow part)."""
    made: dict[tuple, tuple[BuildConfig, dict]] = {}

    def make(**settings):
        key = tuple(sorted(settings.items()))
        if key not in made:
            out = tmp_path_factory.mktemp("spoken_build") / "bench"
            config = BuildConfig(out=out, num_volumes=8, shape=(24, 48, 48), workers=2, max_fillers=0, **settings)
            made[key] = (config, build_benchmark(config, progress=False))
        return made[key]

    return make

"""The engine's model table: loads happen outside its lock, one load per name."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.transcriber.engine import WhisperEngine, layout
from shared.config import Settings


class SlowLoads(WhisperEngine):
    """Loads return a stand-in model; the load of 'slow' waits until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.loads: list[str] = []
        super().__init__(Settings(models_loaded=2), layout(Settings(transcriber_processes=1)))

    def _load(self, name: str) -> Any:
        self.loads.append(name)
        if name == "slow" and not self.release.wait(10):
            raise TimeoutError("the test never released the load")
        if name == "broken":
            raise OSError("no such model")
        return _Stub()


class _Stub:
    class model:  # mirrors WhisperModel.model.is_multilingual
        is_multilingual = False


def test_a_loaded_model_is_served_while_another_one_loads() -> None:
    engine = SlowLoads()
    with ThreadPoolExecutor(2) as pool:
        loading = pool.submit(engine.model, "slow")
        # The default model answers at once although 'slow' is still loading.
        assert pool.submit(engine.model, engine.name).result(timeout=2) is not None
        assert not loading.done()
        engine.release.set()
        assert loading.result(timeout=5) is not None


def test_concurrent_requests_for_one_model_share_one_load() -> None:
    engine = SlowLoads()
    with ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(engine.model, "slow") for _ in range(4)]
        engine.release.set()
        models = {id(f.result(timeout=5)) for f in waiting}
    assert engine.loads.count("slow") == 1
    assert len(models) == 1


def test_a_failed_load_is_reported_and_tried_again_next_time() -> None:
    engine = SlowLoads()
    with pytest.raises(OSError, match="no such model"):
        engine.model("broken")
    with pytest.raises(OSError):
        engine.model("broken")
    assert engine.loads.count("broken") == 2
    assert "broken" not in engine.loaded()

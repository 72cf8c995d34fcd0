"""Each example runs against the emulator (VIDGO_API_KEY unset)."""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp.test_utils import TestClient, TestServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def loader(name: str) -> ModuleType:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    yield loader
    for name in ("batch_script", "aiohttp_app", "worker", "_common"):
        sys.modules.pop(name, None)


async def test_batch_script_downloads_every_clip(load: object, tmp_path: Path) -> None:
    """batch_script.main() finishes every clip and writes its video."""
    module = load("batch_script")  # type: ignore[operator]
    results = await module.main(tmp_path)
    assert len(results) == len(module.PROMPTS)
    assert all(r.ok for r in results)
    videos = sorted(p.stem for p in tmp_path.glob("*.mp4"))  # noqa: ASYNC240 - a tiny test directory
    assert videos == sorted(module.PROMPTS)


async def test_aiohttp_app_generates_through_one_shared_orchestrator(load: object) -> None:
    """The web app answers generations with video URLs and rejects bad input with 400."""
    module = load("aiohttp_app")  # type: ignore[operator]
    async with TestClient(TestServer(module.make_app())) as http:
        ok = await http.post("/generate", json={"prompt": "a red fox in snow"})
        assert ok.status == 200
        body = await ok.json()
        assert body["task_id"]
        assert body["video_url"].endswith(".mp4")
        bad = await http.post("/generate", json={"prompt": ""})
        assert bad.status == 400
        for body in (b"not json", b"[1, 2]", b'{"prompt": 5}'):
            refused = await http.post("/generate", data=body)
            assert refused.status == 400
            assert "error" in await refused.json()
        progress = await (await http.get("/progress")).json()
        assert progress["in_flight"] == 0
        assert progress["done"] >= 1


async def test_worker_consumes_the_queue(load: object) -> None:
    """worker.main() handles every queued prompt exactly once."""
    module = load("worker")  # type: ignore[operator]
    prompts = [f"a quiet street, take {n}" for n in range(4)]
    done = await module.main(prompts, consumers=2)
    assert sorted(done) == sorted(prompts)
    assert all(not isinstance(outcome, str) for outcome in done.values())


async def test_aiohttp_app_mounts_the_callback_receiver(load: object) -> None:
    """With a callback base URL, the app's own route receives the callback that ends the job."""
    module = load("aiohttp_app")  # type: ignore[operator]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = module.make_app(f"http://127.0.0.1:{port}/hooks/vidgo")
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as http:
        # A short job (5 emulated s = 0.1 s) ends long before the first fallback poll
        # (2 x max_interval = 1.2 s), so the callback, not a poll, must end it.
        prompt = "a red fox in snow [[vidgo-emulator: seconds=5]]"
        ok = await http.post("/generate", json={"prompt": prompt})
        assert ok.status == 200
        receiver = app[module.RECEIVER]
        assert receiver.stats.delivered == 1  # the verified callback, not a poll, ended it
        junk = await http.post(f"/hooks/vidgo/{'Z' * 43}", data=b"{}")
        assert junk.status == 404

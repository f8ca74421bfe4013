"""A shutdown step that takes too long is named in the log with how long it took; quick ones are not."""

import asyncio
import logging

import pytest
from chimerapy.worker import slow_steps


@pytest.mark.timeout(30)
def test_a_slow_shutdown_step_is_named_and_a_quick_one_is_not(monkeypatch, caplog):
    monkeypatch.setattr(slow_steps, "SLOW_STEP", 0.05)

    async def steps():
        assert await slow_steps.named_if_slow(asyncio.sleep(0, "quick"), "Worker w", "a quick step") == "quick"
        with pytest.raises(ValueError):  # named even when it fails
            await slow_steps.named_if_slow(_fail_after(0.1), "Worker w", "closing the thing")

    with caplog.at_level(logging.WARNING, logger="chimerapy.worker"):
        asyncio.run(steps())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    assert messages[0].startswith("Worker w: shutting down, closing the thing took 0.")


async def _fail_after(seconds):
    await asyncio.sleep(seconds)
    raise ValueError("broken")

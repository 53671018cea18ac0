"""Dynamic batching: requests that arrive together are predicted as one batch, one batch at a time,
and each answer goes back to its own request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class _Waiting(Generic[In, Out]):
    item: In
    answer: asyncio.Future[tuple[Out, int]]


class Batcher(Generic[In, Out]):
    """Collects submitted items into batches of at most `max_batch_size`: a batch starts with the
    first item waiting and takes what arrives within `max_wait` seconds of it (and whatever is
    already queued). `predict` runs on one thread of its own, so the event loop keeps accepting
    requests while a batch is computed (torch uses every core for the batch itself)."""

    def __init__(self, predict: Callable[[list[In]], Sequence[Out]], max_batch_size: int, max_wait: float) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self._queue: asyncio.Queue[_Waiting[In, Out]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, item: In) -> tuple[Out, int]:
        """The item's prediction, and the size of the batch it was predicted in."""
        answer: asyncio.Future[tuple[Out, int]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(item, answer))
        return await answer

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [waiting for waiting in batch if not waiting.answer.done()]  # a client gone cancels its own
            if not live:
                continue
            try:
                outputs = await loop.run_in_executor(self._executor, self.predict, [waiting.item for waiting in live])
            except Exception as error:  # the batch's requests each get it; the next batch goes on
                for waiting in live:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(error)
                continue
            for waiting, output in zip(live, outputs, strict=True):
                if not waiting.answer.done():
                    waiting.answer.set_result((output, len(live)))

    async def _next_batch(self) -> list[_Waiting[In, Out]]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

"""The store reads a `LeanQueue` makes while the dashboard draws and ticks, made safe.

A lean queue reads rows as they are shown and as their clocks change, from inside a
render or a tick: a store that refuses (a damaged file, a server restarting) must not
end the dashboard there. A refused read gives nothing (the queue shows the row as not
readable, or tries it again a second later) and the refusal is told once, as the
dashboard's other reads tell theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sladeck.errors import StoreError
from sladeck.store import BackendError

if TYPE_CHECKING:
    from sladeck.domain.queue import QueueItem
    from sladeck.store import Store

T = TypeVar("T")


class SafeReads:
    """`LeanQueue`'s `QueueSource` over `reader`; `told(error)` hears each refusal."""

    def __init__(self, reader: Store, told: Callable[[StoreError], None]) -> None:
        self.reader, self.told = reader, told

    def _read(self, read: Callable[[], T], empty: T) -> T:
        try:
            return read()
        except (BackendError, self.reader.errors, StoreError) as exc:
            error = exc if isinstance(exc, StoreError) else self.reader.refusal(exc)
            if error is None:
                raise
            self.told(error)
            return empty

    def queue_items_by_id(self, ids: Iterable[int]) -> list[QueueItem]:
        ids = list(ids)
        return self._read(lambda: self.reader.queue_items_by_id(ids), [])

    def queue_ids(self, states: Sequence[str], *, levels: Sequence[str] = (),
                  assignees: Sequence[str] | None = None, text: str = "") -> set[int]:
        return self._read(lambda: self.reader.queue_ids(
            states, levels=levels, assignees=assignees, text=text), set())

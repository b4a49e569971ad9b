"""Which exception of an earlier job a forced re-run's exception is (issue 15 item 3;
docs/decisions/forced-job-inheritance.md).

A forced job over the same two files, read at the same normalized versions, numbers their rows as
the earlier job did (docs/files.md "Re-mapping: versions"), so a break is known by its key:
(type, left file, left row, right file, right row). When one job holds several exceptions with
one key (which the engine does not write today), they pair in the order each job wrote them: the
first with the first, and so on; the rest have no counterpart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol

InheritanceKey = tuple[str, uuid.UUID | None, int | None, uuid.UUID | None, int | None]


class Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def left_file_id(self) -> uuid.UUID | None: ...
    @property
    def left_row(self) -> int | None: ...
    @property
    def right_file_id(self) -> uuid.UUID | None: ...
    @property
    def right_row(self) -> int | None: ...


def inheritance_key(item: Keyed) -> InheritanceKey:
    return (item.type, item.left_file_id, item.left_row, item.right_file_id, item.right_row)


def counterparts(new: Iterable[Keyed], earlier: Iterable[Keyed]) -> dict[uuid.UUID, uuid.UUID]:
    """{new exception id: earlier exception id} for every new exception with a counterpart; both
    iterables in the order their job wrote them."""
    waiting: dict[InheritanceKey, list[uuid.UUID]] = {}
    for item in earlier:
        waiting.setdefault(inheritance_key(item), []).append(item.id)
    pairs: dict[uuid.UUID, uuid.UUID] = {}
    for item in new:
        queue = waiting.get(inheritance_key(item))
        if queue:
            pairs[item.id] = queue.pop(0)
    return pairs


def reads_the_same_rows(new: Mapping[uuid.UUID, int | None], earlier: Mapping[uuid.UUID, int | None]) -> bool:
    """Whether a job reading these files at these normalized versions ({file id: version}) reads
    the rows the earlier job read: the same files, each at a known and equal version. A file
    re-mapped since the earlier job (another version) renumbers nothing safely: no inheritance."""
    return bool(new) and set(new) == set(earlier) and all(
        version is not None and earlier[file_id] == version for file_id, version in new.items())

"""Sans-I/O bookkeeping of queue groups: who is in which group on which pattern, and whose turn it is.

A queue group is named; its members are subscribers (connections on a
server, replicas in the in-memory bus) that subscribed with that name. A
publication on a topic goes to one member of each group among those whose
patterns match the topic, as NATS queue groups do (a group is its name, not
a name per pattern). The choice rotates: the member served longest ago is
next, so members that all match get turns in strict rotation, and a member
that joins later starts its turns at once without taking a run of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Generic, TypeVar

from .topics import TopicIndex

__all__ = ["GroupTable"]

S = TypeVar("S", bound=Hashable)


class _Group(Generic[S]):
    __slots__ = ("index", "served")

    def __init__(self) -> None:
        self.index: TopicIndex[S] = TopicIndex()
        self.served: dict[S, int] = {}
        """Member -> tick of its last turn (0: none yet)."""


class GroupTable(Generic[S]):
    """Members of queue groups, by group and pattern; picks the member whose turn it is."""

    __slots__ = ("_groups", "_index", "_of", "_refs", "_tick")

    def __init__(self) -> None:
        self._groups: dict[str, _Group[S]] = {}
        self._index: TopicIndex[str] = TopicIndex()
        """Which groups have a member on each pattern (subscriber: the group name)."""
        self._refs: dict[tuple[str, str, bool], int] = {}
        self._of: dict[S, set[tuple[str, str]]] = {}
        self._tick = 0

    def __bool__(self) -> bool:
        return bool(self._groups)

    def join(self, member: S, group: str, pattern: str, *, literal: bool = False) -> bool:
        """Add `member` to `group` on `pattern`; False if it was already there."""
        mine = self._of.setdefault(member, set())
        if (group, pattern) in mine:
            return False
        mine.add((group, pattern))
        entry = self._groups.get(group)
        if entry is None:
            entry = self._groups[group] = _Group()
        entry.index.add(pattern, member, literal=literal)
        entry.served.setdefault(member, 0)
        key = (group, pattern, literal)
        refs = self._refs.get(key, 0)
        self._refs[key] = refs + 1
        if not refs:
            self._index.add(pattern, group, literal=literal)
        return True

    def leave(self, member: S, group: str, pattern: str, *, literal: bool = False) -> bool:
        """Take `member` out of `group` on `pattern`; False if it was not there."""
        mine = self._of.get(member)
        if mine is None or (group, pattern) not in mine:
            return False
        mine.discard((group, pattern))
        if not mine:
            del self._of[member]
        entry = self._groups[group]
        entry.index.remove(pattern, member, literal=literal)
        if not any(g == group for g, _ in mine):
            entry.served.pop(member, None)
        if not entry.served:
            del self._groups[group]
        key = (group, pattern, literal)
        refs = self._refs[key] - 1
        if refs:
            self._refs[key] = refs
        else:
            del self._refs[key]
            self._index.remove(pattern, group, literal=literal)
        return True

    def leave_all(self, member: S, *, literal: bool = False) -> list[tuple[str, str]]:
        """Take `member` out of every group; returns the (group, pattern) pairs it left."""
        left = sorted(self._of.get(member, ()))
        for group, pattern in left:
            self.leave(member, group, pattern, literal=literal)
        return left

    def memberships(self, member: S) -> Collection[tuple[str, str]]:
        """The (group, pattern) pairs `member` is in."""
        return self._of.get(member, ())

    def groups(self, topic: str) -> set[str]:
        """The groups with a member whose pattern matches `topic`."""
        return self._index.match(topic) if self._refs else set()

    def members(self, group: str, topic: str) -> set[S]:
        """The members of `group` whose pattern matches `topic`."""
        entry = self._groups.get(group)
        return entry.index.match(topic) if entry is not None else set()

    def choose(
        self,
        group: str,
        topic: str,
        *,
        skip: Iterable[S] = (),
        prefer: S | None = None,
        usable: Callable[[S], bool] | None = None,
    ) -> S | None:
        """The member of `group` matching `topic` whose turn it is (None: no such member).

        `skip` are members already tried for this publication; `prefer` is
        taken when it is a candidate (a broker chose it); `usable` filters
        out members that cannot receive now.
        """
        entry = self._groups.get(group)
        if entry is None:
            return None
        candidates = entry.index.match(topic)
        candidates.difference_update(skip)
        if usable is not None:
            candidates = {member for member in candidates if usable(member)}
        if not candidates:
            return None
        served = entry.served
        chosen = prefer if prefer is not None and prefer in candidates else min(candidates, key=served.__getitem__)
        self._tick += 1
        served[chosen] = self._tick
        return chosen

"""Numbers per topic between replicas, and the gaps they reveal."""

from __future__ import annotations

from goomerang_runtime._sequence import Gaps, Numbering


def test_each_topic_counts_on_its_own() -> None:
    numbers = Numbering()
    assert [numbers.next("a"), numbers.next("a"), numbers.next("b"), numbers.next("")] == [1, 2, 1, 1]


def test_a_jump_is_a_loss_a_restart_is_not_and_forgotten_topics_start_afresh() -> None:
    gaps = Gaps()
    assert gaps.seen("r1", "a", 5) == 0  # the first one seen: nothing known before it
    assert gaps.seen("r1", "a", 6) == 0
    assert gaps.seen("r1", "a", 9) == 2  # 7 and 8 never arrived
    assert gaps.seen("r2", "a", 1) == 0  # another sender
    assert gaps.seen("r1", "a", 1) == 0  # the sender started again
    assert gaps.seen("r1", "a", 2) == 0
    gaps.forget(lambda topic: topic == "a")  # unsubscribed meanwhile
    assert gaps.seen("r1", "a", 50) == 0

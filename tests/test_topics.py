from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from goomerang_runtime import TopicError
from goomerang_runtime.topics import TopicIndex, pattern_covers, pattern_matches, validate_pattern, validate_topic


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("topic.a", "topic.a", True),
        ("topic.a", "topic.b", False),
        ("topic.a", "topic.a.b", False),
        ("rooms.*", "rooms.go", True),
        ("rooms.*", "rooms.go.dev", False),
        ("rooms.*", "rooms", False),
        ("rooms.>", "rooms.go", True),
        ("rooms.>", "rooms.go.dev", True),
        ("rooms.>", "rooms", False),
        ("*.go", "rooms.go", True),
        ("*.go", "go", False),
        ("*", "anything", True),
        ("*", "a.b", False),
        (">", "a", True),
        (">", "a.b.c", True),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("a.*.>", "a.b.c.d", True),
        ("a.*.>", "a.b", False),
        ("a b", "a b", True),  # Go topics are any string: exact match
        ("a*", "ab", False),  # '*' is a wildcard only as a whole token
        ("a*", "a*", True),
    ],
)
def test_wildcard_table(pattern: str, topic: str, matches: bool) -> None:
    assert pattern_matches(pattern, topic) is matches
    index: TopicIndex[str] = TopicIndex()
    index.add(pattern, "sub")
    assert (index.match(topic) == {"sub"}) is matches


def test_index_reports_first_and_last_subscriber() -> None:
    index: TopicIndex[str] = TopicIndex()
    assert index.add("rooms.*", "a") is True
    assert index.add("rooms.*", "b") is False
    assert index.add("rooms.go", "a") is True
    assert index.match("rooms.go") == {"a", "b"}
    assert index.remove("rooms.*", "a") is False
    assert index.remove("rooms.*", "b") is True
    assert index.remove("rooms.*", "b") is False
    assert index.remove_all(["rooms.go", "never"], "a") == ["rooms.go"]
    assert len(index) == 0
    assert index.match("rooms.go") == set()


@pytest.mark.parametrize(
    ("family", "pattern", "covered"),
    [
        ("rooms.*", "rooms.go", True),
        ("rooms.*", "rooms.*", True),
        ("rooms.*", "rooms.>", False),
        ("rooms.*", "rooms.go.dev", False),
        ("rooms.*", "lobby.go", False),
        ("rooms.>", "rooms.go.dev", True),
        ("rooms.>", "rooms.*", True),
        ("rooms.>", "rooms.>", True),
        ("rooms.>", "rooms", False),
        ("rooms", "rooms", True),
        ("rooms", "rooms.*", False),
        (">", "*.*", True),
        ("*.go", "*.go", True),
        ("*.go", "rooms.*", False),
    ],
)
def test_pattern_covers(family: str, pattern: str, covered: bool) -> None:
    assert pattern_covers(family, pattern) is covered


def test_validation() -> None:
    with pytest.raises(TopicError, match="last token"):
        validate_pattern("a.>.b")
    with pytest.raises(TopicError, match="empty"):
        validate_pattern("")
    with pytest.raises(TopicError, match="literal"):
        validate_topic("rooms.*")
    assert validate_topic("rooms.go") == "rooms.go"


_TOKENS = st.sampled_from(["a", "b", "c", "*", ">"])
_PATTERNS = st.lists(_TOKENS, min_size=1, max_size=4).map(".".join).filter(lambda p: ">" not in p.split(".")[:-1])
_TOPICS = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=5).map(".".join)


@given(
    subs=st.lists(st.tuples(_PATTERNS, st.integers(0, 3)).map(lambda s: (*s, s[1] % 2 == 1)), max_size=30),
    drop=st.lists(st.integers(0, 29), max_size=10),
    topics=st.lists(st.one_of(_TOPICS, _PATTERNS), min_size=1, max_size=10),
)
def test_the_trie_matches_exactly_what_pattern_matching_says(
    subs: list[tuple[str, int, bool]], drop: list[int], topics: list[str]
) -> None:
    """Adds, removes (with pruning) and matches against a brute-force model.

    As on a server, a subscriber's subscriptions are all literal (a Go peer's) or all patterns.
    """
    index: TopicIndex[int] = TopicIndex()
    model: set[tuple[str, int, bool]] = set()
    for pattern, who, literal in subs:
        index.add(pattern, who, literal=literal)
        model.add((pattern, who, literal))
    for i in drop:
        if i < len(subs):
            pattern, who, literal = subs[i]
            index.remove(pattern, who, literal=literal)
            model.discard((pattern, who, literal))
    for topic in topics:
        expected = {
            who for pattern, who, literal in model if (pattern == topic if literal else pattern_matches(pattern, topic))
        }
        assert index.match(topic) == expected, topic
    assert index.patterns() == sorted({pattern for pattern, _, _ in model})

"""Topic -> NATS subject and Redis channel mapping, sans I/O."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from goomerang_runtime.brokers._names import (
    nats_pattern,
    nats_subject,
    redis_channel,
    redis_glob,
    validate_nats_prefix,
)
from goomerang_runtime.topics import pattern_matches

P = "goomerang"


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("rooms.go", "goomerang.t.rooms.go"),
        ("a b", "goomerang.t.a%20b"),
        ("a..b", "goomerang.t.a.%.b"),
        (".", "goomerang.t.%.%"),
        ("100%", "goomerang.t.100%25"),
        ("ü", "goomerang.t.%C3%BC"),
        ("a*", "goomerang.t.a%2A"),
        ("tab\there", "goomerang.t.tab%09here"),
    ],
)
def test_topics_become_valid_subjects(topic: str, subject: str) -> None:
    assert nats_subject(P, topic) == subject


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        ("rooms.*", "goomerang.t.rooms.*"),
        ("rooms.>", "goomerang.t.rooms.>"),
        (">", "goomerang.t.>"),
        ("a b.*", "goomerang.t.a%20b.*"),
        ("a*.>", "goomerang.t.a%2A.>"),
        ("exact", "goomerang.t.exact"),
    ],
)
def test_patterns_keep_native_wildcards(pattern: str, subject: str) -> None:
    assert nats_pattern(P, pattern) == subject


def test_redis_channels_are_the_topic_and_globs_escape_their_specials() -> None:
    assert redis_channel(P, "a b*?[x]") == b"goomerang:t:a b*?[x]"
    assert redis_glob(P, "rooms.*") == b"goomerang:t:rooms.*"
    assert redis_glob(P, "x[1]?.>") == b"goomerang:t:x\\[1\\]\\?.*"


def test_prefix_validation() -> None:
    assert validate_nats_prefix("app.prod-1") == "app.prod-1"
    for bad in ("", "a b", "a..b", "a.*", "x>"):
        with pytest.raises(ValueError, match="not a subject prefix"):
            validate_nats_prefix(bad)


# Properties, checked against reference matchers of the brokers' own rules.

_NATS_TOKEN = re.compile(r"^[^\s.*>]+$")
tokens = st.text(alphabet=st.sampled_from("ab.* >%ü\t-_[]?\\"), max_size=12)


def nats_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` one or more trailing tokens."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or (token != "*" and token != sub[i]):
            return False
    return len(sub) == len(pat)


def redis_glob_regex(glob: bytes) -> re.Pattern[str]:
    """Redis glob (only `*` and backslash escapes are produced) as a regex."""
    out, text, i = [], glob.decode(), 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def unescape(subject: str) -> str:
    """Inverse of the mapping: a subject back to its topic (so the mapping is injective)."""
    topic_tokens = []
    for token in subject.removeprefix(f"{P}.t.").split("."):
        raw, i = bytearray(), 0
        while i < len(token) and token != "%":
            if token[i] == "%":
                raw.append(int(token[i + 1 : i + 3], 16))
                i += 3
            else:
                raw.extend(token[i].encode())
                i += 1
        topic_tokens.append(raw.decode())
    return ".".join(topic_tokens)


@given(st.lists(tokens, min_size=1, max_size=4).map(".".join))
def test_subjects_are_valid_and_map_back_to_their_topic(topic: str) -> None:
    subject = nats_subject(P, topic)
    assert all(_NATS_TOKEN.match(token) for token in subject.split("."))
    assert unescape(subject) == topic


@given(
    pattern=st.lists(st.one_of(st.sampled_from(["*", "a", "b", "a b", ""]), tokens), min_size=1, max_size=3)
    .map(lambda ts: [*ts, ">"] if len(ts) % 2 else ts)
    .map(".".join),
    topic=st.lists(st.sampled_from(["a", "b", "a b", "", "x%y"]), min_size=1, max_size=4).map(".".join),
)
def test_nats_matching_of_mapped_names_is_pattern_matching(pattern: str, topic: str) -> None:
    if ">" in pattern.split(".")[:-1] or any(t in ("*", ">") for t in topic.split(".")):
        return
    assert nats_matches(nats_pattern(P, pattern), nats_subject(P, topic)) is pattern_matches(pattern, topic)
    # The Redis glob matches at least every topic the pattern does.
    if any(t in ("*", ">") for t in pattern.split(".")) and pattern_matches(pattern, topic):
        assert redis_glob_regex(redis_glob(P, pattern)).match(redis_channel(P, topic).decode())


@given(st.lists(st.sampled_from(["*", ">", "a", "", "a b", "x%y"]), min_size=1, max_size=4).map(".".join))
def test_a_go_clients_plain_topic_reaches_its_own_subscription_across_replicas(topic: str) -> None:
    """A Go subscription is a plain string; the broker's is a superset of it (matched again locally)."""
    subject = nats_pattern(P, topic)
    assert all(_NATS_TOKEN.match(token) or token in ("*", ">") for token in subject.split("."))
    assert ">" not in subject.split(".")[:-1]
    assert nats_matches(subject, nats_subject(P, topic))
    if any(t in ("*", ">") for t in topic.split(".")):
        assert redis_glob_regex(redis_glob(P, topic)).match(redis_channel(P, topic).decode())

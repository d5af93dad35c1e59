"""Cost of matching one publication against many wildcard subscriptions: the trie vs a scan.

    python -m bench.topics [--patterns 100000]

The baseline is the linear scan over every pattern that the index did
before (each pattern checked with ``pattern_matches``), on the same
subscriptions and topics in the same run; the figure is our time as a ratio
to it.
"""

from __future__ import annotations

import argparse
import random
import time

from goomerang_runtime.topics import TopicIndex, pattern_matches


def _patterns(count: int, rng: random.Random) -> list[str]:
    shapes = ["rooms.{a}.*", "rooms.{a}.>", "*.{a}.x", "users.{a}.{b}.*", "feeds.>", "{a}.*.{b}"]
    return [rng.choice(shapes).format(a=rng.randrange(count), b=rng.randrange(100)) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    patterns = _patterns(args.patterns, rng)
    index: TopicIndex[int] = TopicIndex()
    for n, pattern in enumerate(patterns):
        index.add(pattern, n)
    topics = ["unrelated.topic.here"] + [f"rooms.{rng.randrange(args.patterns)}.go" for _ in range(args.topics - 1)]
    started = time.perf_counter()
    ours = [index.match(topic) for topic in topics]
    trie = (time.perf_counter() - started) / len(topics)
    started = time.perf_counter()
    scanned = [{n for n, pattern in enumerate(patterns) if pattern_matches(pattern, topic)} for topic in topics]
    scan = (time.perf_counter() - started) / len(topics)
    assert ours == scanned
    print(f"{args.patterns} wildcard patterns, {len(topics)} topics")
    print(f"scan (baseline): {scan * 1e6:10.1f} us per publication")
    print(f"trie (ours):     {trie * 1e6:10.1f} us per publication  ratio {trie / scan:.4f}")


if __name__ == "__main__":
    main()

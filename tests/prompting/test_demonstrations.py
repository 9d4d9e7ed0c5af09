"""Demonstration choice: BM25 finds the lexically closest, balance, seeded randomness, search pairs."""

from __future__ import annotations

from mtpeft.prompting.demonstrations import DemonstrationPicker
from mtpeft.tasks import Example, TaskKind

POOL = [
    Example("copy", "void copy_buffer(char *dst, char *src) { strcpy(dst, src); }", label=1),
    Example("sum", "int sum_array(int *values, int n) { int s = 0; for (int i = 0; i < n; i++) s += values[i]; }",
            label=0),
    Example("socket", "int open_socket(int port) { return socket(AF_INET, SOCK_STREAM, 0); }", label=0),
    Example("parse", "int parse_header(char *packet, int length) { memcpy(header, packet, length); }", label=1),
    Example("log", "void log_message(const char *msg) { fprintf(stderr, \"%s\\n\", msg); }", label=0),
    Example("free", "void release(struct node *n) { free(n->data); free(n); }", label=0),
]


def picker(shots: int, strategy: str = "bm25", balanced: bool = False, kind: TaskKind = TaskKind.BINARY,
           pool: list[Example] = POOL) -> DemonstrationPicker:
    return DemonstrationPicker(pool, kind, shots, strategy, balanced, seed=7)


def test_bm25_picks_the_lexically_closest_first() -> None:
    query = Example("q", "int parsePacketHeader(char *packet, int length) { memcpy(hdr, packet, length); }", label=1)
    assert picker(2).pick(query)[0].source_id == "parse"  # shares packet, header, length, memcpy
    query = Example("q2", "void copyBuffer(char *dst, const char *src) { strcpy(dst, src); }", label=1)
    assert picker(1).pick(query)[0].source_id == "copy"  # camelCase and snake_case match
    assert picker(0).pick(query) == []


def test_balanced_takes_both_labels_and_keeps_the_closest_first() -> None:
    query = Example("q", "void copy_buffer(char *dst, char *src) { strcpy(dst, src); }", label=1)
    unbalanced = picker(2).pick(query)
    balanced = picker(2, balanced=True).pick(query)
    assert balanced[0].source_id == unbalanced[0].source_id == "copy"
    assert sorted(d.label for d in balanced) == [0, 1]
    assert [d.fields["text"] for d in balanced[:1]] == [POOL[0].text]
    # more shots than one label has: topped up from the other label
    assert len(picker(5, balanced=True).pick(query)) == 5


def test_random_demonstrations_are_seeded_per_example() -> None:
    def drawn(ident: str) -> list[str]:
        return [d.source_id for d in picker(3, "random").pick(Example(ident, "x"))]

    assert drawn("a") == drawn("a") and len(set(drawn("a"))) == 3
    assert len({tuple(drawn(str(i))) for i in range(10)}) > 1  # each example draws its own


def test_search_demonstrations_alternate_matching_and_other_code() -> None:
    pool = [Example(f"f{i}", f"return the {w} of the list", f"def {w}(xs):\n    return {w}(xs)")
            for i, w in enumerate(["sum", "max", "min", "sorted"])]
    demos = picker(3, kind=TaskKind.RETRIEVAL, pool=pool).pick(Example("q", "return the max of the list", "..."))
    assert [d.label for d in demos] == [1, 0, 1]
    assert demos[0].source_id == "f1" and demos[0].fields["text_pair"] == pool[1].text_pair
    assert demos[1].fields["text"] == pool[1].text and demos[1].fields["text_pair"] != pool[1].text_pair


def test_generation_demonstrations_carry_their_targets():
    pool = [Example(f"e{i}", f"def f{i}(): return {i}", target=f"Return {i}.") for i in range(5)]
    picker = DemonstrationPicker(pool, TaskKind.GENERATION, 2, "bm25", balanced=True, seed=0)
    demos = picker.pick(Example("q", "def g(): return 3", target="?"))
    assert len(demos) == 2 and demos[0].target == "Return 3." and all(d.label is None for d in demos)

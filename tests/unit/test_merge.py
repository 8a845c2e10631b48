from __future__ import annotations

from shared.transcript import ChunkResult, Segment, Word, merge_chunks


def seg(start: float, end: float, *words: tuple[float, float, str]) -> Segment:
    return Segment(
        start=start,
        end=end,
        text="".join(w for _, _, w in words),
        words=[Word(start=s, end=e, word=w) for s, e, w in words],
    )


def all_words(segments: list[Segment]) -> list[str]:
    return [w.word for s in segments for w in s.words]


def test_chunks_join_in_time_order_whatever_order_they_finished() -> None:
    second = ChunkResult(start=10, end=20, segments=[seg(11, 13, (11, 12, " c"), (12, 13, " d"))])
    first = ChunkResult(start=0, end=10, segments=[seg(1, 3, (1, 2, " a"), (2, 3, " b"))])
    merged = merge_chunks([second, first])
    assert all_words(merged) == [" a", " b", " c", " d"]
    assert [s.id for s in merged] == [0, 1]


def test_times_past_a_chunks_end_are_clamped_so_times_stay_monotonic() -> None:
    # Whisper stamped the last word of chunk 0 past its end (10 s), into chunk 1.
    first = ChunkResult(
        start=0, end=10, segments=[seg(8, 10.8, (8, 9, " end"), (9.2, 10.8, " here"))]
    )
    second = ChunkResult(start=10, end=20, segments=[seg(10.1, 12, (10.1, 11, " next"))])
    merged = merge_chunks([first, second])
    flat = [w for s in merged for w in s.words]
    assert flat[1].end == 10
    starts_ends = [t for w in flat for t in (w.start, w.end)]
    assert starts_ends == sorted(starts_ends)
    seg_times = [t for s in merged for t in (s.start, s.end)]
    assert seg_times == sorted(seg_times)


def test_no_word_lost_or_doubled_at_boundaries() -> None:
    chunks = [
        ChunkResult(
            start=i * 10.0,
            end=(i + 1) * 10.0,
            segments=[
                seg(
                    i * 10 + 1,
                    i * 10 + 9,
                    *[(i * 10 + j, i * 10 + j + 0.5, f" w{i}{j}") for j in range(1, 9)],
                )
            ],
        )
        for i in range(5)
    ]
    merged = merge_chunks(chunks)
    expected = [f" w{i}{j}" for i in range(5) for j in range(1, 9)]
    assert all_words(merged) == expected


def test_overlapping_segments_inside_a_chunk_are_made_monotonic() -> None:
    chunk = ChunkResult(
        start=0, end=30, segments=[seg(0, 5, (0, 5, " a")), seg(4, 6, (4, 6, " b"))]
    )
    merged = merge_chunks([chunk])
    assert merged[1].start >= merged[0].end
    assert merged[1].words[0].start >= merged[0].words[0].end


def test_empty_chunks_merge_to_nothing() -> None:
    assert merge_chunks([ChunkResult(start=0, end=5, segments=[])]) == []

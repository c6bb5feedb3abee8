"""The head benchmark runs and reports every configuration (no timing asserted)."""

from csra_tf.benchmarks.head_timing import benchmark_heads, format_timings


def test_benchmark_reports_each_head():
    timings = benchmark_heads(
        "tiny", image_size=32, batch_size=2, num_classes=5, rounds=1, steps_per_round=1
    )
    assert [t.name for t in timings] == ["gap", "csra_h1", "csra_h8"]
    assert all(
        t.inference_ms > 0 and t.train_ms > 0 and t.head_only_ms > 0 for t in timings
    )
    table = format_timings(timings, batch_size=2).splitlines()
    assert len(table) == 4 and table[1].split()[2] == "1.000"

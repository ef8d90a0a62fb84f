"""`make bench`'s verdicts: every target is a ratio to a floor or a peer of the same run (issue 24)."""

from __future__ import annotations

from bench.common import Figures
from bench.reads import KEPT, rows_in
from bench.run import TARGETS, Target, verdicts


def figures(**medians: float) -> Figures:
    found = Figures()
    for name, value in medians.items():
        found.values[name], found.units[name] = [value], "x"
    return found


def test_every_target_is_a_ratio_of_two_figures() -> None:
    for target in TARGETS:
        assert target.figure != target.peer, target.text
        assert target.factor > 0, target.text
    assert len({t.ratio for t in TARGETS}) == len(TARGETS)


def test_every_read_at_32_clients_is_judged_beside_its_floor() -> None:
    ratios = {t.ratio: t for t in TARGETS}
    for read in ("history", "alerts", "stages", "audit_search"):
        throughput, p99 = ratios[f"{read}_vs_floor"], ratios[f"{read}_p99_vs_floor"]
        assert (throughput.peer, throughput.factor, throughput.at_most) == (f"{read}_floor_req_per_s", 0.8, False)
        assert (p99.peer, p99.factor, p99.at_most) == (f"{read}_floor_p99_ms", 1.5, True)


def test_a_read_whose_answers_are_kept_is_also_judged_computing_each_answer() -> None:
    ratios = {t.ratio: t for t in TARGETS}
    for read in KEPT:
        computed = ratios[f"{read}_computed_vs_floor"]
        assert (computed.figure, computed.peer) == (f"{read}_computed_req_per_s", f"{read}_floor_req_per_s")
        assert ratios[f"{read}_computed_p99_vs_floor"].peer == f"{read}_floor_p99_ms"


def test_a_throughput_is_met_at_or_above_its_share_of_the_floor() -> None:
    target = Target("history throughput >= 0.8x its floor", "h", "ours", "floor", 0.8)
    assert target.met(figures(ours=80, floor=100).median)
    assert not target.met(figures(ours=79, floor=100).median)


def test_a_latency_is_met_at_or_below_its_multiple_of_the_floor() -> None:
    target = Target("p99 <= 1.5x", "p", "ours", "floor", 1.5, at_most=True)
    assert target.met(figures(ours=15, floor=10).median)
    assert not target.met(figures(ours=15.1, floor=10).median)


def test_verdicts_print_ratio_met_or_missed_and_the_figures_beside() -> None:
    ratios, lines = verdicts(figures(append_events_per_s=12_000, append_naive_events_per_s=1_000,
                                     copy_floor_rows_per_s=200_000))
    assert ratios == ["append_vs_naive 12.00x", "append_vs_copy_floor 0.06x"]
    assert lines == [
        "target append >= 10x naive: met (beside: append_events_per_s 12000.0, append_naive_events_per_s 1000.0)",
        "target append >= 0.1x the COPY floor (aim): MISSED "
        "(beside: append_events_per_s 12000.0, copy_floor_rows_per_s 200000.0)"]


def test_a_target_whose_figures_were_not_measured_is_not_printed() -> None:
    assert verdicts(figures(history_req_per_s=500)) == ([], [])


def test_no_absolute_figure_is_judged() -> None:
    judged = {t.figure for t in TARGETS}
    assert not judged & {"rss_rebuild_mb", "rss_serve_mb", "audit_verify_events_per_s", "console_overview_3000_p95_ms"}


def test_rows_are_counted_alike_in_an_answer_and_its_floor() -> None:
    assert rows_in({"as_of": "2021-09-30", "stages": [{"projects": [1, 2]}, {"projects": [3]}]}) == 3
    assert rows_in({"projects": [1, 2, 3]}) == 3
    assert rows_in({"entries": [1], "next_after": 1}) == 1
    assert rows_in({"code": "x", "events": [1, 2]}) == 2


def test_the_province_reads_are_judged_beside_floors_of_the_same_store() -> None:
    ratios = {t.ratio: t for t in TARGETS}
    for read in ("history", "alerts", "stages", "audit_search"):
        target = ratios[f"province_{read}_vs_floor"]
        assert (target.figure, target.peer) == (f"province_{read}_req_per_s", f"province_{read}_floor_req_per_s")
        assert ratios[f"province_{read}_p99_vs_floor"].beside == ("province_healthz_p99_ms",)
    assert ratios["province_rebuild_vs_read_floor"].peer == "province_read_floor_events_per_s"


def test_a_memory_budget_is_met_up_to_its_limit() -> None:
    from bench.province import budgets

    assert budgets(figures(province_rss_rebuild_mb=400.0, province_rss_serve_mb=500.1)) == [
        "budget province rss rebuild <= 400 MB: met (400.0 MB)",
        "budget province rss serve <= 500 MB: MISSED (500.1 MB)"]
    assert budgets(figures()) == []

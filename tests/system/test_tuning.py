"""The process-wide switches of bulk work are held while any bulk runs and put back by the last one out."""

from __future__ import annotations

import gc
import sys
import threading

from system.tuning import BulkTuning


def test_a_bulk_pauses_the_collector_and_hands_the_gil_over_quickly_then_puts_both_back() -> None:
    interval = sys.getswitchinterval()
    assert gc.isenabled()

    with BulkTuning()():
        assert not gc.isenabled()
        assert sys.getswitchinterval() == min(interval, BulkTuning.INTERVAL)

    assert gc.isenabled()
    assert sys.getswitchinterval() == interval


def test_overlapping_bulks_through_different_instances_keep_the_switches_until_the_last_ends() -> None:
    interval = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with BulkTuning()():
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())
        first_out.set()

    thread = threading.Thread(target=second)
    thread.start()
    with BulkTuning()():
        first_in.set()
        second_in.wait()
    first_out.set()
    thread.join()

    assert seen == [False]  # the first bulk ending did not turn the collector back on under the second
    assert gc.isenabled()
    assert sys.getswitchinterval() == interval


def test_a_collector_found_off_stays_off() -> None:
    gc.disable()
    try:
        with BulkTuning()():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()

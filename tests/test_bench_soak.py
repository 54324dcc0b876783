"""The soak's verdicts that need no server: RSS that levels off against RSS that climbs, a dead server's last
words, and the heap probe's glibc figures (``voicebot.memory``)."""

from __future__ import annotations

import threading

import pytest

from voicebot.bench_soak import last_words, rss_slopes
from voicebot.memory import arenas, trim


def test_a_step_after_the_warm_up_that_then_stays_flat_is_told_from_a_climb():
    """One high-water step in the first batches (a thread's first model run) and then nothing: the whole run's
    drift is 10 MB per 100 calls, but the second half says it levelled off; a leak climbs in both halves."""
    step = [(20, 2400.0), (70, 2430.0), (120, 2430.0), (170, 2430.0), (220, 2430.0), (270, 2430.0), (320, 2430.0)]
    first, second = rss_slopes(step)
    assert first == pytest.approx(20.0) and second == 0.0

    climb = [(20 + 50 * i, 2400.0 + 6.0 * i) for i in range(7)]
    first, second = rss_slopes(climb)
    assert first == pytest.approx(12.0) and second == pytest.approx(12.0)


def test_two_samples_give_the_whole_runs_slope_twice():
    assert rss_slopes([(20, 100.0), (120, 110.0)]) == (10.0, 10.0)


def test_a_dead_servers_last_words_are_faulthandlers_report_and_the_line_before_it():
    output = ("ready\n" * 500 + "python: ../src/pj/os_core_unix.c:692: pj_thread_this: Assertion failed.\n"
              "Fatal Python error: Aborted\n\nThread 0x1 (most recent call first):\n  File \"x.py\", line 1\n"
              + "Extension modules: numpy, pjsua2\n" * 200)
    words = last_words(output)
    assert words.index("Assertion failed") < words.index("Fatal Python error") < words.index('File "x.py"')
    assert last_words("short\n") == "short\n"  # no report: the tail


def test_glibcs_arenas_count_what_a_thread_freed_as_free_until_trimmed():
    """A thread's first allocations get an arena of their own; what it frees stays there (free), which is what
    ``trim`` gives back."""
    before = arenas()
    assert before, "no glibc malloc_info: this product's machines run Debian's glibc, where the trim works"
    thread = threading.Thread(target=lambda: [bytearray(2000) for _ in range(2000)])
    thread.start()
    thread.join()
    after = arenas()
    assert all(a["system"] >= a["free"] >= 0 for a in after)
    assert after[-1]["arena"] == -1  # the big blocks malloc mapped on their own
    assert trim()

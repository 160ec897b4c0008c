# python/tests/test_interrupt.py — long calls release the GIL and stop when asked: a progress
# callback that returns False (CancelledError), one that raises (its exception), and Ctrl-C
# (SIGINT while the library computes: KeyboardInterrupt at the next tile).
import os
import signal
import threading
import time

import numpy as np
import pytest

import unetcore
from unetcore import _core


def test_progress_reports_every_tile_and_false_stops(model, crop):
    calls = []
    model.segment(crop, tile=316, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(7)]
    calls.clear()

    def stop_after_two(done, total):
        calls.append(done)
        return done < 2
    with pytest.raises(unetcore.CancelledError, match="stopped by the caller after 2 of 6 tiles"):
        model.segment(crop, tile=316, progress=stop_after_two)
    assert calls == [0, 1, 2]
    assert np.array_equal(model.segment(crop, tile=316), model.segment(crop, tile=316))  # still usable


def test_an_exception_in_the_callback_comes_back_unchanged(model, crop):
    class Mine(Exception):
        pass

    def boom(done, total):
        if done == 3:
            raise Mine("from the callback")
    with pytest.raises(Mine, match="from the callback"):
        model.segment(crop, tile=316, progress=boom)


def test_the_gil_is_released_while_tiles_run(model, crop):
    ticks = []
    running = threading.Event()

    def count():
        while not running.is_set():
            time.sleep(0.0005)
        while running.is_set():
            ticks.append(1)
            time.sleep(0.0005)
    t = threading.Thread(target=count)
    t.start()
    running.set()
    model.segment(crop, tile=316)
    running.clear()
    t.join()
    checks, held = _core._gil_probe()
    assert checks == 7   # before the first tile and after each of 6
    assert held == 0     # the library never ran a tile holding the GIL
    assert len(ticks) > 0


def test_ctrl_c_stops_a_long_call_at_the_next_tile(model):
    # No Python progress callback: the library's own check between tiles must notice the signal.
    stack = np.repeat(unetcore.example_image()[None], 3, axis=0)  # 3 pages x 8 orientations x 4 tiles
    total = 3 * model._core._tile_count(512, 512, True, 0)
    sent_at = []

    def interrupt_when_two_tiles_are_done():
        deadline = time.monotonic() + 300
        while _core._gil_probe()[0] < 3 and time.monotonic() < deadline:  # checks 0, 1, 2: two tiles done
            time.sleep(0.001)
        sent_at.append(_core._gil_probe()[0])
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C does; the main thread is inside the library
    _core._gil_probe(reset=True)
    sender = threading.Thread(target=interrupt_when_two_tiles_are_done)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        model.segment(stack, tta=True)
    sender.join()
    checks = _core._gil_probe()[0]
    assert sent_at and sent_at[0] >= 3
    # Stopped at the first check after the signal (at most one more tile ran), far before the end.
    assert checks <= sent_at[0] + 1 < total + 1


def test_ctrl_c_during_a_python_progress_callback_stops_too(model, crop):
    def progress(done, total):
        if done == 2:
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.segment(crop, tile=316, progress=progress)
    assert _core._gil_probe()[0] == 3

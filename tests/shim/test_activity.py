"""activity.Activity: the shim freezes only when idle, waits for sections in progress, and holds
new ones at their entry until it thaws."""
import os
import sys
import threading
import time

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim.activity import Activity  # noqa: E402


def test_busy_or_recent_work_prevents_freezing():
    a = Activity()
    assert not a.quiesce(10, 0.1)           # just created: not idle for 10 s
    assert a.idle_left(10) > 9
    a.begin()
    assert a.idle_left(0) is None and not a.quiesce(0, 0.1)
    a.end()
    assert a.idle_left(0) == 0 and a.quiesce(0, 0.1)
    a.thaw()


def test_waits_for_the_section_in_progress_and_holds_new_ones():
    a = Activity()
    inside, release, order = threading.Event(), threading.Event(), []

    def copier():
        with a.section:
            inside.set()
            release.wait()
            order.append("first section done")

    def late():
        with a.section:
            order.append("late section")
    t = threading.Thread(target=copier)
    t.start()
    inside.wait()
    assert not a.quiesce(0, 0.2)            # a section did not end in time: not frozen
    threading.Timer(0.2, release.set).start()
    assert a.quiesce(0, 5)                  # frozen once it ended
    assert order == ["first section done"]
    t2 = threading.Thread(target=late)
    t2.start()
    time.sleep(0.2)
    assert order == ["first section done"]  # held at the entry while frozen
    a.thaw()
    t2.join(5)
    assert order == ["first section done", "late section"]
    t.join()


def test_work_that_starts_while_freezing_wins():
    a = Activity()
    inside, release = threading.Event(), threading.Event()

    def reader():
        with a.section:
            inside.set()
            release.wait()
            a.begin()                       # the frame it read was a request
    t = threading.Thread(target=reader)
    t.start()
    inside.wait()
    threading.Timer(0.1, release.set).start()
    assert not a.quiesce(0, 5)
    a.end()
    t.join()

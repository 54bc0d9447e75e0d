"""The cyclic garbage collector during a command's life.

A runtime command is short and allocates mostly while its modules load: the collections those
imports trigger are ~0.8 ms of a `run` (bench/timeline.py, A/B). entry() turns collection off;
the commands that then run for long (a foreground container, an event stream) turn it back on,
after freezing what startup made so that collections never rescan it.
"""
import gc


def quiet():
    gc.disable()


def long_running():
    if not gc.isenabled():
        gc.freeze()
        gc.enable()

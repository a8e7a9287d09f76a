"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``.

The imports and the app's set-up make tens of thousands of objects that live as long as the
process. The cyclic garbage collector is kept off while they are made (it would walk them again
and again, for nothing) and then they are frozen out of every later collection, including the
one at exit, which costs a short command about a third of a second. It also keeps a forked
worker from touching the pages it shares with its parent (Python's ``gc.freeze`` notes).
"""
import gc

gc.disable()
try:
    from server import create_app

    app = create_app()
finally:
    gc.freeze()
    gc.enable()

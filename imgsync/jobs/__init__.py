"""The jobs: one user-visible job per module (sync, upload, login, demo, ...).

A job builds its collaborators from the Settings, runs, and returns result dataclasses. It prints
nothing and knows no exit status: the command line (:mod:`imgsync.cli`) turns results into output.
"""

"""`make bench`: how fast and how lean the project's load paths are, against the references.

Every method runs in its own process, so its wall time and peak RSS are that process's alone
(imports included). ``bench/run.py`` is the command; ``bench/README.md`` says what is measured.
"""

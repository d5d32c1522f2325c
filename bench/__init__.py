"""Threadline's benchmark (issue 5): ``python -m bench.run``. See ``bench/README.md``."""

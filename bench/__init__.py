"""``python -m bench``: crr-gateway measured side by side with the alternatives (issue 5).

It starts its own control plane and simulated node, runs the service as a real subprocess and
prints a markdown report (also written to ``bench/results/<date>.md``). Not part of the test
suite: timings belong here, not in tests.
"""

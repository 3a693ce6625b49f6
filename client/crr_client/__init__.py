"""crr, the command line of crr-gateway: restart containers in place and roll restarts over
workloads, wait for the outcome, and exit with a code a CI job can act on.

Standard library only. Modules import what their command needs, when it needs it, so that
``crr --version`` costs little more than starting Python."""

__version__ = "0.1.0"

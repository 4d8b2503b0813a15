"""The task handlers of every system, imported by their worker processes.

Each system gets the same two tasks:

- ``noop``: does nothing but append the time it ran to the stamp file (the
  drain workload reads these stamps).
- ``stamp``: takes the client's send time, appends ``start - send`` (the
  submit-to-start latency) to the stamp file and returns its start time.
"""

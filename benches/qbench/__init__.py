"""Helpers of benches/queues.py: tq and its peers, measured side by side.

The orchestrator (`queues.py`, `workloads`, `systems`, `report`) runs in the
benchmark's own virtual environment. What runs inside the systems under test
lives in `apps` (task handlers of every system) and `drivers` (client
processes), each started with the interpreter of the system it drives.
"""

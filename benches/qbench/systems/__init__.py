"""Each system under test, as the orchestrator starts and drives it."""

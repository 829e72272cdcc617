"""Support of test_isolation_fuzz.py: the HTTP client, the model of what each owner wrote,
the leak scan, and the rules of the state machine, one group per module."""

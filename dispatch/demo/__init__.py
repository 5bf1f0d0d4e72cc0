"""``dispatch demo`` and the stand-in vendor servers it (and the tests and benchmarks) run
on loopback."""

"""Dispatching: a claimed job is loaded once, each delivery group is rendered and sent by
one function, and one run loop claims and sends. Flows, the embedded runner, the CLI, the
benchmarks and the tests all use that loop."""

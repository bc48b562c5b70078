"""The project's test kit: helpers shared by tests and benchmarks."""

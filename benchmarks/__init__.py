"""BluePrint's benchmarks: ``python -m benchmarks [--quick] [--json PATH]`` runs them all and prints one table."""

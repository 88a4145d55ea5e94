"""The development launcher behind `make run`."""

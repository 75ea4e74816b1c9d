"""Console commands with the original toolkit's names and positional arguments."""

"""Pure domain code of the genome NLP platform: nothing here imports ZenML."""

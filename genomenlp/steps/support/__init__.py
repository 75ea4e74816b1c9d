"""ZenML glue that steps and the platform code above them share (not steps themselves)."""

"""Configuration models and loading."""

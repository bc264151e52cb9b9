"""The feed API for end users."""

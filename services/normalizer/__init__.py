"""The normalizer: raw platform payloads -> canonical interactions between people."""

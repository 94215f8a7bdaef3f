"""Database layer: declarative base, engine construction, sessions and migrations."""

from tests.gridlink.fakes import committed_database_url, committed_engine, factory

__all__ = ["committed_database_url", "committed_engine", "factory"]

"""The SQLAlchemy Core implementation of :class:`claudomator.store.base.Store`, one module per
aggregate; :class:`~claudomator.store.sql.store.SqlStore` combines them over one engine."""

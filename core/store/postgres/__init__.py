"""The PostgreSQL engine (``CAP_DATABASE_URL=postgresql://…``): :mod:`.db` (pool, migrations, error
mapping), :mod:`.registry`, :mod:`.policy_store`, :mod:`.audit`. Imports ``psycopg``; only :mod:`core.store`
imports this package."""

"""Run the Alembic history from code (`reckai migrate`, embedded start-up, tests).

Always as the owner role: the tables, policies and functions belong to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from reckai.adapters.postgres.roles import sqlalchemy_url

if TYPE_CHECKING:
    from reckai.adapters.security.personal_data import MasterKeys

PROJECT_ROOT = Path(__file__).resolve().parents[4]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(owner_url: str, master_keys: MasterKeys | None = None) -> Config:
    """`master_keys`: the settings' master keys, for the revisions that encrypt or decrypt stored
    personal data (0034_pii_encryption refuses to run without them)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini")) if (PROJECT_ROOT / "alembic.ini").exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = sqlalchemy_url(owner_url)
    if master_keys is not None:
        config.attributes["pii_master_keys"] = master_keys
    return config


def head_revision() -> str:
    """The Alembic head of the code's migration history (what a fully migrated database is at)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(config).get_heads()
    return ",".join(sorted(heads))


def upgrade(owner_url: str, revision: str = "head", *, master_keys: MasterKeys | None = None) -> None:
    command.upgrade(alembic_config(owner_url, master_keys), revision)


def downgrade(owner_url: str, revision: str = "base", *, master_keys: MasterKeys | None = None) -> None:
    command.downgrade(alembic_config(owner_url, master_keys), revision)


def current_revision(owner_url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(owner_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()

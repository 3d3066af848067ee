"""Data migrations keep what users chose."""

import uuid
from pathlib import Path

import psycopg
from servicekit.db import upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "auth_service" / "migrations"


def test_notification_email_flag_becomes_the_account_address_or_null(test_servers):
    """0003: `notification_email` was built as a flag; the contract makes it an address. A user who
    had notifications on keeps receiving them at the account's address; off becomes null."""
    url = test_servers.database_from_template("auth_at_0002", lambda u: upgrade(MIGRATIONS, u, "0002_signing_key_activation"))
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    on, off = uuid.uuid4(), uuid.uuid4()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for user_id, name, flag in ((on, "on_1", True), (off, "off_1", False)):
                conn.execute(
                    "INSERT INTO users (id, email, username, password_hash, display_name, bio, onboarded,"
                    " theme, language, notification_email) VALUES (%s, %s, %s, 'x', %s, '', false, 'dark',"
                    " 'en', %s)", (user_id, f"{name}@example.com", name, name, flag))

        upgrade(MIGRATIONS, url)

        with psycopg.connect(dsn) as conn:
            rows = dict(conn.execute("SELECT username, notification_email FROM users").fetchall())
            kind = conn.execute("SELECT data_type, is_nullable FROM information_schema.columns WHERE "
                                "table_name = 'users' AND column_name = 'notification_email'").fetchone()
        assert rows == {"on_1": "on_1@example.com", "off_1": None}
        assert kind == ("character varying", "YES")
    finally:
        test_servers.drop_database(url)

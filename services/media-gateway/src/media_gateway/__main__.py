from pathlib import Path

from servicekit.cli import run

from media_gateway.config import Settings
from media_gateway.main import create_app

run(settings_factory=Settings, app_factory=create_app, migrations_dir=Path(__file__).parent / "migrations")

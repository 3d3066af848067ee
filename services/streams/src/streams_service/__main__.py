from pathlib import Path

from servicekit.cli import run

from streams_service.config import Settings
from streams_service.main import create_app

run(settings_factory=Settings, app_factory=create_app,
    migrations_dir=Path(__file__).parent / "migrations")

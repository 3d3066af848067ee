from pathlib import Path

from servicekit.cli import run

from auth_service.config import Settings
from auth_service.keys.service import rotate_keys_command
from auth_service.main import create_app

run(settings_factory=Settings, app_factory=create_app,
    migrations_dir=Path(__file__).parent / "migrations",
    commands={"rotate-keys": rotate_keys_command})

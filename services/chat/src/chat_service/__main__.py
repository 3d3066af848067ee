from pathlib import Path

from servicekit.cli import run

from chat_service.config import Settings
from chat_service.main import create_app


def persist(settings: Settings) -> int:
    """run only the persister (CHAT stream -> PostgreSQL) until SIGINT/SIGTERM"""
    import asyncio

    from chat_service.messages.run_persister import run_persister

    asyncio.run(run_persister(settings))
    return 0


def edge(settings: Settings) -> int:
    """run a chat WebSocket edge (EDGE_ID, PORT)"""
    from chat_service.edge.main import run_edge  # reads its own EdgeSettings

    return run_edge()


run(settings_factory=Settings, app_factory=create_app,
    migrations_dir=Path(__file__).parent / "migrations",
    commands={"persist": persist, "edge": edge})

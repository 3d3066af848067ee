import sys

from chat_service.edge.main import run_edge

sys.exit(run_edge())

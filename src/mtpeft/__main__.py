"""``python -m mtpeft`` (also what ``accelerate launch -m mtpeft train ...`` runs)."""

from mtpeft.cli import app

app()

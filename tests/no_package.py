"""The start of a script for a fresh interpreter in which `modeling_speechct` cannot be imported — a user who has
only the Hub folder — and which proves it before doing anything else."""

WITHOUT_PACKAGE = """
import sys
sys.modules["modeling_speechct"] = None  # any import of the package now fails
try:
    import modeling_speechct  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("package still importable")
"""

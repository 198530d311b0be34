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


def run_without_package(body: str, workdir) -> str:
    """Run `WITHOUT_PACKAGE` + `body` in a fresh interpreter, offline, with its own modules cache under `workdir`;
    fail with its stderr unless it exits 0; return its stdout."""
    import subprocess
    import sys
    import textwrap

    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(workdir / "modules"), "PATH": "/usr/bin:/bin"}
    script = WITHOUT_PACKAGE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout

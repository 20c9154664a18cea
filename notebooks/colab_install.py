# Colab only (elsewhere this cell does nothing): install scalearn_lite at a pinned release, then go on.
# * Colab's torch is kept (pinned to the build already installed).
# * adapters==1.3.0 moves Colab's transformers (5.x) to 4.57.x and huggingface_hub below 1.0. That is expected
#   and harmless unless transformers was already imported in this session: then you are asked to restart.
# * Not installed here: the offline embedded model (scalearn_lite[offline]) and JupyterLab (scalearn_lite[lab]).
# This cell is notebooks/colab_install.py; the README (Colab) explains REPO_URL and COMMIT.
import importlib.metadata, re, subprocess, sys

REPO_URL = "https://github.com/scalearn-lite/scalearn_lite"  # placeholder: the course's public repository
COMMIT = "PIN-A-RELEASE"  # placeholder: the tag (v1.2.3) or commit hash these notebooks were tested with


def colab_install(modules=sys.modules):
    """On Colab: pip-install the pinned course and return the pip command. Elsewhere: None, nothing done."""
    if "google.colab" not in modules:
        return None
    if not re.fullmatch(r"[0-9a-f]{7,40}|v\d+(\.\d+)*", COMMIT):
        raise ValueError(f"COMMIT = {COMMIT!r} is not a tag (v1.2.3) or a commit hash: pin the tested release")
    before = getattr(modules.get("transformers"), "__version__", None)  # imported earlier in this session?
    torch_version = importlib.metadata.version("torch")
    cmd = [sys.executable, "-m", "pip", "install", "-q", f"torch=={torch_version}", "adapters==1.3.0",
           f"scalearn_lite @ git+{REPO_URL}@{COMMIT}"]
    subprocess.run(cmd, check=True)
    if before and not before.startswith("4.57."):
        raise RuntimeError(f"transformers {before} was imported before this cell, and pip has now installed 4.57.x: "
                           "restart the session (Runtime > Restart session), then run the notebook from the top.")
    print(f"installed scalearn_lite @ {COMMIT} with adapters 1.3.0; torch kept at {torch_version}")
    return cmd


installed = colab_install()

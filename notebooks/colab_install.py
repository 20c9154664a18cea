# Colab only (elsewhere this cell does nothing): install scalearn_lite from SOURCE, then go on.
# * SOURCE is the one setting, the same in every notebook: a published version ("scalearn_lite==1.2.3") or a git URL
#   at a tag or commit ("git+https://github.com/<owner>/scalearn_lite@v1.2.3"). Whoever publishes the course sets it
#   with `python notebooks/publish.py <SOURCE>`, which also points the Colab badges there. Empty: this cell installs
#   nothing and prints what to set.
# * Colab's torch is kept. adapters==1.3.0 moves Colab's transformers (5.x) to 4.57.x and huggingface_hub below 1.0:
#   harmless unless transformers was already imported in this session (then: restart, as the cell says). No
#   downgrade at all on the runtime version 2026.01 (Runtime > Change runtime type; see notebooks/README.md).
import importlib.metadata, re, subprocess, sys

SOURCE = ""  # e.g. "scalearn_lite==1.2.3" or "git+https://github.com/<owner>/scalearn_lite@v1.2.3"
_VERSION = r"scalearn[_-]lite==\d+(\.\d+)*"
_GIT = r"git\+https://[\w.-]+/[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{7,40})"


def pip_spec(source):
    """The pip requirement for SOURCE (None when it is empty); a branch or an unpinned URL: ValueError."""
    source = source.strip()
    if not source:
        return None
    if re.fullmatch(_VERSION, source):
        return source
    if re.fullmatch(_GIT, source):
        return f"scalearn_lite @ {source}"
    raise ValueError(f"SOURCE = {source!r} is not pinned: use scalearn_lite==1.2.3 or a git URL ending in @v1.2.3 "
                     "or @<commit hash> (a branch such as main changes under the notebooks)")


def colab_install(source=None, modules=sys.modules):
    """On Colab: pip-install SOURCE and return the pip command (None, with what to set, when SOURCE is empty).
    Elsewhere: None, nothing done."""
    if "google.colab" not in modules:
        return None
    spec = pip_spec(SOURCE if source is None else source)
    if spec is None:
        print("scalearn_lite is not installed: SOURCE is empty in this cell. Set it to the course's release, e.g.\n"
              '    SOURCE = "scalearn_lite==1.2.3"\nor\n'
              '    SOURCE = "git+https://github.com/<owner>/scalearn_lite@v1.2.3"\n'
              "and run this cell again (or ask whoever shared the notebook for the link of a published copy).")
        return None
    before = getattr(modules.get("transformers"), "__version__", None)  # imported earlier in this session?
    torch_version = importlib.metadata.version("torch")
    cmd = [sys.executable, "-m", "pip", "install", "-q", f"torch=={torch_version}", "adapters==1.3.0", spec]
    subprocess.run(cmd, check=True)
    if before and not before.startswith("4.57."):  # stop here: the next cells would run the old transformers
        raise RuntimeError(f"transformers {before} was imported before this cell, and pip has now installed 4.57.x: "
                           "restart the session (Runtime > Restart session), then run the notebook from the top.")
    print(f"installed {spec} with adapters 1.3.0; torch kept at {torch_version}")
    return cmd


installed = colab_install()

"""widgets: they build and update without a frontend, with only what ipywidgets 7 (Colab) has."""
import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from omega_runs import write_run
from scalearn_lite import widgets

ROOT = Path(__file__).resolve().parents[1]


def test_widgets_build_and_update_without_a_frontend(tmp_path):
    pytest.importorskip("ipywidgets")
    calls = []

    def scorer(values):
        calls.append(list(values))
        return sum(values) / 10

    box = widgets.omega_sliders(scorer, ["a", "b"], start=[0.2, 0.3], metric="accuracy")
    assert calls[-1] == [0.2, 0.3] and "accuracy = 5.00" in box.label.value
    box.sliders[0].value = 0.7  # what a user's drag does
    assert calls[-1] == [0.7, 0.3] and "accuracy = 10.00" in box.label.value
    runs = {"mrpc": {v: write_run(tmp_path / v, seed=i)[0] for i, v in enumerate(["scalearn", "scalearn_pp"])}}
    browser = widgets.run_browser(runs)
    assert browser is not None and browser.children[0].children[1].options == ("scalearn", "scalearn_pp")


# The widget classes of ipywidgets 7.7 (Colab's frontend does not support 8): widgets.py must use no others.
IPYWIDGETS_7 = {"Accordion", "BoundedFloatText", "BoundedIntText", "Box", "Button", "Checkbox", "Dropdown",
                "FloatLogSlider", "FloatProgress", "FloatRangeSlider", "FloatSlider", "FloatText", "GridBox", "HBox",
                "HTML", "HTMLMath", "Image", "IntProgress", "IntRangeSlider", "IntSlider", "IntText", "Label",
                "Layout", "Output", "Play", "RadioButtons", "Select", "SelectMultiple", "SelectionRangeSlider",
                "SelectionSlider", "Tab", "Text", "Textarea", "ToggleButton", "ToggleButtons", "VBox", "interact",
                "interactive", "jslink", "link"}


def test_widgets_use_only_what_ipywidgets_7_has():
    tree = ast.parse((ROOT / "scalearn_lite" / "widgets.py").read_text())
    used = {node.attr for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
            if any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "_widgets" for n in ast.walk(fn))
            for node in ast.walk(fn) if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "w"}
    assert used, "no widget code found in widgets.py"
    assert used <= IPYWIDGETS_7, f"not in ipywidgets 7 (Colab): {sorted(used - IPYWIDGETS_7)}"

"""ipywidgets for the notebooks: a run browser over ω heatmaps and sliders that set ω by hand. Only widget classes
of ipywidgets 7.7 (what Colab's frontend supports); without ipywidgets each returns None and says so.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

from .analysis import RunLike, omega_frame
from .viz import omega_heatmap


def _widgets():
    """The ipywidgets module, or None (and a line saying so) where it is not installed."""
    try:
        import ipywidgets

        return ipywidgets
    except ImportError:
        print("ipywidgets is not installed: showing the static figures only")
        return None


def run_browser(runs: Mapping[str, Mapping[str, RunLike]]):
    """Dropdowns target / variant and a layer slider over {target: {variant: run}}: the ω heatmap and one layer's bars."""
    w = _widgets()
    if w is None:
        return None
    import matplotlib.pyplot as plt

    targets = list(runs)
    target = w.Dropdown(options=targets, description="target")
    variant = w.Dropdown(options=list(runs[targets[0]]), description="variant")
    layer = w.IntSlider(min=0, max=len(omega_frame(next(iter(runs[targets[0]].values())))) - 1, description="layer")
    out = w.Output()

    def draw(*_):
        variant.options = list(runs[target.value])
        frame = omega_frame(runs[target.value][variant.value])
        layer.max = len(frame) - 1
        with out:
            out.clear_output(wait=True)
            fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.9 + 0.45 * len(frame) + 1))
            omega_heatmap(frame, ax=a, title=f"{variant.value} → {target.value}")
            a.axhline(layer.value, color="black", lw=2)
            frame.iloc[layer.value].plot.bar(ax=b, color="tab:blue")
            b.axhline(0, color="black", lw=0.6)
            b.set_title(f"layer {layer.value}")
            b.set_ylabel("ω")
            plt.show()

    for control in (target, variant, layer):
        control.observe(draw, names="value")
    draw()
    box = w.VBox([w.HBox([target, variant, layer]), out])
    box.redraw = draw  # for tests and scripts
    return box


def omega_sliders(scorer: Callable[[Optional[Sequence[float]]], float], sources: Sequence[str],
                  start: Optional[Sequence[float]] = None, lo: float = -1.0, hi: float = 2.0, step: float = 0.05,
                  metric: str = "metric"):
    """One slider per source sets ω_i (every layer) by hand; the label shows scorer(ω) live, on release."""
    w = _widgets()
    if w is None:
        return None
    start = list(start) if start is not None else [1.0 / len(sources)] * len(sources)
    sliders = [w.FloatSlider(value=v, min=lo, max=hi, step=step, description=s, continuous_update=False)
               for s, v in zip(sources, start)]
    label = w.HTML()

    def update(*_):
        values = [s.value for s in sliders]
        label.value = f"<b>{metric} = {100 * scorer(values):.2f}</b> at ω = {[round(v, 2) for v in values]}"

    for s in sliders:
        s.observe(update, names="value")
    update()
    box = w.VBox([*sliders, label])
    box.update, box.sliders, box.label = update, sliders, label
    return box

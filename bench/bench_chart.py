"""The benchmark's medians as a PNG bar chart (matplotlib, imported only when --png is given)."""

COLORS = {"pyrunc": "#3572A5", "runc": "#7f7f7f", "crun": "#e07b39"}


def draw(path, summaries, names, rows, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if n in summaries]
    rows = [r for r in rows if any((summaries[n].get(r) or {}).get("median") for n in names)]
    height = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) * max(len(names), 1) / 2 + 1.8))
    for k, name in enumerate(names):
        ys, xs = [], []
        for j, row in enumerate(rows):
            s = summaries[name].get(row)
            if s and s.get("median"):
                ys.append(j + k * height)
                xs.append(s["median"])
        bars = ax.barh(ys, xs, height=height, color=COLORS.get(name, None), label=name)
        for bar, x in zip(bars, xs):
            ax.text(x * 1.03, bar.get_y() + bar.get_height() / 2, "%.1f" % x, va="center", fontsize=7)
    ax.set_yticks([j + height * (len(names) - 1) / 2 for j in range(len(rows))])
    labels = []
    for row in rows:
        label = row
        p = (summaries.get("pyrunc") or {}).get(row)
        extra = []
        for other in ("runc", "crun"):
            o = (summaries.get(other) or {}).get(row)
            if p and o and o.get("median") and other in names:
                extra.append("%.2fx %s" % (p["median"] / o["median"], other))
        if extra:
            label += "\n(" + ", ".join(extra) + ")"
        labels.append(label)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median wall time, ms (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

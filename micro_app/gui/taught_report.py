"""What the user reads of a newly taught version before choosing to use or discard it:
before → after on held-back cells that no model was trained on."""

from __future__ import annotations

from micro_app.adapt.library import NewVersion
from micro_app.adapt.setup import MicroscopeSetup


def describe_teaching(result: NewVersion) -> str:
    """The before/after numbers, as the user reads them before choosing."""
    r = result.report
    b, a = r["before"], r["after"]
    lines = [f"<b>New version {result.version}</b> ({r['seconds']:.0f} s)"]
    if a.get("cells"):
        lines.append(
            f"On {a['cells']} held-back cells of this lab (never trained on): right class "
            f"<b>{b['accuracy']:.0%} → {a['accuracy']:.0%}</b> (top class "
            f"{b['top_class_accuracy']:.0%} → {a['top_class_accuracy']:.0%}; below the "
            f"{a['threshold']:.2f} threshold: {b['unidentified']} → {a['unidentified']})."
        )
        lines.append(f"<b>{r['verdict'][0].upper()}{r['verdict'][1:]}.</b>")
    else:
        lines.append(
            "<b>Not measured:</b> no held-back cells yet (label at least 3 cells of a "
            "class). Use it only if you have checked it yourself."
        )
    tb, ta = r["training_data_before"], r["training_data_after"]
    if ta.get("cells"):
        lines.append(
            f"On {ta['cells']} held-back training images (does it still know them?): "
            f"{tb['accuracy']:.0%} → {ta['accuracy']:.0%}."
        )
    for c in r.get("added_classes", []):
        rb, ra = b.get("recall", {}), a.get("recall", {})
        if c in ra:
            lines.append(
                f"New class <b>{c}</b>: {ra[c]:.0%} of its held-back cells found "
                f"(before: {rb.get(c, 0):.0%})."
            )
        else:
            lines.append(f"New class <b>{c}</b> taught; none of its cells was held back.")
    pseudo = (r.get("pseudo_labels") or {}).get("kept", 0)
    lines.append(
        f"Taught with {r['train_cells']} lab cells {r['train_per_class']}, {pseudo} other "
        f"cells of this microscope the model was sure of, and {r['replay_cells']} training "
        "images."
    )
    if r["skipped_labels"]:
        lines.append(
            f"Not taught (a new class needs at least 4 labelled cells): {r['skipped_labels']}."
        )
    return "<p>" + "</p><p>".join(lines) + "</p>"


def describe_setup(setup: MicroscopeSetup, result: NewVersion) -> str:
    """Before → after on the confirmed cells held back, and how the set-up got there."""
    s = setup.summary()
    before, after = s["before"], s["after"]
    if not before.get("cells"):
        return (
            f"<b>Version {result.version}</b> is taught, but no labelled cell was held "
            "back to measure it: confirm more cells per class to see before → after."
        )
    taught = len(setup.labelled_set().train_labels)
    lines = [
        f"<b>Version {result.version}</b>, taught {taught} cells you confirmed, measured "
        f"on {before['cells']} held back (never trained on):",
        f"right class {before['accuracy']:.0%} → <b>{after['accuracy']:.0%}</b>; averaged "
        f"over classes {before['balanced_accuracy']:.0%} → {after['balanced_accuracy']:.0%}",
    ]
    added = set(s.get("added_classes") or [])
    for c, r in after.get("recall", {}).items():
        if c in added:
            lines.append(f"New class {c}: {r:.0%} of its held-back cells found.")
        else:
            lines.append(f"{c}: {before['recall'].get(c, 0):.0%} → {r:.0%}")
    for c in sorted(added - set(after.get("recall", {}))):
        lines.append(f"New class {c} taught (none of its cells was held back).")
    start = s["started_from"]
    held = start.get("labelled_right_class") or {}
    calibration = setup.calibrated.report if setup.calibrated else {}
    if calibration.get("normalisation") == "parent":
        lines.append(
            "Calibration kept the model's own normalisation ("
            + calibration["guard"]["reason"]
            + "); it added this microscope to the check for cells unlike the training "
            "images."
        )
    elif held.get("shipped") is not None:
        lines.append(
            f"Taught from the {start['model']} model (right on the {start['labelled_cells']}"
            f" cells you labelled: shipped {held['shipped']:.0%}, calibrated "
            f"{held['calibrated']:.0%})."
        )
    if s.get("pseudo"):
        lines.append(
            f"Also taught {s['pseudo']} of the other collected cells the model was sure of."
        )
    for c, n in (s.get("too_few") or {}).items():
        lines.append(f"{c}: only {n} labelled, not taught (label at least 4 to add the class).")
    lines.append(f"<b>{s['verdict'][0].upper()}{s['verdict'][1:]}.</b>")
    lines.append("Use it for this microscope, or discard it: the current model stays.")
    return "<p>" + "</p><p>".join(lines) + "</p>"

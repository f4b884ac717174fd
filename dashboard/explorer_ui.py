"""Streamlit pieces of the error explorer: the URL-backed view controls, the gallery and the review dialog.

The view lives in the widgets and is mirrored into ``st.query_params`` after every run; when the URL differs from
what this session last wrote (a reload, a link), the URL wins. The reviewer's name lives outside any widget, so it
survives saves, dialogs and reloads.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import streamlit as st

from dashboard import charts, display_ref, drawing, evaluation, explorer, images, resources, verdicts, widgets
from dashboard.analysis import explain_dataset_crop
from dashboard.errors import guard
from training import agreement
from training import review as fer_review

log = logging.getLogger(__name__)

URL_KEY = "xp_url"
"""The query parameters this session last wrote (to tell our own URL from one the user brought)."""
ITEM_KEY = "xp_item"
FLASH_KEY = "xp_flash"

HELP = {
    "label wrong": "The model is right and the dataset's label is wrong; the corrected-labels export relabels the "
    "image to the model's prediction.",
    "model wrong": "The dataset's label is right and the model is wrong.",
    "ambiguous": "Neither is clearly right (say why in the note).",
    "not a face": "No usable face in the image.",
}
"""What each verdict means; the export of corrected labels relies on the first."""


def seed_from_url(class_names) -> None:
    """When the URL is not the one this session wrote, or the widgets are new, put the URL's view in them."""
    params = st.query_params.to_dict()
    if params == st.session_state.get(URL_KEY) and "xp_true" in st.session_state:
        return
    view = explorer.view_from_params(params, class_names, verdicts.VERDICTS)
    st.session_state.update({f"xp_{k}": v for k, v in asdict(view).items() if k not in ("conf_lo", "conf_hi", "item")})
    st.session_state.update({"xp_conf": (view.conf_lo, view.conf_hi), ITEM_KEY: view.item})
    if params.get(widgets.REVIEWER_KEY):
        st.session_state[widgets.REVIEWER_KEY] = params[widgets.REVIEWER_KEY]


def results_from_url(options: list[str]) -> None:
    """Make the URL's ``results`` (a path as :func:`dashboard.display_ref` shows it) the current file."""
    wanted = st.query_params.get("results")
    if not wanted or st.query_params.to_dict() == st.session_state.get(URL_KEY):
        return
    for ref in options:
        if display_ref(ref) == wanted:
            st.session_state[widgets.CURRENT_KEY] = ref
            st.session_state.pop("xp_select", None)
            return
    log.info("results %r from the URL is not on offer here", wanted)


def view_controls(class_names, has_votes: bool, bins=None) -> explorer.View:
    """The filter widgets; returns the view they show (page and item are filled in by the caller).

    ``bins``: :func:`training.slices.row_bins` of the results (None: no slices, the slice filters are off).
    """
    names = ["any", *class_names]
    c = st.columns(4)
    true = c[0].selectbox("True class", names, key="xp_true")
    pred = c[1].selectbox("Predicted class", names, key="xp_pred")
    sort = c[2].selectbox("Sort by", explorer.SORT_KEYS, key="xp_sort")
    desc = c[3].toggle("Highest first", key="xp_desc")
    c = st.columns([2, 2, 2])
    conf = c[0].slider("Confidence", 0.0, 1.0, step=0.01, key="xp_conf")
    margin = c[1].slider("Margin at most (top-1 − top-2)", 0.0, 1.0, step=0.01, key="xp_margin")
    review = c[2].selectbox(
        "Reviewed",
        explorer.review_options(verdicts.VERDICTS),
        format_func=lambda o: {"all": "all images", "unreviewed": "unreviewed only"}.get(o, f"verdict = {o}"),
        key="xp_review",
    )
    c = st.columns(3)
    errors = c[0].toggle("Errors only", key="xp_errors")
    disputed = c[1].toggle(
        "Label disputed",
        key="xp_disputed",
        disabled=not has_votes,
        help="FER2013's label differs from the FERPlus majority of 10 annotators (a majority of 'unknown' or "
        "'not a face' counts as disputed). FER2013/FERPlus results only.",
    )
    duplicates = c[2].toggle(
        "Has a duplicate",
        key="xp_duplicates",
        disabled=not has_votes,
        help="The same or a near-identical image occurs elsewhere in FER2013 (perceptual hash).",
    )
    chosen = slice_controls(bins)
    return explorer.View(
        true=true,
        pred=pred,
        errors=errors,
        review=review,
        disputed=bool(disputed and has_votes),
        duplicates=bool(duplicates and has_votes),
        **chosen,
        sort=sort,
        desc=desc,
        conf_lo=float(conf[0]),
        conf_hi=float(conf[1]),
        margin=float(margin),
    )


def slice_controls(bins) -> dict[str, str]:
    """One select box per slice filter (brightness, blur) listing the results' bins; disabled without slices."""
    c = st.columns(len(explorer.SLICE_FILTERS))
    chosen = {}
    for col, name in zip(c, explorer.SLICE_FILTERS, strict=True):
        have = bins is not None and name in bins
        labels = [explorer.ANY, *(sorted(set(bins[name]), key=_bin_order) if have else [])]
        key = f"xp_{name}"
        if st.session_state.get(key) not in labels:  # a link from another results file: its bins differ
            st.session_state[key] = explorer.ANY
        chosen[name] = col.selectbox(
            f"{name.capitalize()} bin",
            labels,
            key=key,
            disabled=not have,
            help="Bins of the results' slices (training.evaluate --slices): brightness = mean gray level, blur = "
            "variance of the Laplacian (low = blurry), each cut at the evaluated set's quintiles.",
        )
    return chosen


def _bin_order(label: str) -> float:
    """Bins sort by their lower edge ("63–99" -> 63); labels without one go last."""
    try:
        return float(label.split("–", 1)[0])
    except ValueError:
        return float("inf")


def write_url(view: explorer.View, results_ref: str) -> None:
    """Mirror the view, the results file and the reviewer into the URL (and remember what was written)."""
    params = widgets.explorer_params(view, results_ref)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)
    st.session_state[URL_KEY] = params


@st.cache_resource(max_entries=2, show_spinner="Reading FERPlus's votes and hashing FER2013 for duplicates (once)…")
def _fer_review_data(fer_file: str, mtime: float):
    from training.datasets import data_root, read_fer2013

    raw = read_fer2013(fer_file)
    return fer_review.human_votes(data_root()), raw["usage"], fer_review.fer2013_phashes(fer_file)


@st.cache_resource(max_entries=8)
def _duplicates(fer_file: str, mtime: float, ids: tuple[int, ...]):
    return fer_review.duplicates(ids, images.fer2013_images(fer_file), _fer_review_data(fer_file, mtime)[2])


def review_flags(d: dict, df):
    """For FER2013/FERPlus results: ``(flags, votes, usage, pairs)``, else None.

    ``flags`` is indexed by image id with ``disputed``, ``duplicate`` and ``suggested`` (a verdict or None);
    ``votes`` is ``training.review.votes_table``; ``pairs`` the duplicates of the evaluated images.
    """
    fer_file = images.fer2013_file(d)
    if fer_file is None:
        return None
    mtime = fer_file.stat().st_mtime
    votes, usage, _ = _fer_review_data(str(fer_file), mtime)
    ids = tuple(int(i) for i in df["id"])
    pairs = _duplicates(str(fer_file), mtime, ids)
    flags = votes.reindex(list(ids))[["disputed"]].fillna(False).astype(bool)
    flags["duplicate"] = flags.index.isin(pairs["row"])
    flags["suggested"] = fer_review.suggested_verdicts(votes, ids, list(df["pred_name"]))
    return flags, votes, usage, pairs


def gallery(d: dict, rows, fer, reviewed: dict, page: int, flags=None, columns: int = 6) -> None:
    """One page of the gallery: image, ``#id true→pred confidence`` (+ verdict, disputed, duplicate), Open."""
    grid = st.columns(columns)
    for k, (idx, row) in enumerate(explorer.page_rows(rows, page).iterrows()):
        item = int(row["id"])
        with grid[k % columns]:
            with guard(f"loading image {item}"):
                st.image(drawing.upscale(images.row_image(d, idx, fer), 96), width="stretch")
            badges = [reviewed[item].verdict] if item in reviewed else []
            if flags is not None and item in flags.index:
                badges += [b for b, col in (("disputed", "disputed"), ("dup", "duplicate")) if flags.at[item, col]]
            badge = "".join(f" · {b}" for b in badges)
            st.caption(f"#{item} {row['true_name']}→{row['pred_name']} {row['confidence']:.0%}{badge}")
            if st.button("Open", key=f"xp_open_{item}", width="stretch"):
                st.session_state[ITEM_KEY] = item


def _close() -> None:
    st.session_state[ITEM_KEY] = None


def review_dialog(d: dict, df, ids: list[int], item: int, fer, store, sidebar_settings, review=None) -> None:
    """The open image in a dialog: ←/→ within the filtered list, the human votes beside the model's
    probabilities, the explanation, duplicates, and verdict buttons on keys 1-4.

    ``review`` is :func:`review_flags`' answer (None for datasets without FERPlus votes).
    """
    st.dialog(f"Image #{item}", width="large", on_dismiss=_close)(_review_body)(
        d, df, ids, item, fer, store, sidebar_settings, review
    )


def votes_panel(item: int, row, names, review) -> str | None:
    """FER2013's label, FERPlus's 10 votes and the model's probabilities side by side; returns the suggestion."""
    flags, votes, _, _ = review if review is not None else (None, None, None, None)
    cols = st.columns(3)
    cols[2].plotly_chart(charts.probability_bar(row["probs"], names, "the model"), key="xp_probs")
    if votes is None or item not in votes.index:
        cols[0].metric("Dataset label", row["true_name"])
        cols[1].caption("No FERPlus votes for this dataset.")
        return None
    v = votes.loc[item]
    cols[0].metric("FER2013 label", v["fer2013"])
    majority = v["majority"] or "no vote"
    cols[0].metric("FERPlus majority", majority, help="most votes of 10 annotators; first column wins ties")
    if v["disputed"]:
        cols[0].caption(":orange[label disputed] by the annotators")
    counts = [int(v[n]) for n in fer_review.VOTE_NAMES]
    cols[1].plotly_chart(
        charts.votes_bar(counts, fer_review.VOTE_NAMES, f"FERPlus: {int(v['n_votes'])} annotators"), key="xp_votes"
    )
    suggested = flags.at[item, "suggested"] if item in flags.index else None
    if suggested:
        st.info(
            f"Suggested verdict: **{suggested}**. {int(v[v['majority']])} of {int(v['n_votes'])} annotators say "
            f"{v['majority']}, as the model does, where FER2013 says {v['fer2013']}. You decide.",
            icon=":material/lightbulb:",
        )
    return suggested


def duplicates_note(item: int, review) -> None:
    """One line naming the images that are the same or nearly the same as ``item`` (with split and label)."""
    if review is None:
        return
    _, votes, usage, pairs = review
    mine = pairs[pairs["row"] == item]
    if mine.empty:
        return
    split = ("Training", "PublicTest", "PrivateTest")
    parts = [
        f"#{o} ({split[usage[o]]}, labelled {votes.at[o, 'fer2013']}"
        + (", identical)" if same else f", {dist} bits apart)")
        for o, dist, same in mine[["other", "distance", "identical"]].itertuples(index=False)
    ]
    st.warning(
        "Duplicate of " + "; ".join(parts[:8]) + (" …" if len(parts) > 8 else ""), icon=":material/content_copy:"
    )


def _review_body(d, df, ids, item, fer, store, sidebar_settings, review) -> None:
    position = {int(i): k for k, i in enumerate(df["id"])}
    if item not in position:
        st.error(f"Image #{item} is not in these results.")
        return
    idx = position[item]
    row = df.iloc[idx]
    names, dataset = d["class_names"], evaluation.dataset_key(d)
    prev_id, next_id, k = explorer.neighbours(ids, item)
    nav = st.columns([1, 3, 1], vertical_alignment="center")
    if nav[0].button("← Previous", key="xp_prev", disabled=prev_id is None, shortcut="Left", width="stretch"):
        st.session_state[ITEM_KEY] = prev_id
        st.rerun()
    where = f"{k + 1} of {len(ids)} in this filter" if k is not None else f"not in this filter ({len(ids)} images)"
    nav[1].markdown(f"**Labelled {row['true_name']}, predicted {row['pred_name']}** · {where}")
    if nav[2].button("Next →", key="xp_next", disabled=next_id is None, shortcut="Right", width="stretch"):
        st.session_state[ITEM_KEY] = next_id
        st.rerun()

    image = images.row_image(d, idx, fer)
    suggested = votes_panel(item, row, names, review)
    cols = st.columns([1, 1, 2])
    cols[0].image(drawing.upscale(image, 240), caption="as in the dataset", width="stretch")
    settings, note = explorer.engine_settings_for(d, sidebar_settings)
    with cols[1], guard("explaining the image"):
        ex = explain_dataset_crop(resources.get_engine(settings), image, settings.explainer, int(row["pred"]))
        st.image(ex.crop_overlay, caption=f"{ex.method} for '{ex.target}'", width="stretch")
        st.caption(("⚠ " if ex.regions_fallback else "") + ex.regions_note)
    with cols[2]:
        st.caption(note)
        duplicates_note(item, review)

    st.session_state.setdefault("xp_reviewer", st.session_state.get(widgets.REVIEWER_KEY, ""))
    c = st.columns([1, 2])
    reviewer = c[0].text_input("Reviewer", key="xp_reviewer", placeholder="your name (kept for this session)")
    st.session_state[widgets.REVIEWER_KEY] = reviewer.strip()
    note_text = c[1].text_input("Note (optional)", key=f"xp_note_{item}")
    chosen = None
    buttons = st.columns(len(verdicts.VERDICTS))
    for j, v in enumerate(verdicts.VERDICTS):
        kind = "primary" if v == suggested else "secondary"
        if buttons[j].button(v, key=f"xp_verdict_{j}", shortcut=str(j + 1), type=kind, width="stretch", help=HELP[v]):
            chosen = v
    st.caption("Keys: 1-4 record a verdict and go to the next image; ← / → move without one.")
    if chosen is not None:
        try:
            saved = store.add(
                verdicts.Verdict(
                    dataset=dataset,
                    item_id=item,
                    verdict=chosen,
                    reviewer=reviewer,
                    true_label=row["true_name"],
                    pred_label=row["pred_name"],
                    note=note_text,
                    model=evaluation.model_key(d),
                    confidence=float(row["confidence"]),
                )
            )
        except (verdicts.VerdictError, verdicts.VerdictStoreError) as exc:
            st.error(f"Not saved: {exc}. Your note is kept: fill in what is missing and press '{chosen}' again.")
        else:
            st.session_state[FLASH_KEY] = f"Saved: {saved.verdict} by {saved.reviewer} on #{item}"
            st.session_state[ITEM_KEY] = next_id if next_id is not None else item
            st.rerun()
    with guard("reading this image's verdicts"):
        st.dataframe(explorer.verdict_rows(store.for_item(dataset, item)), hide_index=True, key="xp_history")


def agreement_panel(d: dict, store) -> None:
    """Where two or more reviewers judged the same images of these results (on this model's predictions): their
    kappa (``training.agreement``) and the images on which they differ."""
    with guard("measuring the reviewers' agreement"):
        table = agreement.judgements(store.for_dataset(evaluation.dataset_key(d)), model=evaluation.model_key(d))
        team = agreement.sharing_reviewers(table)
        if len(team) < 2:
            return
        st.subheader("Reviewer agreement")
        chosen = st.multiselect(
            "Reviewers compared",
            team,
            default=team,
            key="xp_team",
            help="Each reviewer's newest verdict per image, given on this results file's model. Two reviewers: "
            "Cohen's kappa; three or more: Fleiss' kappa, on the images all of them judged.",
        )
        a = agreement.agreement(table, chosen)
        c = st.columns(3)
        c[0].metric(
            a.method or "Kappa",
            "—" if a.kappa is None else f"{a.kappa:.3f}",
            help="1: they always agree; 0: they agree as often as chance would; below 0: less often.",
        )
        c[1].metric("Images all of them judged", a.n_images)
        c[2].metric("Images they disagree on", len(a.disagreements))
        if a.reason:
            st.caption(f"No kappa: {a.reason}.")
        if not a.disagreements.empty:
            st.dataframe(a.disagreements.drop(columns="dataset"), hide_index=True, key="xp_disagreements")


def exports(d: dict, store, fer_results: bool) -> None:
    """Downloads: the verdict log (every verdict, with model and weights' sha256) and, for FER2013/FERPlus
    results, FER2013 in its own CSV format with the reviewers' corrections applied."""
    sha = d["meta"].get("weights_sha256")
    full = {evaluation.model_key(d): sha} if sha else {}
    c = st.columns(2)
    c[0].download_button(
        "Verdict log (CSV)",
        lambda: fer_review.verdict_log_csv(store.all(), full),
        "ferlens-verdicts.csv",
        "text/csv",
        icon=":material/download:",
        key="xp_export_log",
        on_click="ignore",
    )
    if fer_results:
        c[1].download_button(
            "FER2013 with corrected labels (CSV)",
            lambda: _corrected_csv(d, store),
            "fer2013-corrected.csv",
            "text/csv",
            icon=":material/download:",
            key="xp_export_fer",
            on_click="ignore",
            help="emotion,pixels,Usage like fer2013.csv; every newest 'label wrong' verdict relabels its image to "
            "the model's prediction. The verdict log says who changed what, with which model.",
        )


def _corrected_csv(d: dict, store) -> str:
    from training.datasets import read_fer2013

    return fer_review.corrected_fer2013_csv(read_fer2013(images.fer2013_file(d)), fer_review.corrections(store.all()))

"""The Document view: one document's story is the library's, found by index or text."""

from __future__ import annotations

from apptest import (
    app,
    errors,
    figures,
    markdown,
    metrics,
    plotly_array,
    records_ids,
    synthetic,
    train_on,
)
from apptest import synthetic_lengths as lengths

import packviz as pv


def test_opens_on_the_longest_document_and_tells_its_story():
    at = synthetic(max_len=512).run()
    at.switch_page("pages/document.py").run()
    assert not at.exception and not errors(at)
    plan = pv.pack(lengths(), 512)
    doc = int(lengths().argmax())
    story = pv.document_story(plan, doc)
    m = metrics(at)
    assert m["Tokens"] == f"{story.length:,}" and m["Pieces"] == str(story.n_pieces)
    assert m["Losing context"] == f"{story.fragmented_tokens:,}"
    assert "is **split into pieces in different rows**" in markdown(at)
    table = at.dataframe[0].value
    assert table["row"].tolist() == story.rows.tolist()
    assert table["length"].tolist() == story.lengths.tolist()
    w = pv.loss_weights(plan, batch_rows=8)
    assert m["Loss weight"] == f"{w[doc] / (1 / (w > 0).sum()):.2f}×"
    heat = figures(at)[0]["data"][0]
    assert sorted(set(plotly_array(heat["y"]).tolist())) == sorted(set(story.rows.tolist()))


def test_find_a_document_by_its_text_and_see_where_it_was_cut():
    at = app(max_len=256).run()
    at.switch_page("pages/document.py").run()
    at.text_input(key="story_query").input("Special method names").run()
    assert not at.exception and not errors(at)
    docs = pv.load_builtin("python-docs")
    expected = pv.find_documents(docs, "Special method names", limit=20).tolist()
    hits = at.selectbox(key="story_hit")
    assert expected and [int(o.split(":")[0]) for o in hits.options] == expected
    assert at.number_input(key="story_doc").value == expected[0]
    assert "Where it was cut" in [h.value for h in at.subheader]
    assert "(next piece starts)" in markdown(at) and "✂" in markdown(at)
    at.text_input(key="story_query").input("no document says this, surely").run()
    assert [c.value for c in at.caption if c.value.startswith("No document contains")]


def test_fine_tuning_story_shows_the_trained_tokens():
    """Built-in chats (assistant turns trained): the document's trained tokens, its
    targets per piece and a loss weight over trained targets only."""
    at = app(builtin_name="python-docs-chat", max_len=256).run()
    train_on(at, "assistant")
    at.switch_page("pages/document.py").run()
    assert not at.exception and not errors(at)
    _, ids = records_ids("python-docs-chat", "assistant")
    plan = pv.pack(ids.lengths, 256)
    doc = int(ids.lengths.argmax())
    story = pv.document_story(plan, doc, token_ids=ids)
    assert 0 < story.trained_tokens < story.length and story.n_pieces > 1
    m = metrics(at)
    assert m["Trained tokens"] == f"{story.trained_tokens:,}"
    delta = [x.proto.delta for x in at.metric if x.label == "Trained tokens"][0]
    assert delta == f"{int(story.targets.sum()):,} targets in its pieces"
    assert at.dataframe[0].value["trained targets"].tolist() == story.targets.tolist()
    w = pv.loss_weights(plan, batch_rows=8, token_ids=ids)
    assert m["Loss weight"] == f"{w[doc] / (1 / (w > 0).sum()):.2f}×"
    plain = pv.loss_weights(plan, batch_rows=8)  # every token: what the page showed before
    assert m["Loss weight"] != f"{plain[doc] / (1 / (plain > 0).sum()):.2f}×"

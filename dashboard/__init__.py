"""Support code of the packviz dashboard (``streamlit run app.py``), one job per module.

- `dashboard.state`: the shared settings — defaults, kept values, the sidebar, `Settings`;
- `dashboard.errors`: user-facing problems shown as an error box, never a traceback;
- `dashboard.corpus`: uploads, the current corpus and its tokenizer;
- `dashboard.cached`: cached calls into packviz (plans, comparisons, sweeps, row windows);
- `dashboard.devices`: where masks are built and how long that takes;
- `dashboard.figures`: plotly figures from plain arrays (tested without Streamlit).

The pages in ``pages/`` are thin views over these; the numbers they show come from the
library (`packviz`), which knows nothing of Streamlit or plotly.
"""
